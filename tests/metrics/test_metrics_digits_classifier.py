import json

import pytest
import torch

from mvm_core.features import FeatureExtractor
from mvm_core.metrics import fid
from mvm_core.metrics.classifier_scores import class_coverage
from mvm_core.metrics.digits_classifier import (
    DigitsClassifier,
    digits_classifier_metadata,
    digits_split,
    load_digits_classifier,
    sha256_of,
    upsample,
)


@pytest.fixture(scope="module")
def classifier():
    return load_digits_classifier()


@pytest.fixture(scope="module")
def split():
    return digits_split()


def test_shipped_weights_match_their_metadata(classifier):
    meta = digits_classifier_metadata()
    assert meta["data"]["random_state"] == 0 and meta["data"]["num_test"] == 360
    assert meta["architecture"]["num_parameters"] == sum(p.numel() for p in classifier.parameters())
    assert isinstance(classifier, DigitsClassifier) and isinstance(classifier, FeatureExtractor)


@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_reaches_recorded_test_accuracy(classifier, split, size):
    _, _, x_test, y_test = split
    recorded = digits_classifier_metadata()["test_accuracy"][str(size)]
    with torch.no_grad():
        accuracy = float(
            (classifier.logits(upsample(x_test, size)).argmax(1) == y_test).double().mean()
        )
    assert recorded > 0.98
    assert accuracy == pytest.approx(recorded, abs=1 / 360 + 1e-9)  # at most one image apart


def test_feature_and_logit_shapes_and_layers(classifier, split):
    x = split[2][:7]
    assert classifier.features(x).shape == (7, 64)
    assert classifier.logits(upsample(x, 32)).shape == (7, 10)
    out = classifier(x)  # FeatureExtractor interface: dict of layers
    assert set(out) == {"features", "logits"}
    torch.testing.assert_close(out["logits"], classifier.logits(x))
    feats, logits = classifier.embed(split[2], batch_size=100)
    assert feats.shape == (360, 64) and logits.shape == (360, 10)


def test_features_are_the_same_at_every_size_of_the_convention(classifier, split):
    x = split[2][:50]
    f8 = classifier.features(x)
    for size in (16, 32, 64):
        torch.testing.assert_close(classifier.features(upsample(x, size)), f8, rtol=0, atol=1e-5)
    # so FID between 8 px reals and 32 px copies of other reals is the 8 px FID
    f_train, _ = classifier.embed(split[0])
    f_test32, _ = classifier.embed(upsample(split[2], 32))
    f_test8, _ = classifier.embed(split[2])
    assert fid(f_train, f_test32) == pytest.approx(fid(f_train, f_test8), rel=1e-4)


def test_gradients_reach_images_not_weights(classifier, split):
    x = split[2][:4].clone().requires_grad_(True)
    classifier.features(x).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(p.grad is None and not p.requires_grad for p in classifier.parameters())
    assert not classifier.training
    classifier.train()
    assert not classifier.training  # stays in eval mode


def test_feature_space_separates_real_from_broken_digits(classifier, split):
    x_train, _, x_test, y_test = split
    f_train, _ = classifier.embed(x_train)
    f_test, logits_test = classifier.embed(x_test)
    noise = torch.rand(360, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    f_noise, _ = classifier.embed(noise)
    assert fid(f_train, f_test) * 20 < fid(f_train, f_noise)
    assert class_coverage(logits_test) == (1.0, pytest.approx(35 / 36, abs=0.15))
    _, logits_no_3 = classifier.embed(x_test[y_test != 3])
    assert class_coverage(logits_no_3)[1] < 0.1  # class 3 (almost) never predicted


def test_rejects_bad_images(classifier):
    with pytest.raises(ValueError, match="side multiple of 8"):
        classifier.features(torch.zeros(2, 1, 12, 12))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        classifier.features(torch.zeros(2, 3, 8, 8))


def test_custom_weights_file_and_corruption_check(tmp_path, classifier):
    from safetensors.torch import save_file

    path = tmp_path / "mine.safetensors"
    save_file({k: v.contiguous() for k, v in classifier.net.state_dict().items()}, str(path))
    again = load_digits_classifier(path)
    x = torch.zeros(2, 1, 8, 8)
    torch.testing.assert_close(again.features(x), classifier.features(x))
    meta = digits_classifier_metadata()
    assert sha256_of(path) == meta["sha256"]  # safetensors serialisation is deterministic
    with pytest.raises(FileNotFoundError, match="train_digits_classifier.py"):
        load_digits_classifier(tmp_path / "missing.safetensors")
    assert json.dumps(meta)  # plain JSON
