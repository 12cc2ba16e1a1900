import pytest
import torch

from mvm_core.metrics.prdc import ball_counts, density_coverage, precision_recall


def brute_prdc(real, fake, k_pr, k_dc):
    """Reference definitions on float64 distance matrices."""
    real, fake = real.double(), fake.double()
    d_rr, d_ff, d_rf = torch.cdist(real, real), torch.cdist(fake, fake), torch.cdist(real, fake)
    # k-th nearest other sample: index k in the sorted row (index 0 is the sample itself)
    r_real_pr = d_rr.sort(1).values[:, k_pr]
    r_fake_pr = d_ff.sort(1).values[:, k_pr]
    r_real_dc = d_rr.sort(1).values[:, k_dc]
    precision = (d_rf <= r_real_pr[:, None]).any(0).double().mean()
    recall = (d_rf <= r_fake_pr[None, :]).any(1).double().mean()
    density = (d_rf < r_real_dc[:, None]).sum().double() / (k_dc * fake.shape[0])
    coverage = (d_rf.min(1).values < r_real_dc).double().mean()
    return float(precision), float(recall), float(density), float(coverage)


def test_hand_checked_line():
    # reals at 0, 1, 2, 3 on a line; k = 1 gives every real ball radius 1
    real = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    fake = torch.tensor([[0.5, 0.0], [10.0, 0.0]])
    p, r = precision_recall(real, fake, k=1)
    assert p == 0.5  # 0.5 is in a real ball, 10 is not
    assert r == 1.0  # both fake balls have radius 9.5: every real is inside the one at 0.5
    d, c = density_coverage(real, fake, k=1)
    assert d == 1.0  # 0.5 lies strictly inside the balls of 0 and 1: 2 / (k * M) = 2 / 2
    assert c == 0.5  # reals 0 and 1 have a fake strictly within radius 1


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_matches_brute_force(backend, rng):
    real = torch.randn(150, 6, generator=rng)
    fake = torch.randn(120, 6, generator=rng) * 1.3 + 0.3
    p, r = precision_recall(real, fake, k=3, backend=backend)
    d, c = density_coverage(real, fake, k=5, backend=backend)
    bp, br, bd, bc = brute_prdc(real, fake, 3, 5)
    assert (p, r, c) == pytest.approx((bp, br, bc), abs=1e-12)
    assert d == pytest.approx(bd, abs=1e-12)
    assert 0 < p < 1 and 0 < r < 1 and 0 < c < 1


def test_identical_sets(rng):
    x = torch.randn(200, 8, generator=rng)
    assert precision_recall(x, x.clone(), k=3) == (1.0, 1.0)
    density, coverage = density_coverage(x, x.clone(), k=5)
    # the open ball of each sample holds itself and its k - 1 nearest others: exactly k per ball
    assert coverage == 1.0
    assert density == pytest.approx(1.0, abs=1e-12)


def test_same_distribution_is_close_to_one(rng):
    real = torch.randn(1000, 4, generator=rng)
    fake = torch.randn(1000, 4, generator=rng)
    p, r = precision_recall(real, fake)
    d, c = density_coverage(real, fake)
    assert p > 0.85 and r > 0.85 and c > 0.9 and 0.85 < d < 1.15
    # a collapsed generator: high precision, low recall and coverage
    collapsed = torch.randn(1000, 4, generator=rng) * 0.1
    p, r = precision_recall(real, collapsed)
    d, c = density_coverage(real, collapsed)
    assert p > 0.9 and r < 0.2 and c < 0.2


def test_ball_counts_closed_and_open():
    centers = torch.tensor([[0.0], [2.0]])
    radii = torch.tensor([1.0, 1.0])  # squared radii (= radii here)
    query = torch.tensor([[1.0], [0.5], [5.0]])
    assert ball_counts(query, centers, radii).tolist() == [2, 1, 0]  # 1.0 is on both boundaries
    assert ball_counts(query, centers, radii, strict=True).tolist() == [0, 1, 0]


def test_bad_k(rng):
    x = torch.randn(5, 2, generator=rng)
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 4\]"):
        precision_recall(x, x, k=5)
