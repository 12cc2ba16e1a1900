"""End-to-end: first-party plugins used by the trainer and by `mvm train`."""

import json

import torch

from mvm_core import create_backbone, create_regularizer
from mvm_core.cli import main
from mvm_core.data import digits_dataset
from mvm_core.nets import DCGANGenerator, DCGANMetricNet
from mvm_core.trainer import TrainConfig, Trainer


def test_mode_seeking_regularizer_trains_a_conditional_generator():
    torch.manual_seed(0)
    data = digits_dataset(8)
    g = DCGANGenerator(z_dim=8, image_size=8, channels=1, width=8, num_classes=10)
    m = DCGANMetricNet(8, 1, 4, width=8)
    seen = []

    ms = create_regularizer("msgan:ModeSeekingLoss")

    def spy(ctx):
        seen.append((ctx.pairs, ctx.cond.clone()))
        return ms(ctx)

    spy.needs_pairs = ms.needs_pairs
    trainer = Trainer(g, m, data, TrainConfig(steps=3, batch_size=32, conditional=True, log_every=1, device="cpu"),
                      generator_terms={"mode_seeking": (1.0, spy)})
    history = trainer.fit()
    assert all(pairs for pairs, _ in seen)
    for _, cond in seen:  # two latents per condition: the halves share their class ids
        assert torch.equal(cond[:16], cond[16:])
    assert all(row["mode_seeking"] > 0 and torch.isfinite(torch.tensor(row["loss_g"])) for row in history)
    # the term is part of the generator loss
    row = history[-1]
    assert abs(row["loss_g"] - (row["matching"] + row["mode_seeking"])) < 1e-4


def test_timm_backbone_as_metric_network():
    torch.manual_seed(0)
    data = digits_dataset(16)
    g = DCGANGenerator(z_dim=8, image_size=16, channels=1, width=8)
    m = create_backbone("timm:test_resnet", emb_dim=6, in_chans=1)
    trainer = Trainer(g, m, data, TrainConfig(steps=2, batch_size=16, log_every=1, device="cpu"))
    history = trainer.fit()
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(r["loss_m"])) for r in history)


def test_cli_trains_with_plugins_by_name(tmp_path):
    run = tmp_path / "run"
    code = main([
        "train", "--data", "digits", "--image-size", "16", "--steps", "2", "--batch-size", "16",
        "--width", "8", "--log-every", "1", "--eval-samples", "50", "--no-progress", "--device", "cpu",
        "--conditional", "true", "--regularizers", "msgan:ModeSeekingLoss=0.5",
        "--metric-net", "timm:test_resnet", "--metric-net-kwargs", '{"in_chans": 1}',
        "--metric-loss", "pml:MultiSimilarityLoss", "--out", str(run),
    ])
    assert code == 0
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert "msgan:ModeSeekingLoss" in rows[-1]


def test_cli_trains_gfmn_alone(tmp_path, monkeypatch):
    """`mvm train --method gfmn`: GFMN feature matching on the shipped digits classifier's features."""
    monkeypatch.setenv("MVM_CORE_CACHE_DIR", str(tmp_path / "cache"))  # real statistics cache
    run = tmp_path / "gfmn"
    code = main(["train", "--method", "gfmn", "--steps", "4", "--batch-size", "16", "--width", "8",
                 "--log-every", "2", "--eval-samples", "50", "--no-progress", "--device", "cpu",
                 "--out", str(run)])
    assert code == 0
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert "gfmn/matching" in rows[-1] and "matching" not in rows[-1]
    assert (run / "checkpoint.safetensors").exists()
    assert list((tmp_path / "cache").rglob("*.safetensors"))  # statistics were cached there
