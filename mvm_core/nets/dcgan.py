"""DCGAN-style convolutional generator and metric network for 8/16/32/64 px images."""

from __future__ import annotations

import math

import torch
from torch import nn

from .common import ConditionEmbedding, maybe_spectral_norm

SIZES = (8, 16, 32, 64)


def _check_size(image_size: int) -> int:
    if image_size not in SIZES:
        raise ValueError(f"image_size must be one of {SIZES}; got {image_size}.")
    return int(math.log2(image_size // 4))  # number of x2 stages from 4x4


class DCGANGenerator(nn.Module):
    """``z (B, z_dim) [, class ids] -> images (B, channels, S, S)`` in [-1, 1] (tanh).

    A linear layer to 4x4 feature maps, then ``log2(S / 4)`` transposed-conv upsamplings that
    halve the width each time (batch norm + ReLU), as in DCGAN (Radford et al. 2016).
    """

    def __init__(self, z_dim: int = 128, image_size: int = 32, channels: int = 3, width: int = 64,
                 num_classes: int | None = None):
        super().__init__()
        stages = _check_size(image_size)
        self.z_dim, self.image_size, self.channels, self.num_classes = z_dim, image_size, channels, num_classes
        self.condition = ConditionEmbedding(num_classes, z_dim)
        top = width * 2 ** (stages - 1) if stages > 0 else width
        self.top = top
        self.project = nn.Sequential(
            nn.Linear(z_dim + self.condition.dim, top * 16), nn.BatchNorm1d(top * 16), nn.ReLU()
        )
        layers, c = [], top
        for i in range(stages):
            last = i == stages - 1
            out = channels if last else c // 2
            layers.append(nn.ConvTranspose2d(c, out, 4, 2, 1, bias=last))
            if not last:
                layers += [nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        self.net = nn.Sequential(*layers, nn.Tanh())

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.project(self.condition(z, cond)).view(-1, self.top, 4, 4)
        return self.net(h)


class DCGANMetricNet(nn.Module):
    """``images (B, C, S, S) -> embedding (B, emb_dim)``: strided convs with LeakyReLU, no batch norm.

    No batch norm: its batch statistics would mix real and generated samples, which are embedded
    together. Spectral normalization (optional) bounds the network's Lipschitz constant.
    """

    def __init__(self, image_size: int = 32, channels: int = 3, emb_dim: int = 10, width: int = 64,
                 spectral_norm: bool = False):
        super().__init__()
        stages = _check_size(image_size)
        self.image_size, self.channels, self.emb_dim = image_size, channels, emb_dim
        layers, c = [], channels
        for i in range(stages):
            out = width * 2**i
            layers += [maybe_spectral_norm(nn.Conv2d(c, out, 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2)]
            c = out
        self.features = nn.Sequential(*layers)
        self.head = maybe_spectral_norm(nn.Linear(c * 16, emb_dim), spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))
