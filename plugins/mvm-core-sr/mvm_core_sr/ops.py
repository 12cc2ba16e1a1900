"""Image operations of the SR protocol: bicubic resizing, 8-bit quantization, border/mod crops, Y.

Conventions: images are float tensors ``(N, C, H, W)`` in [-1, 1] (mvm-core's), ``C`` = 3 (RGB)
or 1 (gray). Bicubic resizing is torch's antialiased bicubic (Keys kernel with a = -0.5, the
kernel widened when downsampling), which matches PIL's ``Image.BICUBIC`` to within 8-bit
rounding and follows MATLAB's ``imresize``, the usual way SR benchmarks make low-res inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bicubic_resize(x: torch.Tensor, scale: float | None = None,
                   size: tuple[int, int] | None = None) -> torch.Tensor:
    """Antialiased bicubic resize of ``(N, C, H, W)`` by ``scale`` (> 1 enlarges) or to ``size``."""
    if x.ndim != 4:
        raise ValueError(f"bicubic_resize takes (N, C, H, W) images; got shape {tuple(x.shape)}.")
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size.")
    if size is None:
        size = (round(x.shape[-2] * scale), round(x.shape[-1] * scale))
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)


def bicubic_downsample(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The low-res input of ``hr`` (``H``, ``W`` multiples of ``scale``), quantized to 8 bits as if
    saved to a PNG (SR benchmarks read their LR inputs from 8-bit files)."""
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(
            f"high-res size {h}x{w} is not a multiple of scale {scale}; crop it with modcrop first."
        )
    return quantize(bicubic_resize(hr, size=(h // scale, w // scale)))


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round images in [-1, 1] to the 256 levels of an 8-bit image (clamping to the range)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


def modcrop(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom/right so that height and width are multiples of ``scale``."""
    h, w = x.shape[-2:]
    return x[..., : h - h % scale, : w - w % scale]


def shave(x: torch.Tensor, border: int) -> torch.Tensor:
    """Drop ``border`` pixels on every side (the SR protocol ignores a border of ``scale`` px)."""
    if border == 0:
        return x
    if min(x.shape[-2:]) <= 2 * border:
        raise ValueError(f"image {tuple(x.shape[-2:])} is too small for a border crop of {border}.")
    return x[..., border:-border, border:-border]


# ITU-R BT.601 (MATLAB rgb2ycbcr): Y = 16 + 65.481 R + 128.553 G + 24.966 B for R, G, B in [0, 1]
_Y_WEIGHTS = (65.481, 128.553, 24.966)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """Luma ``(N, 1, H, W)`` in [16, 235] (8-bit scale, BT.601) of RGB images in [-1, 1]; a gray
    image (C = 1) is returned on the 0..255 scale unchanged (what SR code does for gray input)."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"rgb_to_y takes (N, 3, H, W) RGB or (N, 1, H, W) gray; got {tuple(x.shape)}.")
    unit = (x.double() + 1) / 2
    if x.shape[1] == 1:
        return unit * 255.0
    w = torch.tensor(_Y_WEIGHTS, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    return 16.0 + (unit * w).sum(dim=1, keepdim=True)


__all__ = ["bicubic_downsample", "bicubic_resize", "modcrop", "quantize", "rgb_to_y", "shave"]
