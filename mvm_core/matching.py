"""Manifold matching: the generator's objective in MvM.

The generator is trained to make the generated set ``F = M(G(z))`` look like the real set
``R = M(x)`` in the metric network's embedding, by matching two shape descriptors of the sets:

* **centroid**: ``|| mean(R) - mean(F) ||_2``;
* **p-diameter**: the spread of each set, read from its pairwise distances.

Two forms of the diameter term are provided:

``"paired"`` (the reference code's form)
    ``|| D_R - D_F ||_F`` where ``D_R[i, j] = d(R_i, R_j)``. It compares the distance of real pair
    (i, j) with that of fake pair (i, j): an arbitrary pairing given by batch order, which needs
    ``n == m``.

``"sorted"`` (permutation invariant, the default)
    The p-Wasserstein distance between the *distributions* of within-set pairwise distances:
    ``(mean_t |Q_R(t) - Q_F(t)|^p)^(1/p)`` where ``Q_X`` is the quantile function of the
    off-diagonal pairwise distances of ``X``. Reordering either set changes nothing, and ``n`` and
    ``m`` may differ (quantiles are linearly interpolated on a common grid). With ``p = 1`` it
    bounds the difference of the sets' mean pairwise distances (their 1-diameters); with any ``p``
    it matches every order statistic of the distances, not only their mean.

Distances are pytorch-metric-learning distance objects. The default is the squared Euclidean
distance on unnormalized embeddings, as in the reference code (``LpDistance(p=2, power=2,
normalize_embeddings=False)``); pml's own default normalizes embeddings, which makes MvM collapse
(see ``docs/method.md``).
"""

from __future__ import annotations

from typing import Literal

import torch
from pytorch_metric_learning.distances import BaseDistance, LpDistance
from pytorch_metric_learning.losses import BaseMetricLossFunction

from ._checks import check_embeddings, check_same_dim
from .distances import euclidean_distances

DiameterForm = Literal["sorted", "paired"]
DIAMETER_FORMS: tuple[str, ...] = ("sorted", "paired")


def squared_euclidean() -> LpDistance:
    """The reference distance: ``||a - b||^2`` on unnormalized embeddings."""
    return LpDistance(p=2, power=2, normalize_embeddings=False)


def pairwise_distances(
    x: torch.Tensor, y: torch.Tensor | None = None, distance: BaseDistance | None = None
) -> torch.Tensor:
    """Distance matrix ``(len(x), len(y))`` under a pml distance (default squared Euclidean).

    Squared Euclidean is exact (:func:`mvm_core.distances.euclidean_distances`, no Gram-form
    cancellation); other distances are delegated to the pml object.
    """
    distance = squared_euclidean() if distance is None else distance
    y = x if y is None else y
    if _is_plain_squared_euclidean(distance):
        return euclidean_distances(x, y, power=2.0, eps=0.0)
    return distance(x, y)


def rowwise_distances(
    x: torch.Tensor, y: torch.Tensor, distance: BaseDistance | None = None
) -> torch.Tensor:
    """``d(x_i, y_i)`` for each row ``i`` (shape (N,)), consistent with :func:`pairwise_distances`.

    pml's ``distance.pairwise_distance`` skips the distance's normalization and power; this applies
    both, so row-wise and matrix distances always agree.
    """
    distance = squared_euclidean() if distance is None else distance
    if _is_plain_squared_euclidean(distance):
        return ((x - y) ** 2).sum(-1)
    if distance.normalize_embeddings:
        x, y = distance.normalize(x), distance.normalize(y)
    d = distance.pairwise_distance(x, y)
    return d if distance.power == 1 else d**distance.power


def _is_plain_squared_euclidean(distance: BaseDistance) -> bool:
    return (
        type(distance) is LpDistance
        and distance.p == 2
        and distance.power == 2
        and not distance.normalize_embeddings
    )


def centroid_matching(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``|| mean(real) - mean(fake) ||_2``: distance between the two set centroids."""
    return torch.linalg.vector_norm(real.mean(0) - fake.mean(0))


def diameter_matching_paired(
    real: torch.Tensor, fake: torch.Tensor, distance: BaseDistance | None = None
) -> torch.Tensor:
    """Reference form ``|| D_real - D_fake ||_F``: pairs real (i, j) with fake (i, j) by batch order."""
    if real.shape[0] != fake.shape[0]:
        raise ValueError(
            "diameter_form='paired' compares real pair (i, j) with fake pair (i, j) and needs as"
            f" many fakes as reals; got {real.shape[0]} real and {fake.shape[0]} fake samples."
            " Use diameter_form='sorted', which works for any sizes."
        )
    d_real = pairwise_distances(real, distance=distance)
    d_fake = pairwise_distances(fake, distance=distance)
    return torch.linalg.matrix_norm(d_real - d_fake)  # Frobenius


def offdiagonal_distances(x: torch.Tensor, distance: BaseDistance | None = None) -> torch.Tensor:
    """The ``n (n - 1) / 2`` distances between distinct samples of ``x`` (upper triangle)."""
    n = x.shape[0]
    i, j = torch.triu_indices(n, n, offset=1, device=x.device)
    return pairwise_distances(x, distance=distance)[i, j]


def _quantiles_of_sorted(sorted_values: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Linear-interpolation quantiles of an ascending 1-D tensor at ``levels`` in [0, 1] (differentiable)."""
    k = sorted_values.shape[0]
    if k == 1:
        return sorted_values.expand(levels.shape[0])
    pos = levels * (k - 1)
    lo = pos.floor().long().clamp(0, k - 1)
    hi = (lo + 1).clamp(max=k - 1)
    w = (pos - lo.to(pos.dtype)).to(sorted_values.dtype)
    return sorted_values[lo] * (1 - w) + sorted_values[hi] * w


def diameter_matching_sorted(
    real: torch.Tensor, fake: torch.Tensor, distance: BaseDistance | None = None, p: float = 2.0
) -> torch.Tensor:
    """p-Wasserstein distance between the two sets' pairwise-distance distributions.

    Invariant to the order of either set; ``len(real)`` and ``len(fake)`` may differ (both need at
    least two samples).
    """
    for name, x in (("real", real), ("fake", fake)):
        if x.shape[0] < 2:
            raise ValueError(
                f"the p-diameter needs at least 2 {name} samples to form a pair; got {x.shape[0]}."
            )
    if p < 1:
        raise ValueError(f"p must be >= 1 (a Wasserstein order); got p={p}.")
    d_real = offdiagonal_distances(real, distance).sort().values
    d_fake = offdiagonal_distances(fake, distance).sort().values
    if d_real.shape[0] != d_fake.shape[0]:
        k = max(d_real.shape[0], d_fake.shape[0])
        levels = torch.linspace(0, 1, k, device=real.device, dtype=torch.float64)
        d_real = _quantiles_of_sorted(d_real, levels)
        d_fake = _quantiles_of_sorted(d_fake, levels)
    return _root((d_real - d_fake).abs().pow(p).mean(), p)


def _root(value: torch.Tensor, p: float) -> torch.Tensor:
    """``value ** (1 / p)`` for ``value >= 0`` with a finite gradient at 0 (there the plain power's
    derivative is infinite, and infinity times the zero gradient of ``value`` is NaN)."""
    if p == 1.0:
        return value
    positive = value > 0
    return torch.where(positive, torch.where(positive, value, 1.0).pow(1.0 / p), torch.zeros_like(value))


def p_diameter(x: torch.Tensor, distance: BaseDistance | None = None, p: float = 1.0) -> torch.Tensor:
    """The p-diameter of a set: ``(mean_{i<j} d(x_i, x_j)^p)^(1/p)`` (p = 1: mean pairwise distance)."""
    return _root(offdiagonal_distances(x, distance).pow(p).mean(), p)


def directed_hausdorff(
    a: torch.Tensor, b: torch.Tensor, distance: BaseDistance | None = None
) -> torch.Tensor:
    """``max_{x in a} min_{y in b} d(x, y)``: how far the worst point of ``a`` is from ``b``.

    For similarity measures (``distance.is_inverted``), "nearest" is the most similar and the
    result is ``min_x max_y s(x, y)``.
    """
    d = pairwise_distances(a, b, distance)
    if distance is not None and distance.is_inverted:
        return d.max(dim=1).values.min()
    return d.min(dim=1).values.max()


def hausdorff(a: torch.Tensor, b: torch.Tensor, distance: BaseDistance | None = None) -> torch.Tensor:
    """Symmetric Hausdorff distance: the larger of the two directed ones (the smaller for similarities)."""
    ab, ba = directed_hausdorff(a, b, distance), directed_hausdorff(b, a, distance)
    if distance is not None and distance.is_inverted:
        return torch.minimum(ab, ba)
    return torch.maximum(ab, ba)


class SetMatchingLoss(BaseMetricLossFunction):
    """Base of the generator's set-matching losses: ``loss(real_emb, ref_emb=fake_emb)``.

    Checks both sets (shape, dtype, finiteness when ``check_finite``) before ``compute_loss``.
    """

    check_finite: bool = True

    def forward(self, embeddings, labels=None, indices_tuple=None, ref_emb=None, ref_labels=None):
        if ref_emb is None:
            raise ValueError(
                f"{type(self).__name__} compares two sets: call loss(real_emb, ref_emb=fake_emb)."
            )
        check_embeddings("real_emb", embeddings, check_finite=self.check_finite)
        check_embeddings("fake_emb (ref_emb)", ref_emb, check_finite=self.check_finite)
        check_same_dim("real_emb", embeddings, "fake_emb (ref_emb)", ref_emb)
        return super().forward(embeddings, labels, indices_tuple, ref_emb, ref_labels)


class ManifoldMatchingLoss(SetMatchingLoss):
    """Centroid + p-diameter matching between real and generated embeddings (pml-compatible).

    Call as ``loss(real_emb, ref_emb=fake_emb)``. The result is
    ``centroid_weight * centroid + diameter_weight * diameter``; the two sub-losses of the last call
    are in ``loss.last_terms`` (detached, unweighted tensors: read them when logging, so the hot
    path needs no device sync).

    Args:
        p: order of the diameter comparison (Frobenius for ``"paired"`` needs ``p = 2``).
        centroid_weight: weight of the centroid term (reference: 1).
        diameter_weight: weight of the p-diameter term (reference: 1).
        diameter_form: ``"sorted"`` (permutation invariant, default) or ``"paired"`` (reference).
        distance: a pml distance; default squared Euclidean on unnormalized embeddings.
        check_finite: raise a clear error on NaN/inf embeddings (costs one device sync per call).
    """

    def __init__(
        self,
        p: float = 2.0,
        centroid_weight: float = 1.0,
        diameter_weight: float = 1.0,
        diameter_form: DiameterForm = "sorted",
        distance: BaseDistance | None = None,
        check_finite: bool = True,
        **kwargs,
    ):
        if diameter_form not in DIAMETER_FORMS:
            raise ValueError(
                f"diameter_form must be one of {DIAMETER_FORMS}; got {diameter_form!r}."
            )
        if diameter_form == "paired" and p != 2:
            raise ValueError(
                "diameter_form='paired' is the reference Frobenius norm (p=2); got p="
                f"{p}. Use diameter_form='sorted' for other orders."
            )
        for name, w in (("centroid_weight", centroid_weight), ("diameter_weight", diameter_weight)):
            if w < 0:
                raise ValueError(f"{name} must be >= 0; got {w}.")
        super().__init__(distance=squared_euclidean() if distance is None else distance, **kwargs)
        self.p = float(p)
        self.centroid_weight = float(centroid_weight)
        self.diameter_weight = float(diameter_weight)
        self.diameter_form = diameter_form
        self.check_finite = check_finite
        self.last_terms: dict[str, torch.Tensor] = {}

    def _sub_loss_names(self) -> list[str]:
        return ["centroid_loss", "diameter_loss"]

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        real, fake = embeddings, ref_emb
        centroid = centroid_matching(real, fake)
        if self.diameter_form == "paired":
            diameter = diameter_matching_paired(real, fake, self.distance)
        else:
            diameter = diameter_matching_sorted(real, fake, self.distance, self.p)
        self.last_terms = {"centroid": centroid.detach(), "diameter": diameter.detach()}
        return {
            "centroid_loss": _already_reduced(self.centroid_weight * centroid),
            "diameter_loss": _already_reduced(self.diameter_weight * diameter),
        }


def _already_reduced(value: torch.Tensor) -> dict:
    return {"losses": value, "indices": None, "reduction_type": "already_reduced"}
