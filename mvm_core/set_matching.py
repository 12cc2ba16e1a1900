"""Permutation-invariant set-matching terms between real and generated embeddings.

Complements :mod:`mvm_core.matching` (centroid and p-diameter matching) with terms that compare
two sets ``R`` (n, d) and ``F`` (m, d) through their *cross-set* distances as well as their
within-set ones. All are invariant to the order of either set and accept ``n != m``.

``energy_distance``
    ``2 E||R - F||^b - E||R - R'||^b - E||F - F'||^b`` with ``0 < b < 2`` (Szekely & Rizzo's
    energy distance; ``b = 1`` by default). In p-diameter language it is twice the cross-set
    1-diameter minus the two within-set 1-diameters. For ``0 < b < 2`` it is zero iff the two
    distributions of embeddings are equal, so unlike centroid + diameter matching it cannot be
    satisfied by a generated set that sits elsewhere with the right spread. (With ``b = 2`` it
    degenerates to ``2 ||mean R - mean F||^2``: centroid matching only.)

``chamfer_distance``
    ``mean_f min_r ||f - r|| + mean_r min_f ||r - f||``: the symmetric nearest-neighbour
    (Chamfer) distance between the two point sets; the first term is a precision term (every
    generated point near some real one), the second a coverage term.

``cross_diameter_matching``
    p-Wasserstein distance between the distributions of cross-set distances ``d(R_i, F_j)`` and
    within-real distances ``d(R_i, R_j)``: at a perfect match the two coincide.

Distances are Euclidean (not squared) by default: squared distances turn the energy distance into
a centroid term and make the nearest-neighbour gradients vanish near the data. A small ``eps``
inside the square root keeps gradients finite when two points coincide.

:class:`EnergyMatchingLoss` wraps a weighted sum of these as a pml ``BaseMetricLossFunction``
with the same calling convention as :class:`mvm_core.matching.ManifoldMatchingLoss`:
``loss(real_emb, ref_emb=fake_emb)``.
"""

from __future__ import annotations

import torch

from .distances import euclidean_distances
from .matching import SetMatchingLoss

__all__ = [
    "EnergyMatchingLoss",
    "chamfer_distance",
    "cross_diameter_matching",
    "energy_distance",
    "euclidean_distances",
    "mean_offdiagonal",
]


def mean_offdiagonal(d: torch.Tensor) -> torch.Tensor:
    """Mean of a square matrix's off-diagonal entries (the within-set 1-diameter of ``d``)."""
    n = d.shape[0]
    if n < 2:
        raise ValueError(f"a within-set mean needs at least 2 samples; got {n}.")
    return (d.sum() - d.diagonal().sum()) / (n * (n - 1))


def _check_power(power: float) -> None:
    if not 0.0 < power < 2.0:
        raise ValueError(
            f"power must be in (0, 2) for the energy distance to separate distributions; got"
            f" {power}. power=2 reduces it to centroid matching."
        )


def energy_distance(
    real: torch.Tensor,
    fake: torch.Tensor,
    power: float = 1.0,
    eps: float = 1e-12,
    include_real: bool = True,
) -> torch.Tensor:
    """Energy distance ``2 E d(R, F) - E d(R, R') - E d(F, F')`` with ``d = ||.||^power``.

    Within-set expectations exclude the diagonal (unbiased U-statistics), so the estimate can be
    slightly negative for two samples of one distribution. ``include_real=False`` drops the
    real-real term, which carries no gradient to the generator (saves an ``n x n`` matrix).
    """
    _check_power(power)
    cross = euclidean_distances(real, fake, power, eps).mean()
    within_fake = mean_offdiagonal(euclidean_distances(fake, None, power, eps))
    value = 2.0 * cross - within_fake
    if include_real:
        value = value - mean_offdiagonal(euclidean_distances(real, None, power, eps))
    return value


def chamfer_distance(
    real: torch.Tensor,
    fake: torch.Tensor,
    power: float = 1.0,
    eps: float = 1e-12,
    precision_weight: float = 1.0,
    coverage_weight: float = 1.0,
) -> torch.Tensor:
    """``precision_weight * mean_f min_r d(f, r) + coverage_weight * mean_r min_f d(r, f)``."""
    d = euclidean_distances(real, fake, power, eps)  # (n, m)
    precision = d.min(dim=0).values.mean()  # each fake to its nearest real
    coverage = d.min(dim=1).values.mean()  # each real to its nearest fake
    return precision_weight * precision + coverage_weight * coverage


def _quantiles(sorted_values: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` linearly interpolated quantiles (levels 0..1) of an ascending 1-D tensor."""
    n = sorted_values.shape[0]
    if n == k:
        return sorted_values
    pos = torch.linspace(0, 1, k, dtype=torch.float64, device=sorted_values.device) * (n - 1)
    lo = pos.floor().long().clamp(0, n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    w = (pos - lo.to(pos.dtype)).to(sorted_values.dtype)
    return sorted_values[lo] * (1 - w) + sorted_values[hi] * w


def cross_diameter_matching(
    real: torch.Tensor, fake: torch.Tensor, power: float = 1.0, p: float = 2.0, eps: float = 1e-12
) -> torch.Tensor:
    """p-Wasserstein distance between the laws of ``d(R_i, F_j)`` and ``d(R_i, R_j)`` (i != j)."""
    n = real.shape[0]
    if n < 2:
        raise ValueError(f"cross_diameter_matching needs at least 2 real samples; got {n}.")
    if p < 1:
        raise ValueError(f"p must be >= 1 (a Wasserstein order); got p={p}.")
    i, j = torch.triu_indices(n, n, offset=1, device=real.device)
    within = euclidean_distances(real, None, power, eps)[i, j].sort().values
    cross = euclidean_distances(real, fake, power, eps).reshape(-1).sort().values
    k = max(within.shape[0], cross.shape[0])
    return (_quantiles(within, k) - _quantiles(cross, k)).abs().pow(p).mean().pow(1.0 / p)


class EnergyMatchingLoss(SetMatchingLoss):
    """Weighted sum of energy distance, Chamfer distance and cross-diameter matching (pml-style).

    Call as ``loss(real_emb, ref_emb=fake_emb)``. Terms with weight 0 are not computed. The
    unweighted value of each computed term of the last call is in ``last_terms`` (detached).

    Args:
        energy_weight: weight of :func:`energy_distance`.
        chamfer_weight: weight of :func:`chamfer_distance`.
        cross_weight: weight of :func:`cross_diameter_matching`.
        power: exponent ``b`` of the Euclidean distance, in (0, 2).
        eps: added under the square root (finite gradients at coincident points).
        check_finite: raise a clear error on NaN/inf embeddings (one device sync per call).
    """

    def __init__(
        self,
        energy_weight: float = 1.0,
        chamfer_weight: float = 0.0,
        cross_weight: float = 0.0,
        power: float = 1.0,
        eps: float = 1e-12,
        check_finite: bool = True,
        **kwargs,
    ):
        _check_power(power)
        weights = {"energy": energy_weight, "chamfer": chamfer_weight, "cross": cross_weight}
        for name, w in weights.items():
            if w < 0:
                raise ValueError(f"{name}_weight must be >= 0; got {w}.")
        if not any(w > 0 for w in weights.values()):
            raise ValueError("at least one of energy/chamfer/cross weights must be > 0.")
        super().__init__(**kwargs)
        self.weights = {k: float(v) for k, v in weights.items()}
        self.power = float(power)
        self.eps = float(eps)
        self.check_finite = check_finite
        self.last_terms: dict[str, torch.Tensor] = {}

    def _sub_loss_names(self) -> list[str]:
        return ["energy_loss", "chamfer_loss", "cross_loss"]

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        real, fake = embeddings, ref_emb
        zero = real.new_zeros(())
        values = {"energy": zero, "chamfer": zero, "cross": zero}
        if self.weights["energy"] > 0:
            values["energy"] = energy_distance(real, fake, self.power, self.eps)
        if self.weights["chamfer"] > 0:
            values["chamfer"] = chamfer_distance(real, fake, self.power, self.eps)
        if self.weights["cross"] > 0:
            values["cross"] = cross_diameter_matching(real, fake, self.power, eps=self.eps)
        self.last_terms = {k: v.detach() for k, v in values.items() if self.weights[k] > 0}
        return {
            f"{k}_loss": {
                "losses": self.weights[k] * v,
                "indices": None,
                "reduction_type": "already_reduced",
            }
            for k, v in values.items()
        }
