"""Pieces shared by the built-in networks."""

from __future__ import annotations

import torch
from torch import nn

_ACTIVATIONS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": lambda: nn.ELU(),
    "silu": lambda: nn.SiLU(),
    "tanh": lambda: nn.Tanh(),
}


def activation(name: str) -> nn.Module:
    """An activation module by name."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}.")
    return _ACTIVATIONS[name]()


def maybe_spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap a layer in spectral normalization (Miyato et al. 2018) when ``enabled``."""
    return nn.utils.parametrizations.spectral_norm(module) if enabled else module


class ConditionEmbedding(nn.Module):
    """Concatenates a learned class embedding to the latent code (identity when unconditional)."""

    def __init__(self, num_classes: int | None, z_dim: int):
        super().__init__()
        self.num_classes = num_classes
        self.dim = 0 if num_classes is None else min(z_dim, 32)
        self.embed = nn.Embedding(num_classes, self.dim) if num_classes else None

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if self.embed is None:
            if cond is not None:
                raise ValueError("this generator is unconditional (num_classes=None) but got class ids.")
            return z
        if cond is None:
            raise ValueError(
                f"this generator is class-conditional ({self.num_classes} classes): pass class ids."
            )
        if cond.min() < 0 or cond.max() >= self.num_classes:
            raise ValueError(f"class ids must be in [0, {self.num_classes}); got {cond.min()}..{cond.max()}.")
        return torch.cat([z, self.embed(cond)], dim=1)
