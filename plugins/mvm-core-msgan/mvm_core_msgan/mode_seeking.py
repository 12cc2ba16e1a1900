"""The mode-seeking regularizer of MSGAN (Mao et al., "Mode Seeking Generative Adversarial
Networks for Diverse Image Synthesis", CVPR 2019).

For two latent codes ``z1, z2`` under the same condition, the generator should keep its outputs
apart in proportion to the codes' distance. The reference implementation (the MSGAN repository's
DCGAN / pix2pix / DRIT models; summarized in mvm-core's docs/method.md) uses mean absolute differences::

    lz   = mean|G(c, z1) - G(c, z2)| / mean|z1 - z2|
    loss = 1 / (lz + eps),  eps = 1e-5

added to the generator loss with weight ``lambda_ms`` (1 in the reference). Minimizing ``loss``
maximizes ``lz``: collapsed pairs (``G(z1) == G(z2)``) cost ``1 / eps``.
"""

from __future__ import annotations

import torch
from mvm_core.context import StepContext


def mode_seeking_ratio(
    x1: torch.Tensor, x2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor
) -> torch.Tensor:
    """``mean|x1 - x2| / mean|z1 - z2|`` for paired outputs ``x`` (N, ...) and codes ``z`` (N, ...)."""
    for name, a, b in (("x1/x2", x1, x2), ("z1/z2", z1, z2)):
        if a.shape != b.shape:
            raise ValueError(
                f"{name} must have the same shape (pair i is ({name[:2]}[i], {name[3:]}[i])); got"
                f" {tuple(a.shape)} and {tuple(b.shape)}."
            )
    if x1.shape[0] == 0 or x1.shape[0] != z1.shape[0]:
        raise ValueError(
            f"x and z must hold the same non-zero number of pairs; got {x1.shape[0]} outputs and"
            f" {z1.shape[0]} codes."
        )
    return (x1 - x2).abs().mean() / (z1 - z2).abs().mean()


def mode_seeking_loss(
    x1: torch.Tensor, x2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """``1 / (lz + eps)`` with ``lz`` from :func:`mode_seeking_ratio` (a scalar; lower = more diverse)."""
    return 1.0 / (mode_seeking_ratio(x1, x2, z1, z2) + eps)


class ModeSeekingLoss(torch.nn.Module):
    """MSGAN's mode-seeking term for the generator objective: ``weight / (lz + eps)``.

    A :class:`mvm_core.context.GeneratorTerm` with ``needs_pairs = True``: the trainer builds the
    batch as two halves, ``z[i]`` and ``z[i + B // 2]`` under the same condition ``cond[i]``, and
    the term compares ``fake`` across the halves (no extra generator pass). Works for
    unconditional generators (``ctx.cond is None``) and conditional ones (the halves' conditions
    must match). ``last_ratio`` holds the last ``lz`` (detached) for logging.

    Args:
        weight: multiplies the loss (``lambda_ms``; 1 in the reference). Leave it at 1 when the
            trainer already weights its terms.
        eps: keeps the loss finite for collapsed pairs (1e-5 in the reference).
    """

    needs_pairs = True

    def __init__(self, weight: float = 1.0, eps: float = 1e-5):
        super().__init__()
        if not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"weight must be a number >= 0 (lambda_ms); got {weight!r}.")
        if not isinstance(eps, (int, float)) or eps <= 0:
            raise ValueError(
                f"eps must be a number > 0 (it bounds the loss of collapsed pairs by 1/eps); got"
                f" {eps!r}. The reference uses 1e-5."
            )
        self.weight = float(weight)
        self.eps = float(eps)
        self.last_ratio: torch.Tensor | None = None

    def extra_repr(self) -> str:
        return f"weight={self.weight}, eps={self.eps}"

    def forward(self, ctx: StepContext) -> torch.Tensor:
        if not getattr(ctx, "pairs", False):
            raise ValueError(
                "ModeSeekingLoss needs a paired batch (two latent codes per condition), but the"
                " StepContext has pairs=False. The trainer builds paired batches for terms with"
                " needs_pairs = True; when building a StepContext yourself, make z two halves"
                " sharing their conditions and pass pairs=True."
            )
        if ctx.z.shape[0] < 2 or ctx.fake.shape[0] != ctx.z.shape[0]:
            raise ValueError(
                f"a paired batch needs at least 2 samples and one code per sample; got"
                f" {ctx.z.shape[0]} codes and {ctx.fake.shape[0]} samples."
            )
        z1, z2 = ctx.halves(ctx.z)
        x1, x2 = ctx.halves(ctx.fake)
        if ctx.cond is not None:
            c1, c2 = ctx.halves(ctx.cond)
            if not torch.equal(c1, c2):
                raise ValueError(
                    "the two halves of a paired batch must share their conditions (cond[i] =="
                    " cond[i + B // 2]); mode seeking compares outputs for the same condition."
                )
        ratio = mode_seeking_ratio(x1, x2, z1, z2)
        self.last_ratio = ratio.detach()
        return self.weight / (ratio + self.eps)
