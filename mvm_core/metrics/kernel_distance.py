"""Kernel Inception Distance: unbiased MMD^2 with a polynomial kernel (Bińkowski et al., ICLR 2018).

    k(x, y) = (gamma x.y + coef0)^degree,   default gamma = 1 / D, coef0 = 1, degree = 3

For one subset of ``m`` real rows X and ``m`` fake rows Y, the unbiased estimator is

    MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
              - 2 sum_{i, j} k(x_i, y_j) / m^2

(the cross term keeps its diagonal: x_i and y_i are independent). Its expectation is the population
MMD^2, 0 when both sets come from one distribution, so KID can be negative on a finite sample.
As in the reference code, KID is averaged over ``subsets`` random subsets (drawn without
replacement within a subset); the standard deviation over subsets is returned with it.
"""

from __future__ import annotations

import torch

from .._checks import check_embeddings, check_same_dim


def polynomial_kernel(
    x: torch.Tensor,
    y: torch.Tensor,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> torch.Tensor:
    """(N, M) kernel matrix ``(gamma x.y + coef0)^degree`` (gamma defaults to ``1 / D``), float64.

    The dot products are taken in the inputs' dtype (fast matmul), the power in float64.
    """
    gamma = 1.0 / x.shape[1] if gamma is None else float(gamma)
    return (gamma * (x @ y.T).to(torch.float64) + coef0) ** degree


def mmd2_unbiased(k_xx: torch.Tensor, k_yy: torch.Tensor, k_xy: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 from (m, m) kernel matrices of two equal-size samples (scalar tensor)."""
    m = k_xx.shape[0]
    if m < 2 or k_yy.shape != (m, m) or k_xy.shape != (m, m):
        raise ValueError(
            "mmd2_unbiased needs three (m, m) kernel matrices with m >= 2; got shapes"
            f" {tuple(k_xx.shape)}, {tuple(k_yy.shape)}, {tuple(k_xy.shape)}."
        )
    off_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    off_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return off_xx + off_yy - 2 * k_xy.sum() / (m * m)


@torch.no_grad()
def kid(
    real_features: torch.Tensor,
    fake_features: torch.Tensor,
    subsets: int = 100,
    subset_size: int | None = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """KID ``(mean, std)`` over ``subsets`` random subsets of ``subset_size`` real and fake rows.

    Args:
        real_features, fake_features: (N, D) and (M, D).
        subsets: number of subsets (reference: 100).
        subset_size: rows per subset (reference: 1000). ``None`` uses ``min(1000, N, M)``; an
            explicit value larger than N or M is an error (it would silently change the estimator).
        degree, gamma, coef0: the polynomial kernel (reference: 3, 1 / D, 1).
        generator: a seeded ``torch.Generator`` (on CPU) for reproducible subsets.
    """
    check_embeddings("real_features", real_features)
    check_embeddings("fake_features", fake_features)
    check_same_dim("real_features", real_features, "fake_features", fake_features)
    n_real, n_fake = real_features.shape[0], fake_features.shape[0]
    if subset_size is None:
        subset_size = min(1000, n_real, n_fake)
    if not 2 <= subset_size <= min(n_real, n_fake):
        raise ValueError(
            f"subset_size must be in [2, min(N_real, N_fake)] = [2, {min(n_real, n_fake)}]; got"
            f" {subset_size}. Pass subset_size=None to use min(1000, N_real, N_fake), or more"
            " samples."
        )
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1; got {subsets}.")
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    values = torch.empty(subsets, dtype=torch.float64)
    for s in range(subsets):
        real_idx = torch.randperm(n_real, generator=generator)[:subset_size]
        fake_idx = torch.randperm(n_fake, generator=generator)[:subset_size]
        x = real_features[real_idx.to(real_features.device)]
        y = fake_features[fake_idx.to(fake_features.device)]
        values[s] = mmd2_unbiased(
            polynomial_kernel(x, x, degree, gamma, coef0),
            polynomial_kernel(y, y, degree, gamma, coef0),
            polynomial_kernel(x, y, degree, gamma, coef0),
        ).cpu()
    std = float(values.std(correction=0)) if subsets > 1 else 0.0
    return float(values.mean()), std


__all__ = ["kid", "mmd2_unbiased", "polynomial_kernel"]
