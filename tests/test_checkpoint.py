"""Checkpoints: tied tensors, exact resume compared with ==, checksums, tampered files."""

import os

import pytest
import torch
from safetensors import safe_open
from torch import nn

from mvm_core.callbacks import Checkpointer
from mvm_core.checkpoint import load_checkpoint, save_checkpoint
from mvm_core.cli import main
from mvm_core.data import ring_dataset
from mvm_core.errors import CheckpointError
from mvm_core.nets import MLPGenerator, MLPMetricNet
from mvm_core.trainer import TrainConfig, Trainer, decode_history


class TiedGenerator(nn.Module):
    """A generator whose input and output layers share one weight (and one module under two names)."""

    z_dim = 2

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(2, 2)
        self.out = nn.Linear(2, 2)
        self.out.weight = self.inp.weight  # tied
        self.alias = self.inp  # the same module reachable twice: its tensors appear under two names

    def forward(self, z):
        return self.out(torch.tanh(self.inp(z)))


def tied_trainer(run_dir, callbacks=()):
    torch.manual_seed(0)
    config = TrainConfig(steps=6, batch_size=16, log_every=2, device="cpu", g_lr=1e-3, m_lr=1e-3)
    return Trainer(TiedGenerator(), MLPMetricNet(emb_dim=4, hidden=16, depth=1), ring_dataset(n=256),
                   config, run_dir=run_dir, callbacks=callbacks)


def assert_equal_state(a, b, path="state"):
    """Every tensor equal with ==, every other value equal (wall-clock times excepted)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, path
        assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            if k != "time":
                assert_equal_state(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_equal_state(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def test_tied_weights_are_saved_once_retied_on_load_and_resume_exactly(tmp_path):
    straight = tied_trainer(tmp_path / "a")
    straight.fit()
    split = tied_trainer(tmp_path / "b", callbacks=[Checkpointer(every=0)])
    split.fit(steps=3)  # Checkpointer saves at the end of fit
    with safe_open(str(tmp_path / "b" / "checkpoint.safetensors"), framework="pt") as f:
        keys = set(f.keys())
    assert "generator.inp.weight" in keys
    assert not {"generator.out.weight", "generator.alias.weight", "generator.alias.bias"} & keys
    state = load_checkpoint(tmp_path / "b")
    g = state["generator"]
    assert g["out.weight"] is g["inp.weight"] and g["alias.weight"] is g["inp.weight"]

    resumed = tied_trainer(tmp_path / "b")
    resumed.load_checkpoint(tmp_path / "b")
    assert resumed.state.step == 3
    assert resumed.generator.out.weight is resumed.generator.inp.weight  # still one parameter
    resumed.fit()
    a, b = _comparable(straight.state_dict()), _comparable(resumed.state_dict())
    assert [r["step"] for r in b["history"]] == [2, 3, 4, 6]  # fit(steps=3) logged its last step
    b["history"] = [r for r in b["history"] if r["step"] != 3]
    assert_equal_state(a, b)


def _comparable(state):
    """The state with its history decoded (its wall-clock times are skipped by the comparison)."""
    return {**state, "history": decode_history(state["history"])}


def test_views_into_one_storage_are_saved(tmp_path):
    base = torch.arange(12.0)
    state = {"whole": base, "head": base[:4], "strided": base[::3], "again": base}
    save_checkpoint(tmp_path / "c.safetensors", state)
    loaded = load_checkpoint(tmp_path / "c.safetensors")
    assert_equal_state(state, loaded)
    assert loaded["again"] is loaded["whole"]


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    trainer = Trainer(MLPGenerator(hidden=16, depth=1), MLPMetricNet(emb_dim=4, hidden=16, depth=1),
                      ring_dataset(n=256), TrainConfig(steps=2, batch_size=16, device="cpu"), run_dir=folder)
    trainer.fit()
    trainer.save_checkpoint()
    return folder / "checkpoint.safetensors", trainer


def _fresh():
    return Trainer(MLPGenerator(hidden=16, depth=1), MLPMetricNet(emb_dim=4, hidden=16, depth=1),
                   ring_dataset(n=256), TrainConfig(steps=2, batch_size=16, device="cpu"))


@pytest.mark.parametrize("damage", ["empty", "truncated", "random", "flipped byte", "header only"])
def test_damaged_files_raise_checkpoint_error(tmp_path, good_checkpoint, damage):
    data = good_checkpoint[0].read_bytes()
    header = 8 + int.from_bytes(data[:8], "little")
    damaged = {"empty": b"", "truncated": data[: len(data) // 2], "random": os.urandom(len(data)),
               "flipped byte": data[:-1] + bytes([data[-1] ^ 1]), "header only": data[:header]}[damage]
    path = tmp_path / "checkpoint.safetensors"
    path.write_bytes(damaged)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    with pytest.raises(CheckpointError):
        _fresh().load_checkpoint(path)


@pytest.mark.parametrize("tamper", ["missing network", "missing optimizer", "wrong weight shape",
                                    "wrong moment shape", "nan weight"])
def test_tampered_states_raise_checkpoint_error(tmp_path, good_checkpoint, tamper):
    state = load_checkpoint(good_checkpoint[0])
    weight = next(iter(state["generator"]))
    if tamper == "missing network":
        del state["metric_net"]
    elif tamper == "missing optimizer":
        del state["g_opt"]
    elif tamper == "wrong weight shape":
        state["generator"][weight] = torch.zeros(3, 3)
    elif tamper == "wrong moment shape":
        state["g_opt"]["state"][0]["exp_avg"] = torch.zeros(5)
    else:
        state["generator"][weight] = state["generator"][weight].clone().fill_(float("nan"))
    path = save_checkpoint(tmp_path / "checkpoint.safetensors", state)  # a consistent checksum
    with pytest.raises(CheckpointError):
        _fresh().load_checkpoint(path)


def test_cli_reports_a_damaged_checkpoint_in_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    tiny = ["--data", "ring", "--steps", "2", "--batch-size", "16", "--width", "16", "--depth", "1",
            "--emb-dim", "4", "--no-progress", "--device", "cpu", "--out", str(run)]
    assert main(["train", *tiny]) == 0
    file = run / "checkpoint.safetensors"
    data = file.read_bytes()
    file.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    capsys.readouterr()
    for argv in (["sample", str(run), "-n", "4", "--out", str(tmp_path / "s.npy")],
                 ["train", "--resume", str(run), "--steps", "4", "--no-progress"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "SHA-256" in err, err
    assert not (tmp_path / "s.npy").exists()


def test_a_checkpoint_without_checksum_loads_with_a_warning(tmp_path):
    import json

    from safetensors.torch import save_file

    from mvm_core.checkpoint import META_KEY

    path = tmp_path / "old.safetensors"
    save_file({"w": torch.ones(2)}, str(path), metadata={META_KEY: json.dumps({"w": {"__tensor__": "w"}})})
    with pytest.warns(UserWarning, match="no checksum"):
        assert torch.equal(load_checkpoint(path)["w"], torch.ones(2))


def _bank_trainer(run_dir, device="cpu"):
    from mvm_core.metric import MetricObjective
    from mvm_core.mining import FaissHardNegativeMiner

    torch.manual_seed(0)
    miner = FaissHardNegativeMiner(k=2, source="both", bank=40)
    return Trainer(MLPGenerator(hidden=16, depth=1), MLPMetricNet(emb_dim=4, hidden=16, depth=1),
                   ring_dataset(n=256), TrainConfig(steps=6, batch_size=16, log_every=3, device=device,
                                                    g_lr=1e-3, m_lr=1e-3),
                   metric_objective=MetricObjective(miner=miner), run_dir=run_dir)


def _split_equals_straight(tmp_path, device):
    straight = _bank_trainer(tmp_path / "a", device)
    straight.fit()
    split = _bank_trainer(tmp_path / "b", device)
    split.fit(steps=3)
    split.save_checkpoint()
    resumed = _bank_trainer(tmp_path / "b", device)
    resumed.load_checkpoint(tmp_path / "b")
    assert len(resumed.metric_objective.miner.bank) == 40  # the bank came back with its rows
    resumed.fit()
    assert_equal_state(_comparable(straight.state_dict()), _comparable(resumed.state_dict()))


def test_resume_with_a_memory_bank_is_exact(tmp_path):
    _split_equals_straight(tmp_path, "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_resume_restores_rng_states_on_the_cpu_and_is_exact(tmp_path):
    _split_equals_straight(tmp_path, "cuda")


def test_a_long_history_is_not_limited_by_the_checkpoint_header(tmp_path):
    trainer = _fresh()
    record = {"step": 0, **{f"term_{i}": 0.123456789 for i in range(40)}}
    trainer.state.history = [{**record, "step": i} for i in range(120_000)]  # ~130 MB of JSON
    trainer.save_checkpoint(tmp_path / "checkpoint.safetensors")
    restored = _fresh()
    restored.load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert len(restored.state.history) == 120_000 and restored.state.history[-1] == {**record, "step": 119_999}
