"""The GAN baseline in the trainer's slots: hand-checked losses, gradient directions, a 2D GAN."""

from __future__ import annotations

import math

import pytest
import torch

from mvm_core.adversarial import (
    AdversarialGeneratorLoss,
    DiscriminatorObjective,
    discriminator_loss,
    gan_objectives,
    generator_loss,
)
from mvm_core.build import build_trainer
from mvm_core.data import tensor_dataset
from mvm_core.nets import MLPGenerator, MLPMetricNet
from mvm_core.runconfig import build_run_config
from mvm_core.trainer import TrainConfig, Trainer

torch.set_num_threads(1)


def _head(objective: DiscriminatorObjective, weight: list[float], bias: float) -> None:
    with torch.no_grad():
        objective.head.weight.copy_(torch.tensor([weight]))
        objective.head.bias.fill_(bias)


def test_losses_by_hand():
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([0.0, -1.0])
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731  softplus
    # non-saturating: mean softplus(-real) + mean softplus(fake); generator: mean softplus(-fake)
    assert discriminator_loss(real, fake).item() == pytest.approx(
        (sp(0) + sp(-2)) / 2 + (sp(0) + sp(-1)) / 2)
    assert generator_loss(fake).item() == pytest.approx((sp(0) + sp(1)) / 2)
    # hinge: mean relu(1 - real) + mean relu(1 + fake) = (1 + 0)/2 + (1 + 0)/2; generator: -mean fake
    assert discriminator_loss(real, fake, "hinge").item() == pytest.approx(1.0)
    assert generator_loss(fake, "hinge").item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="non-saturating"):
        generator_loss(fake, "wasserstein")


def test_discriminator_objective_uses_its_linear_head():
    objective = DiscriminatorObjective(emb_dim=2)
    _head(objective, [2.0, -1.0], 0.5)
    real_emb = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # logits 2.5, 0.5
    fake_emb = torch.tensor([[0.0, 1.0], [1.0, 3.0]])  # logits -0.5, -0.5
    assert torch.allclose(objective.logits(real_emb), torch.tensor([2.5, 0.5]))
    loss = objective(real_emb, fake_emb)
    expected = discriminator_loss(torch.tensor([2.5, 0.5]), torch.tensor([-0.5, -0.5]))
    assert loss.item() == pytest.approx(expected.item())
    assert objective.last_stats["d_accuracy"].item() == 1.0  # every sample on its side of 0
    assert objective.last_stats["d_real"].item() == pytest.approx(1.5)
    with pytest.raises(ValueError, match="emb_dim"):
        objective.logits(torch.zeros(3, 5))


@pytest.mark.parametrize("kind", ["non-saturating", "hinge"])
def test_gradients_push_each_player_its_way(kind):
    torch.manual_seed(0)
    matching, objective = gan_objectives(emb_dim=3, loss=kind)
    assert matching.discriminator is objective  # one head shared by both slots
    real = torch.randn(8, 3)
    fake = (torch.randn(8, 3) * 0.1).requires_grad_(True)
    # a discriminator step on its head lowers its loss
    before = objective(real, fake.detach())
    before.backward()
    with torch.no_grad():
        for p in objective.parameters():
            p -= 0.1 * p.grad
    assert objective(real, fake.detach()).item() < before.item()
    # generator loss: a gradient step on the fake embeddings raises their logits
    loss = matching(real, ref_emb=fake)
    assert set(matching.last_terms) == {"d_fake_g"}
    loss.backward()
    moved = (fake - 0.1 * fake.grad).detach()
    assert objective.logits(moved).mean() > objective.logits(fake).mean()
    assert matching(real, ref_emb=moved).item() < loss.item()


def test_generator_loss_needs_the_discriminator_objective():
    with pytest.raises(TypeError, match="gan_objectives"):
        AdversarialGeneratorLoss(torch.nn.Linear(2, 1))
    matching, _ = gan_objectives(2)
    with pytest.raises(ValueError, match="ref_emb"):
        matching(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="emb_dim"):
        DiscriminatorObjective(0)


def test_a_tiny_2d_gan_moves_its_samples_onto_the_data():
    """A GAN with the trainer's slots learns a shifted Gaussian (its mean error shrinks > 6x)."""
    torch.manual_seed(0)
    target = torch.tensor([2.0, -1.0])
    data = tensor_dataset(target + 0.1 * torch.randn(2048, 2))
    matching, objective = gan_objectives(emb_dim=8)
    trainer = Trainer(MLPGenerator(z_dim=2, hidden=32, depth=2), MLPMetricNet(emb_dim=8, hidden=32, depth=2),
                      data, TrainConfig(steps=200, batch_size=64, g_lr=1e-3, m_lr=1e-3, g_betas=(0.5, 0.999),
                                        log_every=100, device="cpu"),
                      matching=matching, metric_objective=objective)
    error = lambda: (trainer.sample(512).mean(0) - target).norm().item()  # noqa: E731
    start = error()
    history = trainer.fit()
    assert start > 1.5
    assert error() < 0.15 * start  # GAN dynamics oscillate (0.03-0.14 x start after 75-200 steps)
    assert {"d_real", "d_fake", "d_accuracy", "d_fake_g", "loss_m"} <= set(history[-1])


def test_method_gan_builds_from_the_run_config():
    config = build_run_config(overrides={"data": "ring", "method": "gan", "gan_loss": "hinge", "steps": 2,
                                         "batch_size": 16, "width": 16, "device": "cpu"})
    trainer = build_trainer(config)
    assert isinstance(trainer.metric_objective, DiscriminatorObjective)
    assert trainer.metric_objective.loss == "hinge" and trainer.matching.discriminator is trainer.metric_objective
    # the head is optimized with the metric network
    head = trainer.metric_objective.head.weight
    assert any(p is head for group in trainer.m_opt.param_groups for p in group["params"])
    trainer.fit()
    with pytest.raises(ValueError, match="GAN loss"):
        build_trainer(build_run_config(overrides={"data": "ring", "method": "gan", "gan_loss": "wgan"}))
