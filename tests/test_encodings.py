"""Tests for mvm_core.nets.encodings."""

from __future__ import annotations

import math

import pytest
import torch

from mvm_core.nets.encodings import FourierFeatures


def test_fourier_features_brute_force_float64():
    enc = FourierFeatures(2, num_frequencies=3, scales=[1.0, 4.0], include_input=True, seed=0)
    x = torch.randn(5, 2, dtype=torch.float64)
    out = enc(x)
    assert out.shape == (5, enc.out_features) == (5, 2 * 6 + 2)
    b = enc.B.double()
    for i in range(5):
        for k in range(6):
            phase = 2 * math.pi * (x[i, 0] * b[0, k] + x[i, 1] * b[1, k])
            assert out[i, k].item() == pytest.approx(math.sin(phase), abs=1e-12)
            assert out[i, 6 + k].item() == pytest.approx(math.cos(phase), abs=1e-12)
    assert torch.equal(out[:, 12:], x)


def test_scales_and_seed():
    a = FourierFeatures(2, num_frequencies=2000, scales=[0.5, 8.0], seed=1)
    b = FourierFeatures(2, num_frequencies=2000, scales=[0.5, 8.0], seed=1)
    assert torch.equal(a.B, b.B)
    assert a.B[:, :2000].std().item() == pytest.approx(0.5, rel=0.05)
    assert a.B[:, 2000:].std().item() == pytest.approx(8.0, rel=0.05)
    assert "B" in dict(a.named_buffers()) and not list(a.parameters())


def test_trainable_and_gradcheck():
    enc = FourierFeatures(2, num_frequencies=3, trainable=True, seed=0).double()
    assert [n for n, _ in enc.named_parameters()] == ["B"]
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(enc, (x,))


def test_errors():
    with pytest.raises(ValueError, match="scales"):
        FourierFeatures(2, scales=[0.0])
    with pytest.raises(ValueError, match="num_frequencies"):
        FourierFeatures(2, num_frequencies=0)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        FourierFeatures(2)(torch.zeros(3, 3))
