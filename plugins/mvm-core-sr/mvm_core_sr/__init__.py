"""mvm-core plugin: single-image super-resolution by manifold matching (``sr:`` names).

Registers

* generators ``sr:SRResNet`` and ``sr:RDN`` (low-res -> high-res, x2/x3/x4/x8, sizes configurable);
* backbone ``sr:PatchMetricNet`` (the metric network on high-res patches);
* datasets ``sr:skimage`` (scikit-image's bundled photos), ``sr:folder`` (any image folder) and
  ``sr:digits`` (x2 digits), all offline, paired ``(low-res, high-res)``;
* metrics ``sr:psnr`` and ``sr:ssim`` (Y channel, border crop: the SR protocol).

Train with ``mvm train --preset sr`` (L1 + manifold matching), ``--method gan`` (L1 + adversarial)
or ``--method none`` (L1 only); ``mvm eval RUN`` reports PSNR/SSIM on Y against bicubic.
The package imports torch-only code (scikit-image loads when a dataset is built): cheap to load.
"""

from __future__ import annotations

from mvm_core import hookimpl
from mvm_core.registry import Register

from .data import (
    SKIMAGE_TEST,
    SKIMAGE_TRAIN,
    DigitsSRDataset,
    SRCropDataset,
    digits_dataset,
    folder_dataset,
    skimage_dataset,
)
from .metrics import evaluate_sr, load_lpips, lpips_available, psnr, ssim, y_metrics
from .nets import RDN, PatchMetricNet, SRResNet
from .ops import bicubic_downsample, bicubic_resize, modcrop, quantize, rgb_to_y

__version__ = "0.1.0"


@hookimpl
def mvm_register_generators(register: Register) -> None:
    from .nets import RDN, SRResNet

    register("sr:SRResNet", SRResNet,
             description="SRResNet-style SR generator (residual blocks, pixel shuffle, bicubic skip)")
    register("sr:RDN", RDN,
             description="RDN-style SR generator (residual dense blocks, global fusion, bicubic skip)")


@hookimpl
def mvm_register_backbones(register: Register) -> None:
    from .nets import PatchMetricNet

    register("sr:PatchMetricNet", PatchMetricNet,
             description="metric network on high-res patches of any size: (B, C, H, W) -> (B, emb_dim)")


@hookimpl
def mvm_register_datasets(register: Register) -> None:
    from .data import digits_dataset, folder_dataset, skimage_dataset

    register("sr:skimage", skimage_dataset,
             description="SR pairs: random crops of scikit-image's bundled photos, bicubic low-res (offline)")
    register("sr:folder", folder_dataset,
             description="SR pairs: random crops of a folder of images, bicubic low-res, some held out")
    register("sr:digits", digits_dataset,
             description="SR pairs: digits x2 (8 px inputs, 16 px targets), a tiny task")


def _psnr_y(output, target, scale: int = 2):
    """PSNR (dB) on Y per image, border crop ``scale``, outputs rounded to 8 bits: images in [-1, 1]."""
    from .metrics import y_metrics

    return y_metrics(output, target, border=scale)["psnr"]


def _ssim_y(output, target, scale: int = 2, window: int = 11):
    """SSIM on Y per image (11 px Gaussian window, sigma 1.5), border crop ``scale``."""
    from .metrics import y_metrics

    return y_metrics(output, target, border=scale, window=window)["ssim"]


@hookimpl
def mvm_register_metrics(register: Register) -> None:
    register("sr:psnr", lambda: _psnr_y, description=_psnr_y.__doc__)
    register("sr:ssim", lambda: _ssim_y, description=_ssim_y.__doc__)


__all__ = [
    "RDN", "SKIMAGE_TEST", "SKIMAGE_TRAIN", "DigitsSRDataset", "PatchMetricNet", "SRCropDataset",
    "SRResNet", "__version__", "bicubic_downsample", "bicubic_resize", "digits_dataset",
    "evaluate_sr", "folder_dataset", "load_lpips", "lpips_available", "modcrop", "psnr", "quantize",
    "rgb_to_y", "skimage_dataset", "ssim", "y_metrics",
]
