"""Paired training (task='paired'): (input, target) data, G(input) against its target, content terms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mvm_core.content import ContentLoss, content_loss
from mvm_core.context import StepContext
from mvm_core.data import BatchSource, PairedTensorDataset, ring_dataset
from mvm_core.evaluation import evaluate_trainer
from mvm_core.nets import MLPGenerator, MLPMetricNet
from mvm_core.registry import create_regularizer
from mvm_core.trainer import TrainConfig, Trainer

torch.set_num_threads(1)


class Upsample2(nn.Module):
    """A tiny x2 image-to-image generator (no latent code)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1),
                                  nn.PixelShuffle(2))

    def forward(self, x):
        return self.body(x)


class TinyMetric(nn.Module):
    def __init__(self, emb_dim=4):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, emb_dim))

    def forward(self, x):
        return self.body(x)


def pairs(n=96, held=8, seed=0) -> PairedTensorDataset:
    """Targets: smooth 8x8 patterns in [-1, 0) (all negative); inputs: their 2x2 average pooling."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n + held, 1, 4, 4, generator=gen)
    targets = nn.functional.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False) - 1.001
    inputs = nn.functional.avg_pool2d(targets, 2)
    return PairedTensorDataset(inputs[:n], targets[:n], inputs[n:], targets[n:], name="toy-pairs")


def paired_trainer(metric=True, steps=6, terms=None, **config):
    torch.manual_seed(0)
    cfg = TrainConfig(**{"steps": steps, "batch_size": 16, "log_every": 1, "g_lr": 1e-2, "m_lr": 1e-3,
                         "device": "cpu", "task": "paired", **config})
    terms = {"content": (1.0, ContentLoss())} if terms is None else terms
    return Trainer(Upsample2(), TinyMetric() if metric else None, pairs(), cfg, generator_terms=terms)


def test_content_loss_by_hand():
    out, tgt = torch.tensor([[0.0, 1.0], [2.0, -1.0]]), torch.zeros(2, 2)
    assert content_loss(out, tgt).item() == pytest.approx(1.0)  # (0 + 1 + 2 + 1) / 4
    assert content_loss(out, tgt, "l2").item() == pytest.approx(1.5)  # (0 + 1 + 4 + 1) / 4
    assert content_loss(out, tgt, "charbonnier", eps=1.0).item() == pytest.approx(
        (1 + 2**0.5 + 5**0.5 + 2**0.5) / 4)
    with pytest.raises(ValueError, match="same shape"):
        content_loss(out, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="norm"):
        ContentLoss("l3")
    assert isinstance(create_regularizer("mvm:ContentLoss", norm="l2"), ContentLoss)


def test_content_loss_refuses_unpaired_steps():
    x = torch.zeros(4, 2)
    ctx = StepContext(step=0, z=x, fake=x, real=x, fake_emb=x, real_emb=x)
    with pytest.raises(ValueError, match="paired task"):
        ContentLoss()(ctx)


def test_batches_of_a_paired_dataset_keep_negative_targets():
    ds = pairs()
    assert bool((ds.targets < 0).all())  # would be read as "no labels" by the label heuristic
    x, y = next(BatchSource(ds, 8, seed=0))
    assert x.shape == (8, 1, 4, 4) and y is not None and y.shape == (8, 1, 8, 8)
    assert torch.equal(nn.functional.avg_pool2d(y, 2), x)  # the rows stay paired


def test_paired_step_feeds_inputs_and_matches_targets():
    seen = {}

    def spy(ctx):
        seen.update(task=ctx.task, z=ctx.z.shape, fake=ctx.fake.shape, real=ctx.real.shape,
                    aligned=torch.equal(nn.functional.avg_pool2d(ctx.real, 2), ctx.z))
        return ctx.fake.sum() * 0

    trainer = paired_trainer(terms={"content": (1.0, ContentLoss()), "spy": (1.0, spy)}, steps=1)
    values = trainer.train_step()
    assert seen == {"task": "paired", "z": (16, 1, 4, 4), "fake": (16, 1, 8, 8), "real": (16, 1, 8, 8),
                    "aligned": True}
    assert {"matching", "content", "loss_m", "loss_g"} <= set(values)


def test_content_loss_alone_learns_the_mapping_and_sampling_uses_heldout_inputs():
    trainer = paired_trainer(metric=False, steps=150, log_every=50)
    before = evaluate_trainer(trainer)
    history = trainer.fit()
    after = evaluate_trainer(trainer)
    assert set(after) == {"l1", "psnr"}
    assert after["l1"] < 0.3 * before["l1"] and after["psnr"] > before["psnr"] + 6
    assert history[-1]["content"] < 0.3 * before["l1"]  # the training loss agrees
    held_in, _ = trainer.dataset.heldout(5)
    samples = trainer.sample(5)
    assert torch.allclose(samples, trainer.predict(held_in))
    assert samples.shape == (5, 1, 8, 8)


def test_paired_run_resumes_exactly(tmp_path):
    straight = paired_trainer(steps=6)
    straight.fit()
    first = paired_trainer(steps=6)
    first.run_dir = tmp_path
    first.fit(3)
    first.save_checkpoint()
    resumed = paired_trainer(steps=6)
    resumed.load_checkpoint(tmp_path)
    resumed.fit()
    for a, b in zip(straight.generator.parameters(), resumed.generator.parameters()):
        assert torch.equal(a, b)


def test_task_and_data_must_agree():
    with pytest.raises(ValueError, match="not a paired dataset"):
        Trainer(Upsample2(), None, ring_dataset(n=64), TrainConfig(task="paired", batch_size=8),
                generator_terms={"c": (1.0, ContentLoss())})
    g = MLPGenerator(z_dim=2)
    with pytest.raises(ValueError, match="task='paired'"):
        Trainer(g, MLPMetricNet(), pairs(), TrainConfig(batch_size=8))
    with pytest.raises(ValueError, match="task must be one of"):
        TrainConfig(task="translate")
    with pytest.raises(ValueError, match="conditional"):
        TrainConfig(task="paired", conditional=True)

    class PairsTerm:
        needs_pairs = True

        def __call__(self, ctx):
            return ctx.fake.sum()

    with pytest.raises(ValueError, match="needs_pairs"):
        paired_trainer(terms={"ms": (1.0, PairsTerm())})
    with pytest.raises(ValueError, match="paired task"):
        Trainer(g, MLPMetricNet(), ring_dataset(n=64), TrainConfig(batch_size=8)).predict(torch.zeros(2, 2))


def test_paired_tensor_dataset_checks_its_pairs():
    with pytest.raises(ValueError, match="same non-zero number"):
        PairedTensorDataset(torch.zeros(3, 2), torch.zeros(4, 2), torch.zeros(1, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="shapes of the training pairs"):
        PairedTensorDataset(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(1, 3), torch.zeros(1, 2))
    ds = pairs()
    assert ds.input_shape == (1, 4, 4) and ds.sample_shape == (1, 8, 8) and ds.is_image
    assert ds.heldout(100)[0].shape[0] == 8
