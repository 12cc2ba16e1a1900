import itertools

import pytest
import torch

from mvm_core.metrics.kernel_distance import kid, mmd2_unbiased, polynomial_kernel


def brute_mmd2(x, y, degree=3, coef0=1.0):
    """Unbiased MMD^2 with explicit loops (float64)."""
    d = x.shape[1]
    k = lambda a, b: (float(a @ b) / d + coef0) ** degree  # noqa: E731
    m = x.shape[0]
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_polynomial_kernel_hand_checked():
    x = torch.tensor([[1.0, 2.0]])
    y = torch.tensor([[3.0, -1.0], [0.0, 0.0]])
    # gamma = 1/2: (0.5 * 1 + 1)^3 = 3.375 ; (0 + 1)^3 = 1
    torch.testing.assert_close(
        polynomial_kernel(x, y), torch.tensor([[3.375, 1.0]], dtype=torch.float64)
    )


def test_mmd2_unbiased_matches_loops(rng):
    x = torch.randn(6, 3, generator=rng, dtype=torch.float64)
    y = torch.randn(6, 3, generator=rng, dtype=torch.float64) + 0.5
    ours = mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y))
    assert float(ours) == pytest.approx(brute_mmd2(x, y), rel=1e-12)


def test_kid_with_one_full_subset_is_the_full_sample_mmd(rng):
    x = torch.randn(7, 4, generator=rng, dtype=torch.float64)
    y = torch.randn(7, 4, generator=rng, dtype=torch.float64) * 2
    mean, std = kid(x, y, subsets=1, subset_size=7)
    assert mean == pytest.approx(brute_mmd2(x, y), rel=1e-12)
    assert std == 0.0


def test_kid_is_unbiased_under_the_null():
    """Mean KID over many same-distribution draws is 0 within its standard error."""
    g = torch.Generator().manual_seed(1)
    draws, m, d = 300, 20, 8
    values, biased = [], []
    for _ in range(draws):
        x = torch.randn(m, d, generator=g, dtype=torch.float64)
        y = torch.randn(m, d, generator=g, dtype=torch.float64)
        values.append(kid(x, y, subsets=1, subset_size=m)[0])
        kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
        biased.append(float(kxx.mean() + kyy.mean() - 2 * kxy.mean()))  # V-statistic
    values, biased = torch.tensor(values), torch.tensor(biased)
    stderr = values.std() / draws**0.5
    assert abs(float(values.mean())) < 3 * float(stderr)
    # the biased (V-statistic) estimator fails the same check: the test has power
    assert float(biased.mean()) > 10 * float(biased.std() / draws**0.5)


def test_kid_detects_a_shift(rng):
    x = torch.randn(200, 8, generator=rng)
    y = torch.randn(200, 8, generator=rng) + 0.5
    same, _ = kid(x, torch.randn(200, 8, generator=rng), subsets=10, subset_size=100)
    shifted, std = kid(x, y, subsets=10, subset_size=100)
    assert shifted > 10 * abs(same) and shifted > 3 * std


def test_kid_is_reproducible_and_default_subset_size(rng):
    x, y = torch.randn(30, 3, generator=rng), torch.randn(40, 3, generator=rng)
    a = kid(x, y, subsets=5, subset_size=None, generator=torch.Generator().manual_seed(3))
    b = kid(x, y, subsets=5, subset_size=None, generator=torch.Generator().manual_seed(3))
    assert a == b


def test_kid_rejects_too_large_subsets(rng):
    x = torch.randn(10, 3, generator=rng)
    with pytest.raises(ValueError, match="subset_size must be in"):
        kid(x, x, subset_size=1000)
    with pytest.raises(ValueError, match="subsets must be >= 1"):
        kid(x, x, subsets=0, subset_size=5)
