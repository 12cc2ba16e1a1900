"""MLP generator and metric network for low-dimensional data (the 2D benchmarks)."""

from __future__ import annotations

import torch
from torch import nn

from .common import ConditionEmbedding, activation, maybe_spectral_norm


class MLPGenerator(nn.Module):
    """``z (B, z_dim) [, class ids (B,)] -> x (B, out_dim)``; PacGAN's 2D generator shape by default."""

    def __init__(self, z_dim: int = 2, out_dim: int = 2, hidden: int = 400, depth: int = 3,
                 num_classes: int | None = None, act: str = "relu"):
        super().__init__()
        self.z_dim, self.out_dim, self.num_classes = z_dim, out_dim, num_classes
        self.condition = ConditionEmbedding(num_classes, z_dim)
        layers, width = [], z_dim + self.condition.dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), activation(act)]
            width = hidden
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.condition(z, cond))


class MLPMetricNet(nn.Module):
    """``x (B, in_dim) -> embedding (B, emb_dim)``, optionally spectrally normalized.

    ``encoding`` is an optional input module (e.g. Fourier features for 2D points) whose output
    size is read from its ``out_dim`` attribute.
    """

    def __init__(self, in_dim: int = 2, emb_dim: int = 10, hidden: int = 200, depth: int = 3,
                 spectral_norm: bool = False, act: str = "leaky_relu",
                 encoding: nn.Module | None = None):
        super().__init__()
        self.in_dim, self.emb_dim = in_dim, emb_dim
        self.encoding = encoding if encoding is not None else nn.Identity()
        width = getattr(encoding, "out_dim", in_dim) if encoding is not None else in_dim
        layers = []
        for _ in range(depth):
            layers += [maybe_spectral_norm(nn.Linear(width, hidden), spectral_norm), activation(act)]
            width = hidden
        layers.append(maybe_spectral_norm(nn.Linear(width, emb_dim), spectral_norm))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.encoding(x.flatten(1)))
