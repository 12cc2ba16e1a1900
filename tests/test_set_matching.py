"""Brute-force float64 checks and gradchecks for mvm_core.set_matching."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from mvm_core.set_matching import (
    EnergyMatchingLoss,
    chamfer_distance,
    cross_diameter_matching,
    energy_distance,
    euclidean_distances,
    mean_offdiagonal,
)


def _sets(n=5, m=4, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, d, generator=g, dtype=torch.float64),
        torch.randn(m, d, generator=g, dtype=torch.float64) + 0.5,
    )


def _dist(a, b, power):
    return math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b))) ** power


def test_euclidean_distances_brute_force():
    x, y = _sets()
    d = euclidean_distances(x, y, power=1.5, eps=0.0)
    for i, j in itertools.product(range(len(x)), range(len(y))):
        assert d[i, j].item() == pytest.approx(_dist(x[i], y[j], 1.5), rel=1e-12)


@pytest.mark.parametrize("power", [0.5, 1.0, 1.5])
def test_energy_distance_brute_force(power):
    x, y = _sets()
    n, m = len(x), len(y)
    cross = sum(_dist(a, b, power) for a in x for b in y) / (n * m)
    rr = sum(_dist(x[i], x[j], power) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    ff = sum(_dist(y[i], y[j], power) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    got = energy_distance(x, y, power=power, eps=0.0)
    assert got.item() == pytest.approx(2 * cross - rr - ff, rel=1e-10)
    no_real = energy_distance(x, y, power=power, eps=0.0, include_real=False)
    assert no_real.item() == pytest.approx(2 * cross - ff, rel=1e-10)


def test_energy_distance_separates_and_is_symmetric():
    x, y = _sets(n=6, m=6)
    assert energy_distance(x, y).item() > 0
    assert energy_distance(x, y).item() == pytest.approx(energy_distance(y, x).item(), rel=1e-12)
    # invariant to the order of either set
    perm = torch.randperm(6)
    assert energy_distance(x[perm], y).item() == pytest.approx(energy_distance(x, y).item())


def test_energy_distance_rejects_power_two():
    x, y = _sets()
    with pytest.raises(ValueError, match="power"):
        energy_distance(x, y, power=2.0)


def test_chamfer_brute_force():
    x, y = _sets()
    prec = sum(min(_dist(f, r, 1) for r in x) for f in y) / len(y)
    cov = sum(min(_dist(r, f, 1) for f in y) for r in x) / len(x)
    got = chamfer_distance(x, y, eps=0.0, precision_weight=2.0, coverage_weight=0.5)
    assert got.item() == pytest.approx(2.0 * prec + 0.5 * cov, rel=1e-12)
    assert chamfer_distance(x, x, eps=0.0).item() == 0.0


def test_cross_diameter_matching_brute_force():
    x, y = _sets(n=4, m=3)
    within = sorted(_dist(x[i], x[j], 1) for i in range(4) for j in range(i + 1, 4))  # 6 values
    cross = sorted(_dist(a, b, 1) for a in x for b in y)  # 12 values
    k = 12

    def q(vals, t):
        pos = t * (len(vals) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(vals) - 1)
        return vals[lo] * (1 - (pos - lo)) + vals[hi] * (pos - lo)

    levels = [i / (k - 1) for i in range(k)]
    expected = math.sqrt(sum((q(within, t) - q(cross, t)) ** 2 for t in levels) / k)
    got = cross_diameter_matching(x, y, power=1.0, p=2.0, eps=0.0)
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_mean_offdiagonal():
    d = torch.arange(9, dtype=torch.float64).reshape(3, 3)
    assert mean_offdiagonal(d).item() == pytest.approx((1 + 2 + 3 + 5 + 6 + 7) / 6)
    with pytest.raises(ValueError):
        mean_offdiagonal(torch.zeros(1, 1))


@pytest.mark.parametrize(
    "fn",
    [
        lambda a, b: energy_distance(a, b, power=1.0, eps=1e-6),
        lambda a, b: energy_distance(a, b, power=1.5, eps=1e-6),
        lambda a, b: chamfer_distance(a, b, eps=1e-6),
        lambda a, b: cross_diameter_matching(a, b, eps=1e-6),
    ],
)
def test_gradcheck(fn):
    x, y = _sets(n=4, m=3, d=2, seed=3)
    x.requires_grad_(True)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (x, y))


def test_energy_matching_loss_matches_functions():
    x, y = _sets()
    loss_fn = EnergyMatchingLoss(energy_weight=1.0, chamfer_weight=0.5, cross_weight=0.25, eps=0.0)
    got = loss_fn(x, ref_emb=y)
    expected = (
        energy_distance(x, y, eps=0.0)
        + 0.5 * chamfer_distance(x, y, eps=0.0)
        + 0.25 * cross_diameter_matching(x, y, eps=0.0)
    )
    assert got.item() == pytest.approx(expected.item(), rel=1e-10)
    assert set(loss_fn.last_terms) == {"energy", "chamfer", "cross"}


def test_energy_matching_loss_errors():
    x, y = _sets()
    with pytest.raises(ValueError, match="ref_emb"):
        EnergyMatchingLoss()(x)
    with pytest.raises(ValueError, match="at least one"):
        EnergyMatchingLoss(energy_weight=0.0)
    with pytest.raises(ValueError, match="same embedding size"):
        EnergyMatchingLoss()(x, ref_emb=y[:, :2])


def test_energy_matching_loss_trains_a_set_toward_another():
    torch.manual_seed(0)
    target = torch.randn(64, 2, dtype=torch.float64) * 0.3 + 2.0
    moving = torch.randn(64, 2, dtype=torch.float64).requires_grad_(True)
    opt = torch.optim.Adam([moving], lr=0.05)
    loss_fn = EnergyMatchingLoss(energy_weight=1.0)
    for _ in range(300):
        opt.zero_grad()
        loss_fn(target, ref_emb=moving).backward()
        opt.step()
    assert (moving.detach().mean(0) - target.mean(0)).norm() < 0.1
