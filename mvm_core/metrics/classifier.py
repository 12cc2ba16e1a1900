"""A frozen classifier as a feature extractor: the shipped digits and MNIST judges share this.

Subclasses give the class attributes of :class:`~mvm_core.features.FeatureExtractor` and
``check_images``; the network has ``features(x)`` (the judged space) and ``head(features)``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..features import FeatureExtractor


class FrozenClassifier(FeatureExtractor):
    """Layers ``"features"`` (penultimate) and ``"logits"``; gradients reach the inputs only."""

    layers = ("features", "logits")
    mean = (0.5,)
    std = (0.5,)  # ([-1, 1] -> [0, 1]) then normalised back to [-1, 1]: the training range

    def __init__(self, net: nn.Module, selected=None, metadata: dict | None = None):
        super().__init__(selected)
        self.net = net
        self.metadata = dict(metadata or {})
        self.freeze()

    @staticmethod
    def check_images(images: torch.Tensor) -> None:
        """Raise a ValueError naming the expected input when ``images`` cannot be judged."""
        raise NotImplementedError

    def extract(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.net.features(x)
        out = {"features": feats, "logits": self.net.head(feats)}
        return {name: out[name] for name in self.selected}

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1] -> (N, F) features."""
        self.check_images(images)
        return self.net.features(self.preprocess(images))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1] -> (N, classes) logits."""
        return self.net.head(self.features(images))

    @torch.no_grad()
    def embed(self, images: torch.Tensor, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features, logits)`` of many images, in batches on the classifier's device, on the CPU
        and without gradients."""
        device = next(self.parameters()).device
        feats, logits = [], []
        for start in range(0, images.shape[0], batch_size):
            f = self.features(images[start : start + batch_size].to(device))
            feats.append(f.cpu())
            logits.append(self.net.head(f).cpu())
        return torch.cat(feats), torch.cat(logits)


__all__ = ["FrozenClassifier"]
