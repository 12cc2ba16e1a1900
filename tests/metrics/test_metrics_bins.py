import math

import pytest
import scipy.spatial.distance
import scipy.stats
import torch

from mvm_core.metrics.bins import (
    Bins,
    fit_bins,
    jensen_shannon,
    kmeans,
    ndb_jsd,
    two_proportion_z_test,
)

CENTRES = torch.tensor(
    [
        [0.0, 0, 0],
        [10, 0, 0],
        [0, 10, 0],
        [0, 0, 10],
        [10, 10, 0],
        [10, 0, 10],
        [0, 10, 10],
        [10, 10, 10],
    ]
)


def blobs(n, generator, drop=None):
    """n samples from 8 equal, well separated Gaussian blobs (optionally without blob ``drop``)."""
    keep = [i for i in range(len(CENTRES)) if i != drop]
    which = torch.tensor(keep)[torch.randint(len(keep), (n,), generator=generator)]
    return CENTRES[which] + torch.randn(n, 3, generator=generator)


def test_two_proportion_z_test_matches_hand_formula():
    p1 = torch.tensor([0.10, 0.30, 0.0], dtype=torch.float64)
    p2 = torch.tensor([0.15, 0.30, 0.0], dtype=torch.float64)
    z, p = two_proportion_z_test(p1, 1000, p2, 500)
    pooled = (0.10 * 1000 + 0.15 * 500) / 1500
    z0 = (0.10 - 0.15) / math.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 500))
    assert float(z[0]) == pytest.approx(z0, rel=1e-12)
    assert float(p[0]) == pytest.approx(2 * scipy.stats.norm.cdf(-abs(z0)), rel=1e-12)
    assert float(z[1]) == 0 and float(p[1]) == 1  # equal proportions
    assert float(z[2]) == 0 and float(p[2]) == 1  # empty in both samples: no evidence


def test_jensen_shannon_matches_scipy():
    p = torch.tensor([0.5, 0.3, 0.2, 0.0], dtype=torch.float64)
    q = torch.tensor([0.1, 0.1, 0.4, 0.4], dtype=torch.float64)
    expected = scipy.spatial.distance.jensenshannon(p.numpy(), q.numpy()) ** 2  # natural log
    assert jensen_shannon(p, q) == pytest.approx(expected, rel=1e-9)
    assert jensen_shannon(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])) == pytest.approx(
        math.log(2)
    )
    assert jensen_shannon(p, p) == 0.0


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_kmeans_recovers_separated_blobs(backend, rng):
    x = blobs(2000, rng)
    centres = kmeans(x, 8, backend=backend, seed=0)
    nearest = torch.cdist(centres, CENTRES).min(1)
    assert sorted(nearest.indices.tolist()) == list(range(8))  # one centre per blob
    assert float(nearest.values.max()) < 0.3


def test_same_distribution_has_few_different_bins():
    g = torch.Generator().manual_seed(5)
    train, fake = blobs(4000, g), blobs(2000, g)
    result = ndb_jsd(train, fake, num_bins=16)
    assert result.ndb <= 2  # 0.05 * 16 = 0.8 expected false positives
    assert result.jsd < 0.005
    assert float(result.train_proportions.sum()) == pytest.approx(1.0)
    assert torch.all(result.train_proportions[:-1] >= result.train_proportions[1:])  # sorted


def test_dropped_cluster_is_detected():
    g = torch.Generator().manual_seed(6)
    train, fake = blobs(4000, g), blobs(2000, g, drop=3)
    bins = fit_bins(train, 16)
    result = ndb_jsd(bins, fake)
    # the bins covering blob 3 are empty in the fakes and flagged
    blob3 = bins.assign(CENTRES[3:4] + 0.0)[0]
    assert bool(result.different[blob3]) and float(result.fake_proportions[blob3]) == 0.0
    assert result.ndb >= 2  # the emptied bins, and the others now over-populated
    assert result.jsd > 0.03
    assert result.ndb_fraction == result.ndb / 16


def test_bins_reuse_equals_fitting_inside():
    g = torch.Generator().manual_seed(7)
    train, fake = blobs(1000, g), blobs(500, g, drop=0)
    bins = fit_bins(train, 8, seed=3)
    a, b = ndb_jsd(bins, fake), ndb_jsd(train, fake, num_bins=8, seed=3)
    assert (a.ndb, a.jsd) == (b.ndb, b.jsd)
    assert isinstance(bins, Bins) and bins.num_bins == 8 and bins.num_samples == 1000


def test_whitening_makes_bins_invariant_to_feature_scales():
    g = torch.Generator().manual_seed(8)
    train, fake = blobs(1500, g), blobs(500, g, drop=2)
    scale = torch.tensor([1000.0, 1.0, 0.01])
    plain = fit_bins(train, 8, whiten=True)
    scaled = fit_bins(train * scale, 8, whiten=True)
    assert torch.equal(plain.assign(fake), scaled.assign(fake * scale))
    a, b = ndb_jsd(plain, fake), ndb_jsd(scaled, fake * scale)
    assert a.ndb == b.ndb and a.jsd == pytest.approx(b.jsd, abs=1e-12)
    # without whitening the large axis dominates: the bins change
    unwhitened = fit_bins(train * scale, 8)
    assert not torch.equal(unwhitened.assign(fake * scale), scaled.assign(fake * scale))


def test_bad_arguments(rng):
    x = torch.randn(10, 2, generator=rng)
    with pytest.raises(ValueError, match="num_clusters must be an int in"):
        fit_bins(x, 11)
    with pytest.raises(ValueError, match="significance must be in"):
        ndb_jsd(x, x, num_bins=2, significance=1.5)
    bins = fit_bins(x, 2)
    with pytest.raises(ValueError, match="same feature space"):
        bins.assign(torch.randn(3, 5))
