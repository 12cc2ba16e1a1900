"""mvm_core.train: the presets from Python, on names, paths and in-memory samples."""

import numpy as np
import pytest
import torch

import mvm_core
from mvm_core.presets import default

TINY = {"steps": 2, "batch_size": 16, "width": 16, "depth": 1, "device": "cpu", "progress": False}


def test_in_memory_points_get_the_points_recipe_and_overrides_apply(capsys):
    points = np.random.default_rng(0).normal(size=(256, 2)).astype("float32")
    trainer = mvm_core.train(points, metric_loss="pml:MultiSimilarityLoss", **TINY)
    used = trainer.extra_state["run_config"]
    assert trainer.state.step == 2 and used["data"] == "<in-memory>"
    assert used["matching"] == default("points")["matching"] and used["chamfer_weight"] == 0.5
    assert used["metric_loss"] == "pml:MultiSimilarityLoss"
    assert trainer.sample(5).shape == (5, 2)
    assert "with its points recipe" in capsys.readouterr().err


def test_a_path_and_a_run_dir(tmp_path):
    path = tmp_path / "images.pt"
    torch.save(torch.rand(32, 1, 8, 8) * 2 - 1, path)
    run = tmp_path / "run"
    trainer = mvm_core.train(path, run_dir=run, verbose=False, **TINY)
    assert trainer.extra_state["run_config"]["metric_loss"] == default("images")["metric_loss"]
    assert (run / "checkpoint.safetensors").exists()
    from mvm_core.runs import load_run

    again = load_run(run, device="cpu")
    assert again.state.step == 2


def test_bad_data_and_unknown_keys_fail_clearly():
    with pytest.raises(TypeError, match="data must be a name, a path, a tensor or an array; got int"):
        mvm_core.train(3)
    with pytest.raises(ValueError, match="unknown config key 'stpes'"):
        mvm_core.train("ring", stpes=3)
