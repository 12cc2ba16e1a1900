"""Frozen feature extractors: the common interface of GFMN extractors, timm models and eval nets.

An extractor maps images in mvm-core's convention (float (N, C, H, W) in [-1, 1]) to a dict of
named layer outputs. It declares what it expects so callers never guess: the input size it resizes
to, the normalization it applies, and the layers it provides. Extractors are frozen: eval mode and
no gradients to their weights, while gradients still flow to the input images (GFMN trains a
generator through them).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


class FeatureExtractor(torch.nn.Module):
    """Base class: subclasses set the attributes below and implement :meth:`extract`.

    Attributes:
        input_size: side the images are resized to (None: any size is accepted as is).
        input_channels: channels expected (1-channel images are repeated to 3 when it is 3).
        mean, std: per-channel normalization applied after mapping [-1, 1] to [0, 1].
        layers: names of the layers this extractor provides, shallow to deep.
    """

    input_size: int | None = None
    input_channels: int = 3
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    layers: tuple[str, ...] = ()

    def __init__(self, selected: Sequence[str] | None = None):
        super().__init__()
        self.selected = self._check_layers(selected)

    def _check_layers(self, selected: Sequence[str] | None) -> tuple[str, ...]:
        if selected is None:
            return tuple(self.layers)
        unknown = [name for name in selected if name not in self.layers]
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no layer(s) {unknown}; it provides {list(self.layers)}."
            )
        return tuple(selected)

    def freeze(self) -> FeatureExtractor:
        """Eval mode and ``requires_grad_(False)`` on every weight (call at the end of __init__)."""
        self.eval()
        for param in self.parameters():
            param.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> FeatureExtractor:
        # Always eval: batch-norm statistics of a pretrained extractor must never change.
        return super().train(False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images -> resized, channel-matched, normalized network input."""
        if images.ndim != 4:
            raise ValueError(
                f"images must have shape (N, C, H, W); got {tuple(images.shape)}."
            )
        x = (images + 1) / 2
        if x.shape[1] == 1 and self.input_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[1] != self.input_channels:
            raise ValueError(
                f"{type(self).__name__} expects {self.input_channels} channels; got {x.shape[1]}."
            )
        if self.input_size is not None and x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std

    def extract(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Network input -> {layer name: activation} for ``self.selected``."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.extract(self.preprocess(images))
