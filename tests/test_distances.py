"""mvm_core.distances: exact values, gradients against autograd through differences, bad input."""

from __future__ import annotations

import pytest
import torch

import mvm_core.distances as distances
from mvm_core.distances import euclidean_distances


def _reference(x, y, power, eps):
    return (((x[:, None] - y[None]) ** 2).sum(-1) + eps).pow(power / 2)


@pytest.mark.parametrize("power", [0.5, 1.0, 1.5, 2.0])
def test_gradcheck_both_arguments(power):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: euclidean_distances(a, b, power, 1e-9), (x, y))
    assert torch.autograd.gradcheck(lambda a: euclidean_distances(a, None, power, 1e-9), (x,))


def test_values_and_gradients_equal_autograd_through_differences_in_blocks(monkeypatch):
    monkeypatch.setattr(distances, "_BLOCK_ELEMENTS", 7)  # forces one row per block
    g = torch.Generator().manual_seed(1)
    x = torch.randn(9, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(9, 6, generator=g, dtype=torch.float64)
    ours = euclidean_distances(x, y, 1.0, 1e-12)
    (ours * weights).sum().backward()
    gx, gy = x.grad.clone(), y.grad.clone()
    x.grad = y.grad = None
    ref = _reference(x, y, 1.0, 1e-12)
    (ref * weights).sum().backward()
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx, x.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gy, y.grad, rtol=1e-10, atol=1e-12)


def test_exact_for_nearby_points_far_from_the_origin_in_float32():
    # the Gram form |x|^2 + |y|^2 - 2xy loses everything here: |x|^2 ~ 1e6, distances ~ 1e-2
    g = torch.Generator().manual_seed(2)
    base = torch.full((1, 2), 1000.0, dtype=torch.float64)
    x64 = base + 0.01 * torch.randn(6, 2, generator=g, dtype=torch.float64)
    y64 = base + 0.01 * torch.randn(5, 2, generator=g, dtype=torch.float64)
    ours = euclidean_distances(x64.float(), y64.float(), 1.0, 0.0).double()
    truth = _reference(x64.float().double(), y64.float().double(), 1.0, 0.0)
    assert (ours - truth).abs().max() < 1e-6
    x = x64.float().requires_grad_()
    euclidean_distances(x, y64.float(), 1.0, 0.0).sum().backward()
    xr = x64.float().double().requires_grad_()
    _reference(xr, y64.float().double(), 1.0, 0.0).sum().backward()
    assert (x.grad.double() - xr.grad).abs().max() < 1e-3 * xr.grad.abs().max()


def test_hand_checked_values():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    d = euclidean_distances(x, None, 1.0, 0.0)
    assert d.tolist() == [[0.0, 5.0], [5.0, 0.0]]
    assert euclidean_distances(x, x[:1], 2.0, 0.0).flatten().tolist() == [0.0, 25.0]


def test_bad_shapes_name_the_problem():
    with pytest.raises(ValueError, match="same d"):
        euclidean_distances(torch.zeros(3, 2), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        euclidean_distances(torch.zeros(3))


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_second_derivatives(power):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda a, b: euclidean_distances(a, b, power, 1e-9), (x, y))
