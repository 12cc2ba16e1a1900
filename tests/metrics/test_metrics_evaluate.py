import math

import pytest
import torch

from mvm_core.data.toy import ring
from mvm_core.metrics import (
    DEFAULTS,
    METRICS,
    density_coverage,
    evaluate,
    fid,
    fit_bins,
    kid,
    mode_coverage,
    ndb_jsd,
    precision_recall,
)
from mvm_core.metrics.frechet import feature_statistics


@pytest.fixture
def features(rng):
    real = torch.randn(300, 6, generator=rng)
    fake = torch.randn(250, 6, generator=rng) * 1.2 + 0.2
    return real, fake


def test_default_metrics_are_keyed_by_space_and_equal_direct_calls(features):
    real, fake = features
    out = evaluate(real, fake, space="metric-net")
    assert set(out) == {
        f"{k}@metric-net"
        for k in ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage")
    }
    assert all(isinstance(v, float) for v in out.values())
    assert out["fid@metric-net"] == fid(real, fake)
    mean, std = kid(
        real,
        fake,
        subsets=DEFAULTS["kid_subsets"],
        subset_size=None,
        generator=torch.Generator().manual_seed(DEFAULTS["seed"]),
    )
    assert (out["kid@metric-net"], out["kid_std@metric-net"]) == (mean, std)
    assert (out["precision@metric-net"], out["recall@metric-net"]) == precision_recall(
        real, fake, 3
    )
    assert (out["density@metric-net"], out["coverage@metric-net"]) == density_coverage(
        real, fake, 5
    )


def test_spaces_never_mix(features):
    real, fake = features
    a = evaluate(real, fake, ("fid",), space="inception")
    b = evaluate(real, fake, ("fid",), space="digits-classifier")
    assert set(a) == {"fid@inception"} and set(b) == {"fid@digits-classifier"}


def test_bins_options_and_train_features(features, rng):
    real, fake = features
    train = torch.randn(600, 6, generator=rng)
    out = evaluate(
        real,
        fake,
        ("ndb", "jsd", "nn_distance"),
        "f",
        train_features=train,
        options={"ndb_bins": 10},
    )
    expected = ndb_jsd(fit_bins(train, 10, seed=0), fake)
    assert out["ndb@f"] == expected.ndb and out["jsd@f"] == expected.jsd
    assert out["ndb_fraction@f"] == expected.ndb / 10
    assert {"nn_distance@f", "nn_distance_ratio@f", "copy_fraction@f"} <= set(out)
    bins = fit_bins(train, 10, seed=0)
    assert evaluate(None, fake, ("jsd",), "f", bins=bins)["jsd@f"] == expected.jsd


def test_cached_real_statistics_give_the_same_fid(features):
    real, fake = features
    stats = feature_statistics(real)
    assert evaluate(None, fake, "fid", "f", real_statistics=stats) == evaluate(
        real, fake, "fid", "f"
    )


def test_logit_metrics_and_modes(rng):
    logits = 50.0 * torch.eye(10).repeat(5, 1)
    out = evaluate(
        None,
        None,
        ("is", "class_coverage"),
        "digits-classifier",
        fake_logits=logits,
        options={"is_splits": 1},
    )
    assert out["is@digits-classifier"] == pytest.approx(10.0, rel=1e-9)
    assert out["class_coverage@digits-classifier"] == 1.0
    assert out["min_class_share@digits-classifier"] == pytest.approx(1.0)
    mixture = ring()
    samples = mixture.sample(2500, torch.Generator().manual_seed(0))
    modes = evaluate(None, samples, "modes", "data", mixture=mixture)
    report = mode_coverage(samples, mixture)
    assert modes == {
        "modes@data": 8.0,
        "high_quality@data": report.high_quality_fraction,
        "reverse_kl@data": report.reverse_kl,
    }


def test_diversity_keys(features):
    real, fake = features
    out = evaluate(real, fake, "diversity", "f")
    assert out["diversity@f"] > out["diversity_real@f"]  # the fakes are spread 1.2x wider
    assert math.isfinite(out["diversity@f"])


def test_helpful_errors(features):
    real, fake = features
    with pytest.raises(ValueError, match="Did you mean 'precision'"):
        evaluate(real, fake, ("precison",), "f")
    with pytest.raises(ValueError, match="space must name the feature space"):
        evaluate(real, fake, ("fid",))
    with pytest.raises(ValueError, match="without '@'"):
        evaluate(real, fake, ("fid",), "fid@x")
    with pytest.raises(ValueError, match="Did you mean 'kid_subsets'"):
        evaluate(real, fake, ("kid",), "f", options={"kid_subset": 3})
    with pytest.raises(ValueError, match="needs fake_logits"):
        evaluate(real, fake, ("is",), "f")
    with pytest.raises(ValueError, match="needs mixture"):
        evaluate(real, fake, ("modes",), "f")
    assert "fid" in METRICS and all(len(v) == 2 for v in METRICS.values())
