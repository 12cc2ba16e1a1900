"""The digits evaluation network: a small CNN trained by the project on scikit-learn's digits.

It defines the ``@digits-classifier`` feature space, the default for digits experiments: FID, KID,
precision/recall, ... on its penultimate layer (64 features), Inception score and class coverage on
its logits. Everything is offline: the weights ship with the package
(``mvm_core/assets/digits_classifier.safetensors``, with a JSON of architecture, data split, seed,
test accuracy and sha256), produced by ``scripts/train_digits_classifier.py``.

Digits convention across mvm-core: float images (N, 1, 8, 8) in [-1, 1] = pixel / 16 * 2 - 1;
larger sizes (16, 32, 64) are bilinear upsamplings of those. The network accepts (N, 1, H, W) with
square H a multiple of 8 and averages it down to 8 x 8 (adaptive average pooling) before the
convolutions. An 8 x 8 input is first upsampled to 16 x 16 (bilinear) and pooled back: the 8 x 8
block average of a bilinear upsampling is the same for every integer factor, so a digit and its
16, 32 or 64 px versions give *identical* features. Real data at 8 px and a generator at 32 px can
thus be compared in ``@digits-classifier`` directly.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .assets import classifier_weights, sha256_of, shipped_metadata
from .classifier import FrozenClassifier

SPACE = "digits-classifier"
"""Feature-space name of this network in metric keys (``fid@digits-classifier``)."""

WEIGHTS_FILE = "digits_classifier.safetensors"
METADATA_FILE = "digits_classifier.json"
NATIVE_SIZE = 8

DIGITS_SPLIT = {"test_size": 0.2, "random_state": 0, "stratify": True}
"""The fixed train/test split of ``sklearn.datasets.load_digits`` (sklearn ``train_test_split``)."""


def pixels_to_images(pixels: torch.Tensor) -> torch.Tensor:
    """sklearn digits pixels (N, 64) or (N, 8, 8) in [0, 16] -> images (N, 1, 8, 8) in [-1, 1]."""
    return (torch.as_tensor(pixels, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16) * 2 - 1


def digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)`` of the classifier's fixed split (images in [-1, 1]).

    1,437 training and 360 test images of scikit-learn's bundled digits (no download).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data,
        data.target,
        test_size=DIGITS_SPLIT["test_size"],
        random_state=DIGITS_SPLIT["random_state"],
        stratify=data.target if DIGITS_SPLIT["stratify"] else None,
    )
    as_labels = lambda y: torch.as_tensor(y, dtype=torch.long)  # noqa: E731
    return pixels_to_images(x_tr), as_labels(y_tr), pixels_to_images(x_te), as_labels(y_te)


def upsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear upsampling (align_corners=False): how larger digits are made from 8 x 8 ones."""
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


class DigitsNet(nn.Module):
    """Trainable network: canonical 8x8 input, three 3x3 conv blocks, 64-d hidden layer, 10 logits.

    Input (N, 1, H, W) in [-1, 1] with H = W a multiple of 8. ``channels`` and ``feature_dim``
    are recorded in the metadata JSON so the loader rebuilds the same architecture.
    """

    def __init__(
        self,
        channels: tuple[int, int, int] = (16, 32, 64),
        feature_dim: int = 64,
        num_classes: int = 10,
        dropout: float = 0.2,
    ):
        super().__init__()
        c1, c2, c3 = channels
        self.channels = tuple(channels)
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)
        self.fc = nn.Linear(c3 * 2 * 2, feature_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_dim, num_classes)

    @staticmethod
    def check_images(images: torch.Tensor) -> None:
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(
                "images must be digits of shape (N, 1, H, W) in [-1, 1]; got"
                f" {getattr(images, 'shape', type(images).__name__)}."
            )
        h, w = images.shape[-2:]
        if h != w or h % NATIVE_SIZE != 0:
            raise ValueError(
                f"images must be square with a side multiple of 8 (8, 16, 32, 64); got {h} x {w}."
                " Resize with F.interpolate(x, size=(8, 8), mode='area') first."
            )

    @staticmethod
    def canonical_input(images: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) -> (N, 1, 8, 8): what the convolutions see, the same for every size of the
        digits convention (8 px inputs go through the 16 px bilinear upsampling first)."""
        if images.shape[-1] == NATIVE_SIZE:
            images = upsample(images, 2 * NATIVE_SIZE)
        return F.adaptive_avg_pool2d(images, NATIVE_SIZE)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) -> (N, feature_dim) penultimate activations (after ReLU)."""
        self.check_images(images)
        x = self.canonical_input(images)
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        return F.relu(self.fc(x.flatten(1)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) -> (N, num_classes) logits."""
        return self.head(self.dropout(self.features(images)))


class DigitsClassifier(FrozenClassifier):
    """Frozen :class:`DigitsNet` as a feature extractor (layers ``"features"`` and ``"logits"``).

    ``features(x)``: (N, 64) penultimate layer, the ``@digits-classifier`` space;
    ``logits(x)``: (N, 10). Inputs are mvm-core digits: (N, 1, H, W) in [-1, 1], H = W in
    {8, 16, 32, 64}. Gradients flow to the input images, never to the weights.
    """

    input_size = None  # any multiple of 8: pooled to 8x8 inside the network
    input_channels = 1
    check_images = staticmethod(DigitsNet.check_images)


def digits_classifier_metadata() -> dict:
    """The shipped classifier's metadata (architecture, split, seed, test accuracy, sha256)."""
    return shipped_metadata("digits_classifier", "digits classifier")


def load_digits_classifier(
    weights: str | Path | None = None, device: torch.device | str = "cpu"
) -> DigitsClassifier:
    """The frozen digits classifier from the shipped safetensors (or your ``weights`` file).

    The shipped file is checked against the sha256 in its metadata; a custom file uses the
    shipped architecture unless a JSON with the same stem sits next to it.
    """
    from safetensors.torch import load_file

    path, metadata = classifier_weights("digits_classifier", "digits classifier", weights)
    arch = metadata["architecture"]
    net = DigitsNet(
        channels=tuple(arch["channels"]),
        feature_dim=arch["feature_dim"],
        num_classes=arch["num_classes"],
    )
    net.load_state_dict(load_file(str(path)))
    return DigitsClassifier(net, metadata=metadata).to(device)


__all__ = [
    "DIGITS_SPLIT",
    "SPACE",
    "DigitsClassifier",
    "DigitsNet",
    "digits_classifier_metadata",
    "digits_split",
    "load_digits_classifier",
    "pixels_to_images",
    "sha256_of",
    "upsample",
]
