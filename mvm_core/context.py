"""What a generator step exposes to regularizers and extra generator terms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@dataclass
class StepContext:
    """Tensors of one generator step, computed once by the trainer and shared by every term.

    ``fake`` and ``fake_emb`` carry gradients to the generator. When ``pairs`` is true the batch
    is built as two halves with the same conditions: ``fake[i]`` and ``fake[i + B // 2]`` come from
    ``z[i]`` and ``z[i + B // 2]`` under the same ``cond[i]`` (what mode seeking needs), with no extra
    generator pass.

    In a paired task (``task == "paired"``, e.g. super-resolution) ``z`` holds the generator's
    inputs instead of latent codes, and ``real[i]`` is the target of ``fake[i] = G(z[i])``.
    """

    step: int
    z: torch.Tensor
    fake: torch.Tensor
    real: torch.Tensor
    fake_emb: torch.Tensor
    real_emb: torch.Tensor
    cond: torch.Tensor | None = None
    real_cond: torch.Tensor | None = None
    pairs: bool = False
    generator: torch.nn.Module | None = None
    metric_net: torch.nn.Module | None = None
    task: str = "generate"

    def halves(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Split a batch tensor into the two halves of a paired batch."""
        if not self.pairs:
            raise RuntimeError(
                "this term needs paired latents (two codes per condition); the trainer builds"
                " them when the term sets needs_pairs = True."
            )
        half = x.shape[0] // 2
        return x[:half], x[half : 2 * half]


@runtime_checkable
class GeneratorTerm(Protocol):
    """A loss added to the generator objective (regularizers, GFMN feature matching, ...).

    Implementations are callables ``term(ctx) -> scalar tensor`` (lower is better); they may set
    ``needs_pairs = True`` to receive a paired batch (see :class:`StepContext`).
    """

    def __call__(self, ctx: StepContext) -> torch.Tensor: ...


def needs_pairs(term: object) -> bool:
    """Whether a term asks the trainer for a paired batch."""
    return bool(getattr(term, "needs_pairs", False))
