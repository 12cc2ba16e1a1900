"""The preset follows the data's sample shape, whatever the data source."""

import numpy as np
import pytest
import torch

from mvm_core.cli import main
from mvm_core.data.sources import data_kind, kind_of_shape, load_data
from mvm_core.presets import default
from mvm_core.runconfig import build_run_config, preset_values

POINTS, IMAGES = default("points"), default("images")


def _recipe(config) -> str:
    """Which of the default preset's two recipes ``config`` carries (they differ in these keys)."""
    keys = ("batch_size", "width", "metric_loss", "chamfer_weight", "lr_schedule")
    got = {k: getattr(config, k) for k in keys}
    if got == {k: POINTS[k] for k in keys}:
        return "points"
    if got == {k: IMAGES[k] for k in keys}:
        return "images"
    return f"neither: {got}"


def _ring_points(n=512):
    angles = torch.rand(n) * 2 * torch.pi
    return torch.stack([angles.cos(), angles.sin()], 1)


def test_the_two_recipes_differ_in_the_keys_checked():
    assert _recipe(build_run_config({}, {"data": "ring"})) == "points"
    assert _recipe(build_run_config({}, {"data": "digits"})) == "images"


@pytest.mark.parametrize("suffix", [".npy", ".pt"])
def test_a_file_of_points_gets_the_points_recipe(tmp_path, suffix):
    path = tmp_path / f"points{suffix}"
    if suffix == ".npy":
        np.save(path, _ring_points().numpy())
    else:
        torch.save(_ring_points(), path)
    assert data_kind(str(path)) == "points"
    assert _recipe(build_run_config({}, {"data": str(path)})) == "points"


@pytest.mark.parametrize("suffix", [".npy", ".pt"])
def test_a_file_of_images_gets_the_images_recipe(tmp_path, suffix):
    images = torch.rand(20, 1, 8, 8) * 2 - 1
    path = tmp_path / f"images{suffix}"
    if suffix == ".npy":
        np.save(path, images.numpy())
    else:
        torch.save(images, path)
    assert _recipe(build_run_config({}, {"data": str(path)})) == "images"


def test_registry_datasets_and_folders_by_shape(tmp_path):
    # "mvm:ring" is the registry's ring: points, although its name is not "ring"
    assert _recipe(build_run_config({}, {"data": "mvm:ring"})) == "points"
    assert _recipe(build_run_config({}, {"data": "mvm:digits"})) == "images"
    from PIL import Image

    for i in range(2):
        Image.fromarray(np.full((12, 12, 3), 40 * i, dtype=np.uint8)).save(tmp_path / f"{i}.png")
    assert _recipe(build_run_config({}, {"data": f"folder:{tmp_path}", "image_size": 8})) == "images"
    assert load_data(f"folder:{tmp_path}", image_size=8).sample_shape == (3, 8, 8)


def test_in_memory_kinds_and_bad_shapes():
    assert data_kind(_ring_points()) == "points"
    assert data_kind(np.zeros((4, 3, 8, 8), dtype="float32")) == "images"
    assert _recipe(build_run_config({}, {"data": "x"}, kind="points")) == "points"
    with pytest.raises(ValueError, match=r"got \(8, 8\)"):
        kind_of_shape((8, 8))
    with pytest.raises(ValueError, match="kind must be one of"):
        preset_values("default", "ring")


def test_cli_prints_the_chosen_preset_for_a_users_points(tmp_path, capsys):
    path = tmp_path / "mine.npy"
    np.save(path, _ring_points().numpy())
    run = tmp_path / "run"
    args = ["train", "--data", str(path), "--steps", "2", "--batch-size", "16", "--width", "16",
            "--depth", "1", "--log-every", "1", "--no-progress", "--device", "cpu", "--out", str(run),
            "--checkpoint-every", "0", "--eval-samples", "16"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "preset 'default' with its points recipe" in out and "shape (2,)" in out
    import json

    saved = json.loads((run / "config.json").read_text())
    assert saved["matching"] == "energy" and saved["chamfer_weight"] == POINTS["chamfer_weight"]
