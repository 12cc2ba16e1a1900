"""Built-in datasets, all in memory and offline: 2D mixtures, scikit-learn's digits, image folders,
user tensors. Every dataset is a :class:`GenerativeDataset`: samples in the model's convention
(points as (N, 2) floats; images as (N, C, H, W) floats in [-1, 1]) and optional integer labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .toy import GaussianMixture2D, grid, ring

IMAGE_SIZES = (8, 16, 32, 64)


class GenerativeDataset(torch.utils.data.Dataset):
    """In-memory samples (and optional labels) for training a generator.

    Items are ``(x, y)`` with ``y = -1`` when the dataset has no labels, so any DataLoader works.
    ``num_classes`` fixes the class count when some classes may be absent from ``labels`` (Stacked
    MNIST: 1,000 modes); ``heldout`` (and ``heldout_labels``) are samples of the same distribution
    kept out of training, which evaluation uses as its real reference when present.
    """

    def __init__(self, data: torch.Tensor, labels: torch.Tensor | None = None, *, name: str = "tensors",
                 mixture: GaussianMixture2D | None = None, num_classes: int | None = None,
                 heldout: torch.Tensor | None = None, heldout_labels: torch.Tensor | None = None):
        if labels is not None and labels.shape[0] != data.shape[0]:
            raise ValueError(
                f"labels must have one entry per sample: {data.shape[0]} samples but"
                f" {labels.shape[0]} labels."
            )
        self.data = data
        self.labels = labels
        self.name = name
        self.mixture = mixture
        self._num_classes = num_classes
        self.heldout = heldout  # images never trained on: the reference of evaluation, if given
        self.heldout_labels = heldout_labels

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index):
        y = self.labels[index] if self.labels is not None else torch.tensor(-1)
        return self.data[index], y

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.data.ndim == 4

    @property
    def num_classes(self) -> int | None:
        """Number of classes (labels 0..K-1), or None without labels."""
        if self.labels is None:
            return None
        return self._num_classes if self._num_classes is not None else int(self.labels.max()) + 1

    def __repr__(self) -> str:
        return f"GenerativeDataset({self.name!r}, n={len(self)}, shape={self.sample_shape}, classes={self.num_classes})"


def mixture_dataset(mixture: GaussianMixture2D, n: int = 100_000, seed: int = 0) -> GenerativeDataset:
    """``n`` points drawn once from a 2D mixture (PacGAN: epochs of 100,000 samples)."""
    points = mixture.sample(n, torch.Generator().manual_seed(seed))
    return GenerativeDataset(points, name=mixture.name, mixture=mixture)


def ring_dataset(n: int = 100_000, seed: int = 0, **kwargs) -> GenerativeDataset:
    """The 2D ring of 8 Gaussians (radius 1, std 0.01); kwargs go to :func:`toy.ring`."""
    return mixture_dataset(ring(**kwargs), n, seed)


def grid_dataset(n: int = 100_000, seed: int = 0, **kwargs) -> GenerativeDataset:
    """The 2D grid of 25 Gaussians (spacing 2, std 0.05); kwargs go to :func:`toy.grid`."""
    return mixture_dataset(grid(**kwargs), n, seed)


def digits_dataset(image_size: int = 8, labels: bool = True) -> GenerativeDataset:
    """scikit-learn's bundled digits (1,797 images, 10 classes) as (N, 1, S, S) in [-1, 1].

    Pixels (0..16) map to ``pixel / 16 * 2 - 1``; sizes above 8 are bilinear upsamplings.
    """
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be one of {IMAGE_SIZES}; got {image_size}.")
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0 * 2 - 1
    if image_size != 8:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear",
                               align_corners=False).clamp(-1, 1)
    y = torch.tensor(digits.target, dtype=torch.long) if labels else None
    return GenerativeDataset(images, y, name=f"digits{image_size}")


_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def image_folder_dataset(root: str | Path, image_size: int = 32, channels: int = 3) -> GenerativeDataset:
    """Images under ``root`` (recursively), center-cropped and resized to ``image_size``.

    Sub-folders of ``root`` become class labels (like torchvision's ImageFolder) when every image
    sits in one; otherwise the dataset is unlabelled.
    """
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist; pass a folder of images.")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3; got {channels}.")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise ValueError(
            f"no images found under {str(root)!r} (looked for {sorted(_IMAGE_SUFFIXES)})."
        )
    images = []
    for path in files:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            w, h = img.size
            s = min(w, h)
            img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
            img = img.resize((image_size, image_size), Image.BICUBIC)
            arr = np.asarray(img, dtype=np.float32).reshape(image_size, image_size, channels)
        images.append(torch.from_numpy(arr).permute(2, 0, 1) / 255.0 * 2 - 1)
    data = torch.stack(images)
    classes = sorted({p.parent.relative_to(root).parts[0] for p in files if p.parent != root})
    labels = None
    if classes and all(p.parent != root for p in files):
        index = {c: i for i, c in enumerate(classes)}
        labels = torch.tensor([index[p.parent.relative_to(root).parts[0]] for p in files])
    return GenerativeDataset(data, labels, name=f"folder:{root.name}")


def tensor_dataset(data, labels=None, name: str = "tensors") -> GenerativeDataset:
    """User samples (tensor or numpy array; points (N, D) or images (N, C, H, W) in [-1, 1])."""
    x = torch.as_tensor(np.asarray(data) if not isinstance(data, torch.Tensor) else data)
    if not torch.is_floating_point(x):
        raise TypeError(f"data must be floating point (images scaled to [-1, 1]); got dtype {x.dtype}.")
    if x.ndim not in (2, 4):
        raise ValueError(
            f"data must have shape (N, D) for points or (N, C, H, W) for images; got {tuple(x.shape)}."
        )
    if x.shape[0] < 2:
        raise ValueError(f"data needs at least 2 samples; got {x.shape[0]}.")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("data contains NaN or inf; clean it before training.")
    y = None
    if labels is not None:
        y = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
        if y.dtype.is_floating_point or y.ndim != 1 or (y < 0).any():
            raise ValueError("labels must be a 1-D tensor of non-negative integer class ids.")
        y = y.long()
    return GenerativeDataset(x.float(), y, name=name)


def as_generative_dataset(data) -> GenerativeDataset | torch.utils.data.Dataset:
    """Pass datasets through; wrap tensors and arrays (and (x, y) pairs of them)."""
    if isinstance(data, torch.utils.data.Dataset):
        return data
    if isinstance(data, Sequence) and len(data) == 2 and not isinstance(data, str):
        return tensor_dataset(data[0], data[1])
    return tensor_dataset(data)
