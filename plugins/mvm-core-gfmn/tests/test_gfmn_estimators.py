"""Minibatch, MA and AMA estimators against hand computations and independent references."""

from __future__ import annotations

import pytest
import torch

from mvm_core_gfmn.estimators import (
    AdamMovingAverage,
    Minibatch,
    MovingAverage,
    make_estimator,
)

D64 = torch.float64


def test_ama_two_steps_by_hand():
    # lr 0.1, betas (0.5, 0.9), eps 0; v starts at 0.
    # step 1: Delta=[1,-2]; g=v-Delta=[-1,2]; m=0.5g=[-.5,1]; s=0.1g^2=[.1,.4]
    #   m_hat=m/0.5=[-1,2]; s_hat=s/0.1=[1,4]; v=0-0.1*[-1/1, 2/2]=[0.1,-0.1]
    # step 2: Delta=[3,0]; g=[-2.9,-0.1]; m=0.5m+0.5g=[-1.7,0.45]; s=0.9s+0.1g^2=[0.931,0.361]
    #   m_hat=m/0.75=[-2.26667,0.6]; s_hat=s/0.19=[4.9,1.9]
    #   v=[0.1,-0.1]-0.1*[-2.266667/2.213594, 0.6/1.378405]=[0.2023976,-0.1435286]
    ama = AdamMovingAverage(lr=0.1, betas=(0.5, 0.9), eps=0.0)
    state = ama.init_state(torch.zeros(2, dtype=D64))
    delta1 = torch.tensor([1.0, -2.0], dtype=D64, requires_grad=True)
    loss1 = ama.loss(delta1, state)
    torch.testing.assert_close(state["v"], torch.tensor([0.1, -0.1], dtype=D64))
    torch.testing.assert_close(state["exp_avg"], torch.tensor([-0.5, 1.0], dtype=D64))
    torch.testing.assert_close(state["exp_avg_sq"], torch.tensor([0.1, 0.4], dtype=D64))
    assert int(state["step"]) == 1
    # the generator's loss is v^T Delta with v constant: value 0.1*1 + (-0.1)*(-2) = 0.3
    assert loss1.item() == pytest.approx(0.3)
    (grad,) = torch.autograd.grad(loss1, delta1)
    torch.testing.assert_close(grad, torch.tensor([0.1, -0.1], dtype=D64))

    ama.loss(torch.tensor([3.0, 0.0], dtype=D64), state)
    torch.testing.assert_close(state["exp_avg"], torch.tensor([-1.7, 0.45], dtype=D64))
    torch.testing.assert_close(state["exp_avg_sq"], torch.tensor([0.931, 0.361], dtype=D64))
    torch.testing.assert_close(
        state["v"], torch.tensor([0.2023976, -0.1435286], dtype=D64), atol=1e-7, rtol=0
    )


def test_ama_matches_torch_adam_on_quadratic_over_many_steps():
    # Independent reference: torch.optim.Adam minimizing 1/2 ||v - Delta_t||^2, one step each.
    gen = torch.Generator().manual_seed(3)
    deltas = torch.randn(12, 5, generator=gen, dtype=D64) * 3 + 1
    ama = AdamMovingAverage(lr=0.05, betas=(0.5, 0.999), eps=1e-8)
    state = ama.init_state(torch.zeros(5, dtype=D64))
    v_ref = torch.zeros(5, dtype=D64, requires_grad=True)
    opt = torch.optim.Adam([v_ref], lr=0.05, betas=(0.5, 0.999), eps=1e-8)
    for delta in deltas:
        ama.loss(delta, state)
        opt.zero_grad()
        (0.5 * (v_ref - delta).square().sum()).backward()
        opt.step()
        torch.testing.assert_close(state["v"], v_ref.detach(), rtol=1e-12, atol=1e-12)
    assert int(state["step"]) == 12


def test_ma_equals_closed_form():
    gen = torch.Generator().manual_seed(1)
    alpha, steps = 0.3, 6
    deltas = torch.randn(steps, 4, generator=gen, dtype=D64)
    ma = MovingAverage(alpha)
    state = ma.init_state(torch.zeros(4, dtype=D64))
    for t in range(1, steps + 1):
        delta = deltas[t - 1].clone().requires_grad_(True)
        loss = ma.loss(delta, state)
        # v_t = (1-a)^(t-1) Delta_1 + sum_{s=2..t} a (1-a)^(t-s) Delta_s
        expected = (1 - alpha) ** (t - 1) * deltas[0]
        for s in range(2, t + 1):
            expected = expected + alpha * (1 - alpha) ** (t - s) * deltas[s - 1]
        torch.testing.assert_close(state["v"], expected)
        assert loss.item() == pytest.approx(float(expected.square().sum()))
        (grad,) = torch.autograd.grad(loss, delta)
        torch.testing.assert_close(grad, 2 * alpha * expected)  # d||v_t||^2/dDelta_t


def test_ma_with_alpha_one_is_the_minibatch_estimator():
    ma, mb = MovingAverage(1.0), Minibatch()
    state = ma.init_state(torch.zeros(3, dtype=D64))
    for delta in torch.randn(4, 3, dtype=D64, generator=torch.Generator().manual_seed(0)):
        a = delta.clone().requires_grad_(True)
        b = delta.clone().requires_grad_(True)
        la, lb = ma.loss(a, state), mb.loss(b, {})
        assert la.item() == pytest.approx(lb.item())
        torch.testing.assert_close(torch.autograd.grad(la, a)[0], torch.autograd.grad(lb, b)[0])


def test_minibatch_is_squared_norm_with_gradient_two_delta():
    delta = torch.tensor([1.0, -3.0], dtype=D64, requires_grad=True)
    loss = Minibatch().loss(delta, {})
    assert loss.item() == 10.0
    torch.testing.assert_close(torch.autograd.grad(loss, delta)[0], 2 * delta.detach())


def test_make_estimator_and_bad_arguments():
    assert isinstance(make_estimator("ama", lr=1e-3), AdamMovingAverage)
    assert make_estimator("ma", alpha=0.2).alpha == 0.2
    with pytest.raises(ValueError, match="estimator must be one of"):
        make_estimator("adam")
    with pytest.raises(ValueError, match="alpha must be in"):
        MovingAverage(0.0)
    with pytest.raises(ValueError, match="betas must be"):
        AdamMovingAverage(betas=(0.5, 1.0))
    with pytest.raises(ValueError, match="set them on the instance"):
        make_estimator(Minibatch(), lr=1.0)
