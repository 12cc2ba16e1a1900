"""The MNIST evaluation network: a small CNN trained by the project on the bundled MNIST subset.

It defines the ``@mnist-classifier`` feature space, the default for ``--data mnist`` runs: FID, KID,
precision/recall, ... on its penultimate layer (64 features), Inception score and class coverage on
its logits. For Stacked MNIST it classifies each of the three channels (see
:meth:`MnistClassifier.predict_channels` and
:func:`mvm_core.metrics.modes.discrete_mode_coverage`). Everything is offline: the weights
ship with the package (``mvm_core/assets/mnist_classifier.safetensors``, with a JSON of
architecture, data split, seed, held-out accuracy and sha256), produced by
``scripts/train_mnist_classifier.py`` on the 4,000 training images of
:func:`mvm_core.data.mnist.mnist_split` (the 1,000 held-out images give its recorded accuracy).

Input: mvm-core MNIST, (N, 1, H, W) in [-1, 1] = pixel / 255 * 2 - 1, the 28 x 28 digit
zero-padded to 32 x 32; other sides are resized bilinearly to 32 before the convolutions.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .assets import classifier_weights, shipped_metadata
from .classifier import FrozenClassifier

SPACE = "mnist-classifier"
"""Feature-space name of this network in metric keys (``fid@mnist-classifier``)."""

WEIGHTS_FILE = "mnist_classifier.safetensors"
METADATA_FILE = "mnist_classifier.json"
NATIVE_SIZE = 32


class MnistNet(nn.Module):
    """Trainable network: 32 x 32 input, three 3x3 conv blocks with 2x2 max pooling (32 -> 4),
    a ``feature_dim`` hidden layer (the feature space) and 10 logits.

    Input (N, 1, 32, 32) in [-1, 1]. ``channels`` and ``feature_dim`` are recorded in the metadata
    JSON so the loader rebuilds the same architecture.
    """

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64), feature_dim: int = 64,
                 num_classes: int = 10, dropout: float = 0.2):
        super().__init__()
        c1, c2, c3 = channels
        self.channels = tuple(channels)
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)
        self.fc = nn.Linear(c3 * 4 * 4, feature_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 32, 32) -> (N, feature_dim) penultimate activations (after ReLU)."""
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        return F.relu(self.fc(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 32, 32) -> (N, num_classes) logits."""
        return self.head(self.dropout(self.features(x)))


def _check_images(images: torch.Tensor, channels: int = 1) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != channels:
        what = "MNIST digits (N, 1, H, W)" if channels == 1 else "Stacked MNIST images (N, 3, H, W)"
        raise ValueError(
            f"images must be {what} in [-1, 1]; got {getattr(images, 'shape', type(images).__name__)}."
        )
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"images must be square; got {images.shape[-2]} x {images.shape[-1]}.")


class MnistClassifier(FrozenClassifier):
    """Frozen :class:`MnistNet` as a feature extractor (layers ``"features"`` and ``"logits"``).

    ``features(x)``: (N, 64) penultimate layer, the ``@mnist-classifier`` space; ``logits(x)``:
    (N, 10); ``channel_logits(x)``: (N, 3, 10) for Stacked MNIST (each channel a digit). Inputs are
    mvm-core MNIST images in [-1, 1]; gradients flow to the inputs, never to the weights.
    """

    input_size = NATIVE_SIZE  # other sides: bilinear resizing in preprocess
    input_channels = 1
    check_images = staticmethod(_check_images)

    def channel_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Stacked MNIST (N, 3, H, W) in [-1, 1] -> (N, 3, 10): each channel classified alone."""
        _check_images(images, channels=3)
        n = images.shape[0]
        return self.logits(images.reshape(n * 3, 1, *images.shape[-2:])).reshape(n, 3, -1)

    @torch.no_grad()
    def predict_channels(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Stacked MNIST (N, 3, H, W) -> predicted digits (N, 3), in batches, without gradients."""
        device = next(self.parameters()).device
        return torch.cat([self.channel_logits(images[i : i + batch_size].to(device)).argmax(-1).cpu()
                          for i in range(0, images.shape[0], batch_size)])


def mnist_classifier_metadata() -> dict:
    """The shipped classifier's metadata (architecture, split, seed, held-out accuracy, sha256)."""
    return shipped_metadata("mnist_classifier", "MNIST classifier")


def load_mnist_classifier(weights: str | Path | None = None,
                          device: torch.device | str = "cpu") -> MnistClassifier:
    """The frozen MNIST classifier from the shipped safetensors (or your ``weights`` file).

    The shipped file is checked against the sha256 in its metadata; a custom file uses the
    shipped architecture unless a JSON with the same stem sits next to it.
    """
    from safetensors.torch import load_file

    path, metadata = classifier_weights("mnist_classifier", "MNIST classifier", weights)
    arch = metadata["architecture"]
    net = MnistNet(channels=tuple(arch["channels"]), feature_dim=arch["feature_dim"],
                   num_classes=arch["num_classes"])
    net.load_state_dict(load_file(str(path)))
    return MnistClassifier(net, metadata=metadata).to(device)


__all__ = [
    "SPACE",
    "MnistClassifier",
    "MnistNet",
    "load_mnist_classifier",
    "mnist_classifier_metadata",
]
