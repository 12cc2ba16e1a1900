"""Offline SR data: random high-res crops with bicubic low-res inputs, and whole held-out images.

* :func:`skimage_dataset` (``sr:skimage``): the photos bundled with scikit-image (no download);
  training crops from ``SKIMAGE_TRAIN``, evaluation on the whole ``SKIMAGE_TEST`` images.
* :func:`folder_dataset` (``sr:folder``): any folder of images, a share (or a second folder) held out.
* :func:`digits_dataset` (``sr:digits``): scikit-learn's digits, x2 upsampling of 8 px inputs to
  16 px targets, a tiny task for tests and quick checks.

Low-res inputs are made as SR benchmarks make them: crop the high-res image to a multiple of the
scale, downsample with antialiased bicubic, round to 8 bits (:func:`mvm_core_sr.ops.bicubic_downsample`).
Training items are random crops, decided by ``(seed, index)`` alone: the same index is the same
crop in every epoch and after a resume, so runs are reproducible without state in the dataset.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mvm_core.data import PairedDataset, PairedTensorDataset

from .metrics import evaluate_sr
from .ops import bicubic_downsample, modcrop

# scikit-image's bundled photos (skimage.data, shipped in the wheel): textures, text, faces, space
SKIMAGE_TRAIN: tuple[str, ...] = (
    "astronaut", "coffee", "immunohistochemistry", "hubble_deep_field", "coins", "moon", "page",
    "text", "brick", "grass", "gravel", "clock", "colorwheel",
)
# held out for evaluation: fine lines (tripod, grass), fur and whiskers, a rocket on its tower
SKIMAGE_TEST: tuple[str, ...] = ("camera", "chelsea", "rocket")


def image_to_tensor(array: np.ndarray, channels: int = 3) -> torch.Tensor:
    """An image array (H, W), (H, W, 3) or (H, W, 4), uint8 or bool, as ``(channels, H, W)`` in
    [-1, 1]; gray is repeated to RGB, RGB is reduced to gray (BT.601 weights), alpha dropped."""
    a = np.asarray(array)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.dtype != np.uint8:
        raise TypeError(f"images must be 8-bit (uint8) arrays; got dtype {a.dtype}.")
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise ValueError(f"images must be (H, W), (H, W, 3) or (H, W, 4); got {a.shape}.")
    x = torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1).float() / 127.5 - 1
    if channels == 3 and x.shape[0] == 1:
        return x.expand(3, -1, -1).contiguous()
    if channels == 1 and x.shape[0] == 3:
        w = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        return (x * w).sum(0, keepdim=True)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3; got {channels}.")
    return x


def skimage_images(names: Sequence[str], channels: int = 3) -> list[torch.Tensor]:
    """scikit-image's bundled images by name (``skimage.data.<name>()``), as tensors."""
    import skimage.data

    out = []
    for name in names:
        loader = getattr(skimage.data, name, None)
        if loader is None or not callable(loader):
            raise ValueError(f"skimage.data has no image {name!r}; bundled ones include {SKIMAGE_TRAIN + SKIMAGE_TEST}.")
        out.append(image_to_tensor(loader(), channels))
    return out


class SRCropDataset(PairedDataset):
    """Random ``(lr, hr)`` crops of training images; whole held-out images for evaluation.

    Item ``i`` is a ``patch_size`` high-res crop (position, and with ``augment`` one of the 8
    flips/rotations, drawn from ``(seed, i)``; images equally likely) and its low-res crop, cut
    from the low-res image made once per image. ``heldout(n)`` gives fixed crops of the test
    images (for sample pictures); :meth:`evaluate` scores whole test images.

    Args:
        train_images, test_images: ``(C, H, W)`` tensors in [-1, 1].
        scale: upscaling factor; patch_size: high-res crop side (a multiple of ``scale``).
        length: items per epoch (distinct crops).
        seed: crop positions; augment: random flips and 90-degree rotations.
        heldout_count: held-out crops kept for pictures.
        test_crop: evaluate on centre crops of at most this side (None: whole images).
        name: labels runs and reports.
    """

    def __init__(self, train_images: Sequence[torch.Tensor], test_images: Sequence[torch.Tensor],
                 scale: int = 2, patch_size: int = 48, length: int = 16384, seed: int = 0,
                 augment: bool = True, heldout_count: int = 64, test_crop: int | None = None,
                 name: str = "sr"):
        if scale < 1 or patch_size % scale or patch_size < 2 * scale:
            raise ValueError(
                f"patch_size must be a multiple of scale and at least 2 * scale; got patch_size"
                f" {patch_size}, scale {scale}."
            )
        if not train_images or not test_images:
            raise ValueError("SR data needs at least one training and one test image.")
        if length < 1:
            raise ValueError(f"length must be >= 1; got {length}.")
        small = [tuple(t.shape[-2:]) for t in list(train_images) + list(test_images)
                 if min(t.shape[-2:]) < patch_size]
        if small:
            raise ValueError(f"images of size {small} are smaller than patch_size {patch_size}; lower it.")
        self.scale, self.patch_size, self.length, self.seed = scale, patch_size, length, seed
        self.augment, self.name = augment, name
        self.hr = [modcrop(t.float(), scale) for t in train_images]
        self.lr = [bicubic_downsample(t[None], scale)[0] for t in self.hr]
        tests = [modcrop(self._centre(t.float(), test_crop), scale) for t in test_images]
        self.test_hr = tests
        self.test_lr = [bicubic_downsample(t[None], scale)[0] for t in tests]
        self._heldout = self._heldout_crops(heldout_count)

    @staticmethod
    def _centre(t: torch.Tensor, side: int | None) -> torch.Tensor:
        if side is None:
            return t
        h, w = t.shape[-2:]
        top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
        return t[..., top : top + side, left : left + side]

    def __len__(self) -> int:
        return self.length

    def _crop(self, hr: torch.Tensor, lr: torch.Tensor, rng: np.random.Generator
              ) -> tuple[torch.Tensor, torch.Tensor]:
        p, s = self.patch_size // self.scale, self.scale
        top = int(rng.integers(0, lr.shape[-2] - p + 1))
        left = int(rng.integers(0, lr.shape[-1] - p + 1))
        return (lr[:, top : top + p, left : left + p],
                hr[:, top * s : (top + p) * s, left * s : (left + p) * s])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} crops.")
        rng = np.random.default_rng([self.seed, int(index)])
        k = int(rng.integers(len(self.hr)))
        lr, hr = self._crop(self.hr[k], self.lr[k], rng)
        if self.augment:
            flip, rot = bool(rng.integers(2)), int(rng.integers(4))
            if flip:
                lr, hr = lr.flip(-1), hr.flip(-1)
            lr, hr = torch.rot90(lr, rot, (-2, -1)), torch.rot90(hr, rot, (-2, -1))
        return lr.contiguous(), hr.contiguous()

    def _heldout_crops(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, 10**9])
        pairs = [self._crop(self.test_hr[i % len(self.test_hr)], self.test_lr[i % len(self.test_lr)], rng)
                 for i in range(max(1, count))]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def heldout(self, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        lr, hr = self._heldout
        n = len(lr) if n is None else min(int(n), len(lr))
        return lr[:n], hr[:n]

    def test_pairs(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Whole held-out images as ``(lr, hr)`` batches of one."""
        for lr, hr in zip(self.test_lr, self.test_hr):
            yield lr[None], hr[None]

    @torch.no_grad()
    def evaluate(self, trainer: Any, n: int = 2000,
                 metrics: tuple[str, ...] | None = None) -> dict[str, float]:
        """PSNR/SSIM on Y (border ``scale``; LPIPS when available) of the trainer's generator and
        of bicubic upsampling, mean over the whole test images (``n`` is not used)."""
        return evaluate_sr(lambda lr: trainer.predict(lr, batch_size=1), self.test_pairs(),
                           self.scale, metrics)


def skimage_dataset(scale: int = 2, patch_size: int = 48, train: Sequence[str] = SKIMAGE_TRAIN,
                    test: Sequence[str] = SKIMAGE_TEST, channels: int = 3, length: int = 16384,
                    seed: int = 0, augment: bool = True, test_crop: int | None = None) -> SRCropDataset:
    """SR crops of scikit-image's bundled photos (offline); evaluation on the ``test`` images."""
    overlap = set(train) & set(test)
    if overlap:
        raise ValueError(f"images {sorted(overlap)} are in both train and test; hold them out of one.")
    return SRCropDataset(skimage_images(train, channels), skimage_images(test, channels), scale,
                         patch_size, length, seed, augment, test_crop=test_crop,
                         name=f"sr-skimage-x{scale}")


_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def _read_folder(root: Path, channels: int) -> list[torch.Tensor]:
    from PIL import Image

    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist; pass a folder of images.")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in _SUFFIXES)
    if not files:
        raise ValueError(f"no images under {str(root)!r} (looked for {sorted(_SUFFIXES)}).")
    images = []
    for path in files:
        with Image.open(path) as img:
            images.append(image_to_tensor(np.asarray(img.convert("L" if channels == 1 else "RGB")), channels))
    return images


def folder_dataset(root: str | Path, scale: int = 2, patch_size: int = 48,
                   test_root: str | Path | None = None, test_fraction: float = 0.1, channels: int = 3,
                   length: int = 16384, seed: int = 0, augment: bool = True,
                   test_crop: int | None = None) -> SRCropDataset:
    """SR crops of any folder of images (searched recursively). The test images are those of
    ``test_root``, or else the last ``test_fraction`` of the sorted files (at least one)."""
    images = _read_folder(Path(root), channels)
    if test_root is not None:
        train, test = images, _read_folder(Path(test_root), channels)
    else:
        if len(images) < 2:
            raise ValueError(f"{str(root)!r} has {len(images)} image; hold-out needs 2 or more, or pass test_root.")
        k = max(1, round(len(images) * test_fraction))
        train, test = images[:-k], images[-k:]
    return SRCropDataset(train, test, scale, patch_size, length, seed, augment, test_crop=test_crop,
                         name=f"sr-folder-x{scale}")


class DigitsSRDataset(PairedTensorDataset):
    """scikit-learn digits for x2 SR (in memory); SR evaluation with a 7 px SSIM window (16 px
    images leave 12 px after the border crop, too few for the usual 11 px window)."""

    scale = 2

    @torch.no_grad()
    def evaluate(self, trainer: Any, n: int = 2000,
                 metrics: tuple[str, ...] | None = None) -> dict[str, float]:
        lr, hr = self.heldout(n)
        return evaluate_sr(trainer.predict, [(lr, hr)], self.scale, metrics or ("psnr", "ssim"), window=7)


def digits_dataset(image_size: int = 16, scale: int = 2, test_count: int = 297) -> DigitsSRDataset:
    """Digits at ``image_size`` (16 or 32: bilinear enlargements of the 8 px originals) as targets,
    their bicubic ``1/scale`` as inputs; the last ``test_count`` digits are held out."""
    from mvm_core.data import digits_dataset as core_digits

    if image_size not in (16, 32) or image_size % scale:
        raise ValueError(f"image_size must be 16 or 32 and a multiple of scale; got {image_size}, scale {scale}.")
    hr = core_digits(image_size, labels=False).data
    if not 0 < test_count < len(hr):
        raise ValueError(f"test_count must be in 1..{len(hr) - 1}; got {test_count}.")
    lr = bicubic_downsample(hr, scale)
    ds = DigitsSRDataset(lr[:-test_count], hr[:-test_count], lr[-test_count:], hr[-test_count:],
                         name=f"sr-digits{image_size}-x{scale}")
    ds.scale = scale
    return ds


__all__ = [
    "SKIMAGE_TEST", "SKIMAGE_TRAIN", "DigitsSRDataset", "SRCropDataset", "digits_dataset",
    "folder_dataset", "image_to_tensor", "skimage_dataset", "skimage_images",
]
