"""Sample diversity: the mean distance between two generated samples (higher = more diverse).

MSGAN (Mao et al., CVPR 2019) reports the mean LPIPS distance between pairs of generated images.
LPIPS needs pretrained network weights; pass any such perceptual distance as ``distance_fn`` (for
example an ``lpips.LPIPS`` module built from local weights) and the pairs are scored with it.
Without one, the distance is Euclidean in the given feature space, the natural stand-in for
``@digits-classifier`` or ``@inception`` features. Compare against the same number on real data:
a value far below the real one means mode collapse.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._checks import check_embeddings
from .neighbours import DEFAULT_BLOCK_ELEMENTS, chunk_rows, squared_distances

DistanceFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def random_pairs(n: int, num_pairs: int, generator: torch.Generator | None = None):
    """``num_pairs`` index pairs ``(i, j)``, ``i != j``, uniform over ordered pairs of ``range(n)``."""
    if n < 2:
        raise ValueError(f"pairs need at least 2 samples; got {n}.")
    i = torch.randint(n, (num_pairs,), generator=generator)
    j = torch.randint(n - 1, (num_pairs,), generator=generator)
    return i, j + (j >= i).long()


@torch.no_grad()
def mean_pairwise_distance(
    samples: torch.Tensor,
    *,
    distance_fn: DistanceFn | None = None,
    num_pairs: int | None = None,
    batch_size: int = 64,
    generator: torch.Generator | None = None,
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> float:
    """Mean distance between two distinct samples.

    Args:
        samples: (N, D) features, or any (N, ...) batch that ``distance_fn`` accepts (images).
        distance_fn: ``fn(a, b) -> (B,)`` (or any shape with B elements) distances between row-
            matched batches, e.g. an LPIPS module. ``None``: Euclidean distance between (N, D) rows.
        num_pairs: number of random pairs (seeded by ``generator``). ``None`` with the Euclidean
            distance averages over *all* ``N (N - 1) / 2`` pairs exactly; with ``distance_fn`` it
            means 1000 pairs.
        batch_size: pairs per ``distance_fn`` call.
    """
    if not isinstance(samples, torch.Tensor) or samples.ndim < 2:
        raise ValueError(
            "samples must be a tensor with one row per sample, (N, D) or (N, C, H, W); got"
            f" {getattr(samples, 'shape', type(samples).__name__)}."
        )
    n = samples.shape[0]
    if n < 2:
        raise ValueError(f"diversity needs at least 2 samples; got {n}.")
    if num_pairs is not None and num_pairs < 1:
        raise ValueError(f"num_pairs must be >= 1 or None; got {num_pairs}.")
    if distance_fn is None:
        check_embeddings("samples", samples)
        if num_pairs is None:
            return _all_pairs_mean(samples, block_elements)
        i, j = random_pairs(n, num_pairs, generator)
        d = torch.linalg.vector_norm(
            (samples[i.to(samples.device)] - samples[j.to(samples.device)]).double(), dim=1
        )
        return float(d.mean())
    i, j = random_pairs(n, 1000 if num_pairs is None else num_pairs, generator)
    total, count = 0.0, 0
    for start in range(0, i.shape[0], batch_size):
        a = samples[i[start : start + batch_size].to(samples.device)]
        b = samples[j[start : start + batch_size].to(samples.device)]
        d = torch.as_tensor(distance_fn(a, b)).reshape(-1).double()
        if d.shape[0] != a.shape[0]:
            raise ValueError(
                f"distance_fn must return one distance per pair; got {d.shape[0]} values for a"
                f" batch of {a.shape[0]} pairs."
            )
        total += float(d.sum())
        count += d.shape[0]
    return total / count


def _all_pairs_mean(x: torch.Tensor, block_elements: int) -> float:
    """Exact mean over the N (N - 1) ordered pairs (each unordered pair counted twice)."""
    n = x.shape[0]
    rows = chunk_rows(n, block_elements)
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for start in range(0, n, rows):
        block = squared_distances(x[start : start + rows], x)
        local = torch.arange(block.shape[0], device=x.device)
        block[local, start + local] = 0  # self-distances: exactly 0, not expansion round-off
        total += block.sqrt().double().sum()
    return float(total / (n * (n - 1)))


__all__ = ["mean_pairwise_distance", "random_pairs"]
