"""2D Gaussian mixtures of the mode-collapse literature (VEEGAN / PacGAN benchmarks).

* ``ring``: 8 Gaussians with means ``(cos 2πk/8, sin 2πk/8)`` (radius 1), std 0.01 per coordinate.
* ``grid``: 25 Gaussians with means ``{-4, -2, 0, 2, 4}^2``, std 0.05 per coordinate.

Both with equal priors, as in PacGAN (Lin et al., NeurIPS 2018, Sec. 5 / Table 1). Custom mixtures
(other mode counts, spacings, stds, unequal priors) are built with :class:`GaussianMixture2D`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GaussianMixture2D:
    """Isotropic Gaussian mixture in 2D: ``means`` (K, 2), one ``std``, mixing ``weights`` (K,)."""

    means: torch.Tensor
    std: float
    weights: torch.Tensor | None = None
    name: str = "mixture"

    def __post_init__(self):
        if self.means.ndim != 2 or self.means.shape[1] != 2:
            raise ValueError(f"means must have shape (K, 2); got {tuple(self.means.shape)}.")
        if self.std <= 0:
            raise ValueError(f"std must be > 0; got {self.std}.")
        if self.weights is not None:
            if self.weights.shape != (self.means.shape[0],) or (self.weights < 0).any():
                raise ValueError("weights must be K non-negative numbers, one per mean.")

    @property
    def num_modes(self) -> int:
        return self.means.shape[0]

    @property
    def probs(self) -> torch.Tensor:
        """Mixing probabilities (uniform when no weights were given)."""
        if self.weights is None:
            return torch.full((self.num_modes,), 1.0 / self.num_modes)
        return self.weights / self.weights.sum()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples (n, 2), float32; reproducible with a seeded ``generator``."""
        modes = torch.multinomial(self.probs, n, replacement=True, generator=generator)
        noise = torch.randn(n, 2, generator=generator)
        return (self.means[modes] + self.std * noise).float()

    def extent(self) -> float:
        """Half-width of a square that holds the data (for plots): max |mean| + 4 std."""
        return float(self.means.abs().max()) + 4 * self.std


def ring(num_modes: int = 8, radius: float = 1.0, std: float = 0.01,
         weights: list[float] | None = None) -> GaussianMixture2D:
    """Modes evenly spaced on a circle (PacGAN's 2D-ring with the defaults); ``weights``: priors."""
    angles = 2 * math.pi * torch.arange(num_modes, dtype=torch.float64) / num_modes
    means = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
    return GaussianMixture2D(means.float(), std, _weights(weights), name=f"ring{num_modes}")


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05,
         weights: list[float] | None = None) -> GaussianMixture2D:
    """A ``side x side`` square grid centred at 0 (PacGAN's 2D-grid with the defaults); ``weights``:
    priors in row-major order of the means."""
    coords = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    xx, yy = torch.meshgrid(coords, coords, indexing="ij")
    means = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
    return GaussianMixture2D(means.float(), std, _weights(weights), name=f"grid{side * side}")


def _weights(weights: list[float] | None) -> torch.Tensor | None:
    return None if weights is None else torch.as_tensor(weights, dtype=torch.float32)


MIXTURES = {"ring": ring, "grid": grid}
