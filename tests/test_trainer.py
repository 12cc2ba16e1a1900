import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from mvm_core.callbacks import Checkpointer, JSONLLogger
from mvm_core.checkpoint import load_checkpoint, save_checkpoint
from mvm_core.data import GenerativeDataset, ring_dataset
from mvm_core.nets import DCGANGenerator, DCGANMetricNet, MLPGenerator, MLPMetricNet
from mvm_core.trainer import TrainConfig, Trainer, TrainingDiverged, lr_factor

KEYS = ("matching", "loss_m", "loss_g", "centroid", "diameter")


def small_trainer(run_dir=None, seed=0, callbacks=(), **overrides):
    torch.manual_seed(seed)
    config = TrainConfig(**{"steps": 6, "batch_size": 16, "log_every": 1, "seed": seed, "g_lr": 1e-3,
                            "m_lr": 1e-3, "device": "cpu", **overrides})
    data = ring_dataset(n=512, seed=seed)
    g = MLPGenerator(hidden=32, depth=2)
    m = MLPMetricNet(emb_dim=4, hidden=32, depth=2)
    return Trainer(g, m, data, config, run_dir=run_dir, callbacks=callbacks)


def losses(history):
    return [row[k] for row in history for k in KEYS]


def test_same_seed_same_losses():
    a = small_trainer().fit()
    b = small_trainer().fit()
    assert losses(a) == losses(b)
    c = small_trainer(seed=1).fit()
    assert losses(a) != losses(c)


@pytest.mark.parametrize("extra", [{}, {"ema_decay": 0.9, "metric_steps": 2, "lr_schedule": "cosine"}])
def test_resume_equals_straight_run(tmp_path, extra):
    straight = small_trainer(**{**extra, "steps": 8})
    straight.fit()
    first = small_trainer(run_dir=tmp_path, **{**extra, "steps": 8})
    first.fit(steps=3)
    first.save_checkpoint()
    resumed = small_trainer(**{**extra, "steps": 8})
    resumed.load_checkpoint(tmp_path)
    resumed.fit()
    assert resumed.state.step == 8
    assert losses(resumed.state.history) == pytest.approx(losses(straight.state.history), rel=1e-6, abs=1e-7)
    for p, q in zip(resumed.generator.parameters(), straight.generator.parameters()):
        torch.testing.assert_close(p, q)


def test_one_generator_and_one_metric_forward_per_step():
    trainer = small_trainer(steps=3)
    calls = {"g": 0, "m": 0}
    trainer.generator.register_forward_hook(lambda *a: calls.__setitem__("g", calls["g"] + 1))
    trainer.metric_net.register_forward_hook(lambda *a: calls.__setitem__("m", calls["m"] + 1))
    trainer.fit()
    assert calls == {"g": 3, "m": 3}


def test_metric_step_updates_only_metric_and_generator_step_only_generator():
    trainer = small_trainer(steps=1)
    g_before = [p.clone() for p in trainer.generator.parameters()]
    m_before = [p.clone() for p in trainer.metric_net.parameters()]
    trainer.config.metric_steps = 0
    trainer.fit()
    assert all(torch.equal(a, b) for a, b in zip(m_before, trainer.metric_net.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(g_before, trainer.generator.parameters()))


def test_nan_stops_with_step_and_term_after_saving_last_good_state(tmp_path):
    trainer = small_trainer(run_dir=tmp_path, steps=10)

    class Poison:
        def __call__(self, ctx):
            return ctx.fake.sum() * (float("nan") if ctx.step == 4 else 0.0)

    trainer.terms = [type("T", (), {"name": "poison", "weight": 1.0, "fn": Poison()})()]
    with pytest.raises(TrainingDiverged, match=r"step 4: the generator loss term\(s\) \['poison'"):
        trainer.fit()
    saved = load_checkpoint(tmp_path)
    assert saved["step"] == 4  # the state before the bad step
    assert all(torch.isfinite(t).all() for t in saved["generator"].values())


def test_checkpoint_roundtrip_has_every_piece(tmp_path):
    trainer = small_trainer(run_dir=tmp_path, ema_decay=0.9)
    trainer.fit()
    state = load_checkpoint(trainer.save_checkpoint())
    for key in ("config", "step", "generator", "metric_net", "g_opt", "m_opt", "ema", "rng", "batches"):
        assert key in state
    assert state["config"]["ema_decay"] == 0.9
    assert isinstance(state["g_opt"]["state"], dict) and tuple(state["g_opt"]["param_groups"][0]["betas"]) == (0.0, 0.9)


def test_kill_during_checkpoint_write_leaves_previous_checkpoint_intact(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, {"step": 1, "w": torch.ones(3)})
    script = textwrap.dedent(f"""
        import os, torch, safetensors.torch as st
        from mvm_core.checkpoint import save_checkpoint
        real = st.save_file
        def dying(tensors, filename, metadata=None):
            real(tensors, filename, metadata=metadata)
            with open(filename, "r+b") as f:
                f.truncate(10)  # half-written
            os._exit(9)  # killed mid-write, before the rename
        st.save_file = dying
        import mvm_core.checkpoint as c
        c.save_file = dying
        save_checkpoint({str(path)!r}, {{"step": 2, "w": torch.zeros(3)}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == 9
    state = load_checkpoint(path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(3))
    leftovers = [p for p in os.listdir(tmp_path) if p != "checkpoint.safetensors"]
    assert all(p.endswith(".tmp") for p in leftovers)  # only an ignored temp file remains


def test_load_rejects_foreign_files(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.ones(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not an mvm-core checkpoint"):
        load_checkpoint(tmp_path / "other.safetensors")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing")


def test_jsonl_log_and_checkpoints_from_callbacks(tmp_path):
    trainer = small_trainer(run_dir=tmp_path, callbacks=[JSONLLogger(tmp_path / "log.jsonl"), Checkpointer(every=2)])
    trainer.fit()
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all("matching" in r and "loss_m" in r for r in rows)
    assert load_checkpoint(tmp_path)["step"] == 6


def test_conditional_generator_with_labels():
    torch.manual_seed(0)
    x = torch.randn(64, 1, 8, 8).clamp(-1, 1)
    y = torch.arange(64) % 4
    g = DCGANGenerator(z_dim=8, image_size=8, channels=1, width=8, num_classes=4)
    m = DCGANMetricNet(8, 1, 4, width=8)
    trainer = Trainer(g, m, GenerativeDataset(x, y), TrainConfig(steps=2, batch_size=16, conditional=True, device="cpu"))
    history = trainer.fit()
    assert len(history) == 1 and torch.isfinite(torch.tensor(history[0]["matching"]))
    samples = trainer.sample(8, cond=torch.full((8,), 2))
    assert samples.shape == (8, 1, 8, 8)


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="unknown TrainConfig keys \\['stpes'\\]"):
        TrainConfig.from_dict({"stpes": 3})
    with pytest.raises(ValueError, match="lr_schedule must be"):
        TrainConfig(lr_schedule="step")
    with pytest.raises(ValueError, match="conditional=True needs a generator built with num_classes"):
        Trainer(MLPGenerator(), MLPMetricNet(), ring_dataset(n=100), TrainConfig(conditional=True))
    with pytest.raises(ValueError, match="fewer than batch_size"):
        Trainer(MLPGenerator(), MLPMetricNet(), torch.randn(10, 2), TrainConfig(batch_size=64))


def test_lr_schedules():
    cfg = TrainConfig(steps=100, lr_schedule="cosine", warmup_steps=10)
    assert lr_factor(cfg, 0) == pytest.approx(0.1)
    assert lr_factor(cfg, 50) == pytest.approx(0.5)
    assert lr_factor(TrainConfig(steps=100, lr_schedule="linear"), 75) == pytest.approx(0.25)


def test_sampling_does_not_change_training_stream():
    a = small_trainer()
    a.fit(steps=3)
    a.sample(10)
    a.fit()
    b = small_trainer()
    b.fit()
    assert losses(a.state.history) == losses(b.state.history)


def test_paths_are_strings_or_paths(tmp_path):
    trainer = small_trainer(run_dir=str(tmp_path))
    trainer.fit(steps=1)
    assert Path(trainer.save_checkpoint()).exists()


def test_generator_terms_alone_without_metric_network():
    """GFMN-style training: no metric network, the generator learns from its terms only."""
    torch.manual_seed(0)
    target = torch.tensor([3.0, -2.0])

    def pull_to_target(ctx):
        return ((ctx.fake.mean(0) - target) ** 2).sum()

    trainer = Trainer(MLPGenerator(hidden=16, depth=1), None, ring_dataset(n=256),
                      TrainConfig(steps=150, batch_size=32, g_lr=1e-2, log_every=50, device="cpu"),
                      generator_terms={"pull": (1.0, pull_to_target)})
    start = pull_to_target(type("Ctx", (), {"fake": trainer.sample(256)})())
    history = trainer.fit()
    assert start > 5.0  # the untrained generator is far from the target
    assert "matching" not in history[-1] and history[-1]["pull"] < 0.01 * start
    state = trainer.state_dict()
    assert "metric_net" not in state and "m_opt" not in state
    with pytest.raises(ValueError, match="needs generator_terms"):
        Trainer(MLPGenerator(), None, ring_dataset(n=256), TrainConfig())


def test_trainer_with_faiss_bank_mining():
    """The FAISS miner with a memory bank of fakes plugs into the trainer's metric step."""
    from mvm_core.metric import MetricObjective
    from mvm_core.mining import FaissHardNegativeMiner

    torch.manual_seed(0)
    miner = FaissHardNegativeMiner(k=2, source="both", bank=64)
    trainer = Trainer(MLPGenerator(hidden=16, depth=1), MLPMetricNet(emb_dim=4, hidden=16, depth=1),
                      ring_dataset(n=256), TrainConfig(steps=5, batch_size=16, log_every=1, device="cpu"),
                      metric_objective=MetricObjective(miner=miner))
    history = trainer.fit()
    assert all(torch.isfinite(torch.tensor(r["loss_m"])) for r in history)
    assert int(miner.bank.valid_mask().sum()) == 64  # 5 steps x 16 fakes, ring buffer of 64
    assert history[-1]["tuples"] == 16 * 2  # k negatives per real anchor
