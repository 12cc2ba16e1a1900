"""k-NN manifold estimates: precision/recall and density/coverage of generated features.

Each sample set is summarised by balls: around every sample, the ball reaching its k-th nearest
neighbour in its own set (radii found with FAISS, see :mod:`.neighbours`).

* Precision / recall (Kynkäänniemi et al., NeurIPS 2019, reference k = 3): precision is the share
  of fake samples inside at least one real ball, recall the share of real samples inside at least
  one fake ball. The paper's indicator is ``||phi - phi'|| <= radius``: closed balls.
* Density / coverage (Naeem et al., ICML 2020, reference k = 5): density is the number of real balls
  containing each fake sample, averaged and divided by k (about 1 for matching distributions, can
  exceed 1); coverage is the share of real samples whose ball contains at least one fake sample.
  Their reference code uses strict inequalities (open balls), kept here.

Ball membership is exact: query-by-ball distance blocks in bounded memory (query chunks), with
the entries within round-off of a radius recomputed in float64 (radii are exact float64 too), so
ties, such as those of identical sets, are decided the same way every time.
"""

from __future__ import annotations

import torch

from .._checks import check_embeddings, check_same_dim
from .neighbours import (
    DEFAULT_BLOCK_ELEMENTS,
    Backend,
    chunk_rows,
    knn_squared,
    kth_neighbour_squared_distance,
    refine_squared_distances,
    squared_distances,
)


def _check_sets(real: torch.Tensor, fake: torch.Tensor, k: int) -> None:
    check_embeddings("real_features", real)
    check_embeddings("fake_features", fake)
    check_same_dim("real_features", real, "fake_features", fake)
    smallest = min(real.shape[0], fake.shape[0])
    if not isinstance(k, int) or not 1 <= k < smallest:
        raise ValueError(
            f"k must be an int in [1, {smallest - 1}] (fewer than the smaller set's {smallest}"
            f" samples); got k={k!r}."
        )


def ball_counts(
    query: torch.Tensor,
    centers: torch.Tensor,
    radii_sq: torch.Tensor,
    *,
    strict: bool = False,
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> torch.Tensor:
    """(N,) number of balls ``B(centers[i], sqrt(radii_sq[i]))`` containing each query row.

    Radii are given *squared* (as :func:`~.neighbours.kth_neighbour_squared_distance` returns
    them). ``strict=False`` counts closed balls (``d <= r``), ``strict=True`` open ones (``d < r``).
    """
    radii_sq = radii_sq.to(torch.float64)[None, :]
    rows = chunk_rows(centers.shape[0], block_elements)
    counts = []
    for start in range(0, query.shape[0], rows):
        chunk = query[start : start + rows]
        d2 = refine_squared_distances(squared_distances(chunk, centers), chunk, centers, radii_sq)
        inside = d2 < radii_sq if strict else d2 <= radii_sq
        counts.append(inside.sum(dim=1))
    return torch.cat(counts)


@torch.no_grad()
def precision_recall(
    real_features: torch.Tensor,
    fake_features: torch.Tensor,
    k: int = 3,
    *,
    backend: Backend = "auto",
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi 2019) of (M, D) fakes against (N, D) reals."""
    _check_sets(real_features, fake_features, k)
    real_radii = kth_neighbour_squared_distance(real_features, k, backend=backend)
    fake_radii = kth_neighbour_squared_distance(fake_features, k, backend=backend)
    precision = (ball_counts(fake_features, real_features, real_radii) > 0).double().mean()
    recall = (ball_counts(real_features, fake_features, fake_radii) > 0).double().mean()
    return float(precision), float(recall)


@torch.no_grad()
def density_coverage(
    real_features: torch.Tensor,
    fake_features: torch.Tensor,
    k: int = 5,
    *,
    backend: Backend = "auto",
) -> tuple[float, float]:
    """Density and coverage (Naeem 2020) of (M, D) fakes against (N, D) reals."""
    _check_sets(real_features, fake_features, k)
    real_radii = kth_neighbour_squared_distance(real_features, k, backend=backend)
    counts = ball_counts(fake_features, real_features, real_radii, strict=True)
    density = counts.double().sum() / (k * fake_features.shape[0])
    nearest_fake, _ = knn_squared(real_features, fake_features, 1, backend=backend)
    coverage = (nearest_fake[:, 0] < real_radii).double().mean()
    return float(density), float(coverage)


__all__ = ["ball_counts", "density_coverage", "precision_recall"]
