"""Input encodings for low-dimensional data (2D toys, coordinates).

A ReLU MLP fed raw 2D coordinates learns high-frequency functions slowly (spectral bias), so a
metric network sees the 0.01-wide modes of the 2D ring only after many steps. Random Fourier
features (Rahimi & Recht 2007; Tancik et al. 2020, "Fourier features let networks learn high
frequency functions") map ``x`` to ``[sin(2π x B), cos(2π x B)]`` with a fixed Gaussian ``B``,
which makes fine structure linearly accessible to the first layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["FourierFeatures"]


class FourierFeatures(nn.Module):
    """Random Fourier features ``[sin(2π x B), cos(2π x B)]`` (optionally with ``x`` itself).

    Args:
        in_features: input dimension ``D``.
        num_frequencies: columns of ``B`` per scale; the output has ``2 * num_frequencies *
            len(scales)`` features (plus ``D`` with ``include_input``).
        scales: standard deviation(s) of ``B``'s entries (frequencies in cycles per input unit).
            Several scales give a multi-resolution encoding (equal share of columns each).
        include_input: append the raw input to the features.
        trainable: learn ``B`` (default: fixed, stored as a buffer).
        seed: seed of ``B`` (default: drawn from torch's global generator).

    Shapes: ``(N, D) -> (N, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        num_frequencies: int = 64,
        scales: float | Sequence[float] = 1.0,
        include_input: bool = False,
        trainable: bool = False,
        seed: int | None = None,
    ):
        super().__init__()
        if in_features < 1:
            raise ValueError(f"in_features must be >= 1; got {in_features}.")
        if num_frequencies < 1:
            raise ValueError(f"num_frequencies must be >= 1; got {num_frequencies}.")
        scales = [float(scales)] if isinstance(scales, (int, float)) else [float(s) for s in scales]
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f"scales must be positive numbers; got {scales}.")
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        blocks = [torch.randn(in_features, num_frequencies, generator=gen) * s for s in scales]
        b = torch.cat(blocks, dim=1)
        if trainable:
            self.B = nn.Parameter(b)
        else:
            self.register_buffer("B", b)
        self.in_features = in_features
        self.scales = tuple(scales)
        self.include_input = include_input
        self.out_features = 2 * b.shape[1] + (in_features if include_input else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"FourierFeatures expects input of shape (N, {self.in_features}); got"
                f" {tuple(x.shape)}."
            )
        proj = 2 * math.pi * x @ self.B.to(x.dtype)
        parts = [proj.sin(), proj.cos()]
        if self.include_input:
            parts.append(x)
        return torch.cat(parts, dim=1)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features},"
            f" scales={self.scales}, include_input={self.include_input}"
        )
