"""Content losses for paired tasks: each output against its own target (pixel L1 / L2 / Charbonnier).

In a paired task (``TrainConfig.task = "paired"``, e.g. super-resolution) the generator maps an
input to an output that has one right answer, the target. The set-level objectives (manifold
matching in a learned metric, or an adversarial loss) make outputs look like targets as a set;
a content term ties each output to its target. SR practice (EDSR, ESRGAN, the MvM paper's SR
experiments) uses the pixel L1 distance, which keeps PSNR high while the set-level term restores
texture. Registered as the generator term ``mvm:ContentLoss``.
"""

from __future__ import annotations

from typing import Literal

import torch

from .context import StepContext

Norm = Literal["l1", "l2", "charbonnier"]
NORMS = ("l1", "l2", "charbonnier")


def content_loss(output: torch.Tensor, target: torch.Tensor, norm: Norm = "l1",
                 eps: float = 1e-3) -> torch.Tensor:
    """Mean per-element distance between ``output`` and ``target`` (same shape): ``|d|``
    (``"l1"``), ``d^2`` (``"l2"``) or ``sqrt(d^2 + eps^2)`` (``"charbonnier"``, a smooth L1)."""
    if output.shape != target.shape:
        raise ValueError(
            f"output and target must have the same shape (one target per output); got"
            f" {tuple(output.shape)} and {tuple(target.shape)}."
        )
    diff = output - target
    if norm == "l1":
        return diff.abs().mean()
    if norm == "l2":
        return diff.pow(2).mean()
    if norm == "charbonnier":
        return (diff.pow(2) + eps**2).sqrt().mean()
    raise ValueError(f"norm must be one of {NORMS}; got {norm!r}.")


class ContentLoss(torch.nn.Module):
    """Generator term ``content_loss(ctx.fake, ctx.real)`` for paired tasks (``fake[i] = G(input[i])``
    and ``real[i]`` is its target).

    Args:
        norm: ``"l1"`` (default, the SR standard), ``"l2"`` or ``"charbonnier"``.
        eps: Charbonnier's smoothing constant.
    """

    needs_pairs = False

    def __init__(self, norm: Norm = "l1", eps: float = 1e-3):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}; got {norm!r}.")
        if eps <= 0:
            raise ValueError(f"eps must be > 0; got {eps}.")
        self.norm = norm
        self.eps = float(eps)

    def extra_repr(self) -> str:
        return f"norm={self.norm!r}"

    def forward(self, ctx: StepContext) -> torch.Tensor:
        if getattr(ctx, "task", "generate") != "paired":
            raise ValueError(
                "ContentLoss compares each output with its own target, which only a paired task"
                f" has; this step's task is {getattr(ctx, 'task', 'generate')!r}. Train with"
                " task='paired' on a paired dataset (e.g. `mvm train --preset sr`), or drop the term."
            )
        return content_loss(ctx.fake, ctx.real, self.norm, self.eps)


__all__ = ["NORMS", "ContentLoss", "content_loss"]
