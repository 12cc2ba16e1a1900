"""msgan:ModeSeekingLoss: hand-checked values, gradient direction, pairs and conditions."""

from __future__ import annotations

import mvm_core
import pytest
import torch
from mvm_core.context import StepContext

from mvm_core_msgan import ModeSeekingLoss, mode_seeking_loss, mode_seeking_ratio

pytest_plugins = ["mvm_core.testing"]

torch.set_num_threads(1)


def _context(z, fake, cond=None, pairs=True):
    emb = torch.zeros(fake.shape[0], 2)
    return StepContext(step=0, z=z, fake=fake, real=fake.detach(), fake_emb=emb, real_emb=emb,
                       cond=cond, pairs=pairs)


def test_hand_checked_value():
    # pairs: (z=0 -> x=(0,0)), (z=1 -> x=(1,3)) and (z=2 -> x=(2,2)), (z=5 -> x=(2,6))
    z = torch.tensor([[0.0], [1.0], [2.0], [5.0]])
    fake = torch.tensor([[0.0, 0.0], [1.0, 3.0], [2.0, 2.0], [2.0, 6.0]])
    # |x1 - x2| = (2,2), (1,3): mean 2; |z1 - z2| = 2, 4: mean 3; lz = 2/3
    term = ModeSeekingLoss()
    loss = term(_context(z, fake))
    assert term.last_ratio.item() == pytest.approx(2 / 3)
    assert loss.item() == pytest.approx(1 / (2 / 3 + 1e-5))
    assert ModeSeekingLoss(weight=0.5, eps=0.1)(_context(z, fake)).item() == pytest.approx(
        0.5 / (2 / 3 + 0.1)
    )
    x1, x2, z1, z2 = fake[:2], fake[2:], z[:2], z[2:]
    assert mode_seeking_ratio(x1, x2, z1, z2).item() == pytest.approx(2 / 3)
    assert mode_seeking_loss(x1, x2, z1, z2).item() == pytest.approx(loss.item())


def test_collapsed_pairs_cost_one_over_eps():
    z = torch.tensor([[0.0], [1.0]])
    fake = torch.ones(2, 3)  # the generator ignores z
    assert ModeSeekingLoss(eps=1e-5)(_context(z, fake)).item() == pytest.approx(1e5)


def test_more_diverse_pairs_lower_the_loss_and_the_gradient_spreads_them():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(8, 4, generator=gen)
    base = torch.randn(4, 3, generator=gen)
    close = torch.cat([base, base + 0.01 * torch.randn(4, 3, generator=gen)])
    far = torch.cat([base, base + 1.0 * torch.randn(4, 3, generator=gen)])
    term = ModeSeekingLoss()
    assert term(_context(z, far)).item() < term(_context(z, close)).item()

    fake = close.clone().requires_grad_(True)
    loss = term(_context(z, fake))
    loss.backward()
    spread = lambda x: (x[:4] - x[4:]).abs().mean().item()  # noqa: E731
    stepped = (fake - 1e-6 * fake.grad).detach()  # a small gradient-descent step
    assert spread(stepped) > spread(close)
    assert term(_context(z, stepped)).item() < loss.item()


def test_conditional_generator_and_matching_conditions(mvm_step_context):
    ctx = mvm_step_context(batch_size=8, pairs=True, num_classes=3, z_dim=3, sample_shape=(2,))
    assert torch.equal(ctx.cond[:4], ctx.cond[4:])
    loss = ModeSeekingLoss()(ctx)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in ctx.generator.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum() for g in grads) > 0  # it trains the generator
    bad = _context(ctx.z, ctx.fake.detach(), cond=torch.tensor([0, 1, 2, 0, 1, 1, 2, 0]))
    with pytest.raises(ValueError, match="share their conditions"):
        ModeSeekingLoss()(bad)


def test_images_from_an_unconditional_generator(mvm_step_context):
    ctx = mvm_step_context(batch_size=6, pairs=True, z_dim=4, sample_shape=(1, 4, 4))
    assert ctx.cond is None
    term = ModeSeekingLoss()
    expected = 1 / ((ctx.fake[:3] - ctx.fake[3:]).abs().mean() / (ctx.z[:3] - ctx.z[3:]).abs().mean()
                    + 1e-5)
    assert term(ctx).item() == pytest.approx(expected.item(), rel=1e-6)


def test_clear_error_without_pairs(mvm_step_context):
    ctx = mvm_step_context(batch_size=8, pairs=False)
    with pytest.raises(ValueError, match="needs a paired batch.*needs_pairs = True"):
        ModeSeekingLoss()(ctx)


@pytest.mark.parametrize("kwargs, match", [({"eps": 0}, "eps must be a number > 0"),
                                           ({"weight": -1}, "weight must be a number >= 0")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModeSeekingLoss(**kwargs)


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match="x1/x2 must have the same shape"):
        mode_seeking_ratio(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 1), torch.zeros(2, 1))


def test_registered_under_msgan_prefix(mvm_installed_plugins):
    assert mvm_core.list_regularizers("msgan:*") == ["msgan:ModeSeekingLoss"]
    term = mvm_core.create_regularizer("msgan:ModeSeekingLoss", weight=2.0)
    assert isinstance(term, ModeSeekingLoss) and term.needs_pairs and term.weight == 2.0
    info = {p.name: p for p in mvm_installed_plugins.plugins()}["msgan"]
    assert info.status == "loaded" and info.distribution == "mvm-core-msgan"
    assert dict(info.registered) == {"regularizers": ("msgan:ModeSeekingLoss",)}
