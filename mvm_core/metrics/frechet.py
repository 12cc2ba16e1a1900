"""Fréchet distance between Gaussians fitted to two feature sets (FID in Inception space).

Layered as features -> statistics -> metric (Heusel et al., NeurIPS 2017):

    FD = ||mu_1 - mu_2||^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^(1/2))

The matrix square root is the numerically delicate part. ``S_1 S_2`` is not symmetric, and the
usual ``scipy.linalg.sqrtm`` route (Schur decomposition) returns complex parts and loses accuracy
when either covariance is singular, which it always is when there are fewer samples than feature
dimensions. We never form ``sqrtm(S_1 S_2)``: its trace equals ``sum_i sqrt(lambda_i)`` over the
eigenvalues of the *symmetric* PSD matrix ``S_1^(1/2) S_2 S_1^(1/2)`` (``AB`` and ``BA`` share their
non-zero eigenvalues), so two symmetric eigendecompositions in float64 do it, with eigenvalues
clamped at 0 against round-off. Statistics are float64 throughout.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .._checks import check_embeddings


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of (N, D) features, in float64.

    The covariance divides by ``N - 1`` (``numpy.cov``'s default, as in the reference FID code).
    """
    check_embeddings("features", features)
    if features.shape[0] < 2:
        raise ValueError(
            f"a covariance needs at least 2 samples; got features of shape {tuple(features.shape)}."
        )
    x = features.detach().to(torch.float64)
    mu = x.mean(0)
    centered = x - mu
    sigma = centered.T @ centered / (x.shape[0] - 1)
    return mu, sigma


def _check_square(name: str, m: torch.Tensor) -> None:
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"{name} must be a square (D, D) matrix; got shape {tuple(m.shape)}.")


def _symmetric(m: torch.Tensor) -> torch.Tensor:
    return (m + m.T) / 2


def sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Principal square root of a symmetric positive semi-definite matrix (float64).

    Eigendecomposition of the symmetrized input; negative eigenvalues (round-off) are clamped to 0.
    """
    _check_square("matrix", matrix)
    eigvals, eigvecs = torch.linalg.eigh(_symmetric(matrix.to(torch.float64)))
    return (eigvecs * eigvals.clamp_min(0).sqrt()) @ eigvecs.T


def trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    """``tr((sigma1 sigma2)^(1/2))`` for PSD ``sigma1``, ``sigma2`` (float64 scalar tensor).

    Computed as the sum of square roots of the eigenvalues of ``sigma1^(1/2) sigma2 sigma1^(1/2)``.
    """
    _check_square("sigma1", sigma1)
    _check_square("sigma2", sigma2)
    if sigma1.shape != sigma2.shape:
        raise ValueError(
            f"sigma1 and sigma2 must have the same shape; got {tuple(sigma1.shape)} and"
            f" {tuple(sigma2.shape)}. Compute both statistics in the same feature space."
        )
    root1 = sqrtm_psd(sigma1)
    inner = _symmetric(root1 @ sigma2.to(torch.float64) @ root1)
    return torch.linalg.eigvalsh(inner).clamp_min(0).sqrt().sum()


def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """Fréchet (2-Wasserstein squared) distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    Shapes: ``mu`` (D,), ``sigma`` (D, D). Clamped at 0 (round-off can make it ``-1e-12``).
    """
    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise ValueError(
            f"mu1 and mu2 must be (D,) vectors of one size; got {tuple(mu1.shape)} and"
            f" {tuple(mu2.shape)}."
        )
    if sigma1.shape != (mu1.shape[0],) * 2 or sigma2.shape != (mu1.shape[0],) * 2:
        raise ValueError(
            f"sigma1 and sigma2 must be ({mu1.shape[0]}, {mu1.shape[0]}) to match mu; got"
            f" {tuple(sigma1.shape)} and {tuple(sigma2.shape)}."
        )
    mu1, mu2 = mu1.to(torch.float64), mu2.to(torch.float64)
    sigma1, sigma2 = sigma1.to(torch.float64), sigma2.to(torch.float64)
    diff = mu1 - mu2
    value = (
        diff @ diff
        + torch.trace(sigma1)
        + torch.trace(sigma2)
        - 2 * trace_sqrt_product(sigma1, sigma2)
    )
    return max(float(value), 0.0)


def fid(real_features: torch.Tensor, fake_features: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to (N, D) real and (M, D) fake features."""
    mu1, sigma1 = feature_statistics(real_features)
    mu2, sigma2 = feature_statistics(fake_features)
    return frechet_distance(mu1, sigma1, mu2, sigma2)


def save_statistics(
    path: str | Path, mu: torch.Tensor, sigma: torch.Tensor, metadata: dict | None = None
) -> None:
    """Store reference statistics (e.g. of a training set) as safetensors.

    ``metadata`` (JSON-serialisable: feature space, dataset, sample count) is kept in the file's
    header, so a statistics file always says which feature space it belongs to.
    """
    from safetensors.torch import save_file

    header = {"metadata": json.dumps(metadata or {})}
    save_file(
        {"mu": mu.detach().cpu().contiguous(), "sigma": sigma.detach().cpu().contiguous()},
        str(path),
        metadata=header,
    )


def load_statistics(path: str | Path) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """``(mu, sigma, metadata)`` from a file written by :func:`save_statistics` (no pickle)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no statistics file at {path}; write one with"
            " save_statistics(path, *feature_statistics(x))."
        )
    with safe_open(str(path), framework="pt") as handle:
        mu, sigma = handle.get_tensor("mu"), handle.get_tensor("sigma")
        metadata = json.loads((handle.metadata() or {}).get("metadata", "{}"))
    return mu, sigma, metadata


__all__ = [
    "feature_statistics",
    "fid",
    "frechet_distance",
    "load_statistics",
    "save_statistics",
    "sqrtm_psd",
    "trace_sqrt_product",
]
