"""An adversarial (GAN) baseline in the trainer's two objective slots, with the same networks.

The trainer optimizes the metric network ``M`` together with the parameters of its metric
objective, and the generator on a set loss over ``M``'s embeddings. A GAN fits those slots:

* metric slot: :class:`DiscriminatorObjective` puts a linear head on the embedding,
  ``D(x) = head(M(x))`` (one logit), and trains ``M`` and the head as a real/fake discriminator;
* generator slot: :class:`AdversarialGeneratorLoss` scores the generated embeddings with that
  same head (it holds a reference to the discriminator objective, so both slots see one ``D``).

So ``mvm train --method gan`` compares a GAN with MvM on the same networks, data and budget: only
the two objectives change. Losses (Goodfellow et al. 2014; Lim & Ye 2017 / Miyato et al. 2018)::

    non-saturating  L_D = E softplus(-D(real)) + E softplus(D(fake))   L_G = E softplus(-D(fake))
    hinge           L_D = E relu(1 - D(real)) + E relu(1 + D(fake))    L_G = -E D(fake)

The generator's loss only needs the generated embeddings; the real ones are accepted (and
ignored) so the call matches the matching losses' ``loss(real_emb, ref_emb=fake_emb)``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_embeddings

GANLoss = Literal["non-saturating", "hinge"]
GAN_LOSSES: tuple[str, ...] = ("non-saturating", "hinge")


def _check_loss(loss: str) -> str:
    if loss not in GAN_LOSSES:
        raise ValueError(f"GAN loss must be one of {GAN_LOSSES}; got {loss!r}.")
    return loss


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       loss: GANLoss = "non-saturating") -> torch.Tensor:
    """The discriminator's loss on its logits for real ``(N,)`` and generated ``(M,)`` samples."""
    if _check_loss(loss) == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor, loss: GANLoss = "non-saturating") -> torch.Tensor:
    """The generator's loss on the discriminator's logits for its samples ``(M,)``."""
    if _check_loss(loss) == "hinge":
        return -fake_logits.mean()
    return F.softplus(-fake_logits).mean()


class DiscriminatorObjective(nn.Module):
    """Metric-slot objective of a GAN: a linear logit head on the embedding, trained to tell real
    from generated (``objective(real_emb, fake_emb) -> L_D``).

    Its head is a parameter of the objective, so the trainer optimizes it with the metric
    network. ``last_stats`` (detached) holds the mean logits ``d_real`` / ``d_fake`` and
    ``d_accuracy``, the share of samples on the right side of 0.

    Args:
        emb_dim: size of the metric network's embedding.
        loss: ``"non-saturating"`` (default) or ``"hinge"``.
    """

    def __init__(self, emb_dim: int, loss: GANLoss = "non-saturating"):
        super().__init__()
        if not isinstance(emb_dim, int) or emb_dim < 1:
            raise ValueError(f"emb_dim must be a positive int (the metric network's output size); got {emb_dim!r}.")
        self.loss = _check_loss(loss)
        self.emb_dim = emb_dim
        self.head = nn.Linear(emb_dim, 1)
        self.last_stats: dict[str, torch.Tensor] = {}

    def extra_repr(self) -> str:
        return f"loss={self.loss!r}"

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        """``D`` on embeddings ``(N, emb_dim)`` -> logits ``(N,)`` (positive means "real")."""
        if emb.ndim != 2 or emb.shape[1] != self.emb_dim:
            raise ValueError(
                f"the discriminator head takes embeddings of shape (N, {self.emb_dim}); got"
                f" {tuple(emb.shape)}. Build it with the metric network's emb_dim."
            )
        return self.head(emb).squeeze(1)

    def forward(self, real_emb: torch.Tensor, fake_emb: torch.Tensor) -> torch.Tensor:
        check_embeddings("real_emb", real_emb)
        check_embeddings("fake_emb", fake_emb)
        real, fake = self.logits(real_emb), self.logits(fake_emb)
        with torch.no_grad():
            correct = torch.cat([real > 0, fake < 0]).float().mean()
            self.last_stats = {"d_real": real.mean(), "d_fake": fake.mean(), "d_accuracy": correct}
        return discriminator_loss(real, fake, self.loss)


class AdversarialGeneratorLoss(nn.Module):
    """Generator-slot objective of a GAN: ``L_G`` on the logits that ``discriminator``'s head gives
    the generated embeddings. Called like the matching losses: ``loss(real_emb, ref_emb=fake_emb)``.

    Args:
        discriminator: the :class:`DiscriminatorObjective` used in the metric slot (shared: the
            generator is scored by the head being trained); its loss type is used here too.
    """

    def __init__(self, discriminator: DiscriminatorObjective):
        super().__init__()
        if not isinstance(discriminator, DiscriminatorObjective):
            raise TypeError(
                "AdversarialGeneratorLoss needs the DiscriminatorObjective of the metric slot (its"
                f" head scores the samples); got {type(discriminator).__name__}. Build both with"
                " gan_objectives(emb_dim)."
            )
        self.discriminator = discriminator
        self.last_terms: dict[str, torch.Tensor] = {}

    def forward(self, embeddings: torch.Tensor | None = None, labels=None, indices_tuple=None,
                ref_emb: torch.Tensor | None = None, ref_labels=None) -> torch.Tensor:
        if ref_emb is None:
            raise ValueError("call loss(real_emb, ref_emb=fake_emb): the generated embeddings are ref_emb.")
        check_embeddings("fake_emb (ref_emb)", ref_emb)
        logits = self.discriminator.logits(ref_emb)
        self.last_terms = {"d_fake_g": logits.detach().mean()}
        return generator_loss(logits, self.discriminator.loss)


def gan_objectives(emb_dim: int, loss: GANLoss = "non-saturating"
                   ) -> tuple[AdversarialGeneratorLoss, DiscriminatorObjective]:
    """``(matching, metric_objective)`` for the trainer's slots: a GAN on the metric network.

    >>> matching, objective = gan_objectives(emb_dim=32, loss="hinge")
    >>> # Trainer(G, M, data, matching=matching, metric_objective=objective)
    """
    discriminator = DiscriminatorObjective(emb_dim, loss)
    return AdversarialGeneratorLoss(discriminator), discriminator


__all__ = [
    "GAN_LOSSES", "AdversarialGeneratorLoss", "DiscriminatorObjective", "discriminator_loss",
    "gan_objectives", "generator_loss",
]
