"""SR quality: PSNR and SSIM on the Y channel with a border crop, LPIPS when available offline.

The usual protocol of SR papers (EDSR, RDN, ESRGAN; BasicSR's ``calculate_psnr/ssim`` with
``test_y_channel=True``): the output is rounded to 8 bits, converted to luma Y (ITU-R BT.601, in
[16, 235]), a border of ``scale`` pixels is dropped, then

* PSNR = 10 log10(255^2 / MSE);
* SSIM (Wang et al. 2004): 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, data
  range 255, statistics over the valid region only (no padding), mean of the SSIM map. Equal to
  ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)`` (checked in the tests).

LPIPS (Zhang et al. 2018) needs the ``lpips`` package and torchvision's AlexNet weights already on
disk; nothing is downloaded (:func:`load_lpips` says what is missing and how to supply it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torch.nn.functional as F

from .ops import bicubic_resize, quantize, rgb_to_y, shave


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """PSNR in dB per image of two ``(N, C, H, W)`` batches on the same scale (``inf`` if equal)."""
    if x.shape != y.shape:
        raise ValueError(f"psnr needs two batches of one shape; got {tuple(x.shape)} and {tuple(y.shape)}.")
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float64) -> torch.Tensor:
    """The normalised ``size x size`` Gaussian window of SSIM."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"window size must be a positive odd int; got {size}.")
    r = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 255.0, window: int = 11,
         sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean SSIM per image (``(N, C, H, W)`` -> ``(N,)``, channels averaged), Gaussian-weighted,
    on the valid region (``H, W >= window``)."""
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim needs two (N, C, H, W) batches of one shape; got {tuple(x.shape)} and {tuple(y.shape)}.")
    if min(x.shape[-2:]) < window:
        raise ValueError(f"images {tuple(x.shape[-2:])} are smaller than the SSIM window {window}; pass a smaller window.")
    x, y = x.double(), y.double()
    c = x.shape[1]
    g = gaussian_window(window, sigma)[window // 2].to(x.device)  # the window is separable:
    g = g / g.sum()  # two 1-D passes instead of one 2-D pass (11 + 11 instead of 121 products)
    gv, gh = g.view(1, 1, window, 1).expand(c, 1, window, 1), g.view(1, 1, 1, window).expand(c, 1, 1, window)

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, gv, groups=c), gh, groups=c)

    mu_x, mu_y = filt(x), filt(y)
    sxx = filt(x * x) - mu_x**2
    syy = filt(y * y) - mu_y**2
    sxy = filt(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


def y_metrics(output: torch.Tensor, target: torch.Tensor, border: int, window: int = 11
              ) -> dict[str, torch.Tensor]:
    """PSNR and SSIM on Y per image, for outputs/targets ``(N, C, H, W)`` in [-1, 1] (outputs
    rounded to 8 bits first) with ``border`` pixels dropped on each side."""
    out_y = shave(rgb_to_y(quantize(output.float().cpu())), border)
    tgt_y = shave(rgb_to_y(target.float().cpu()), border)
    return {"psnr": psnr(out_y, tgt_y), "ssim": ssim(out_y, tgt_y, window=window)}


# --- LPIPS (optional, offline only) --------------------------------------------------------------
_ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's AlexNet_Weights.IMAGENET1K_V1


def _lpips_problem() -> str | None:
    try:
        import lpips  # noqa: F401
    except ImportError:
        return "the `lpips` package is not installed (pip install lpips, or mvm-core-sr[lpips])"
    weights = Path(torch.hub.get_dir()) / "checkpoints" / _ALEXNET_FILE
    if not weights.exists():
        return (f"its AlexNet backbone weights are not on disk: expected {weights} (copy"
                f" torchvision's {_ALEXNET_FILE} there, or set TORCH_HOME to a folder holding"
                " checkpoints/ with it)")
    return None


def lpips_available() -> bool:
    """Whether LPIPS can run offline (package installed and AlexNet weights on disk)."""
    return _lpips_problem() is None


def load_lpips() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``lpips(x, y) -> (N,)`` distances for images in [-1, 1] (AlexNet LPIPS v0.1), built only from
    files on disk; raises naming what is missing and how to supply it (it never downloads)."""
    problem = _lpips_problem()
    if problem is not None:
        raise RuntimeError(f"LPIPS is unavailable: {problem}. mvm-core never downloads weights;"
                           " leave 'lpips' out of the metrics to evaluate PSNR/SSIM only.")
    import lpips

    net = lpips.LPIPS(net="alex", pretrained=True, verbose=False).eval()

    @torch.no_grad()
    def distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        return net(x.float(), y.float()).flatten()

    return distance


# --- the SR evaluation of a trainer --------------------------------------------------------------
SR_METRICS = ("psnr", "ssim", "lpips")


def evaluate_sr(predict: Callable[[torch.Tensor], torch.Tensor],
                pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], scale: int,
                metrics: tuple[str, ...] | None = None, window: int = 11,
                border: int | None = None) -> dict[str, float]:
    """Mean PSNR/SSIM on Y (and LPIPS) of ``predict(lr)`` and of bicubic upsampling over
    ``(lr, hr)`` batches, the border crop being ``scale`` unless given.

    Keys name the space: ``psnr@y``, ``ssim@y``, ``lpips@alex`` for the model and
    ``bicubic_psnr@y``... for the baseline. ``metrics=None`` gives PSNR and SSIM, plus LPIPS when
    it is available offline; asking for ``lpips`` without it raises.
    """
    if metrics is None:
        metrics = ("psnr", "ssim") + (("lpips",) if lpips_available() else ())
    unknown = set(metrics) - set(SR_METRICS)
    if unknown:
        raise ValueError(f"SR metrics are {SR_METRICS}; got unknown {sorted(unknown)}.")
    lpips_fn = load_lpips() if "lpips" in metrics else None
    border = scale if border is None else border
    sums: dict[str, float] = {}
    count = 0
    for lr, hr in pairs:
        sr = predict(lr).float().cpu()
        bic = bicubic_resize(lr.float().cpu(), size=tuple(hr.shape[-2:]))
        if sr.shape != hr.shape:
            raise ValueError(f"the generator gave {tuple(sr.shape)} for targets {tuple(hr.shape)}.")
        for prefix, out in (("", sr), ("bicubic_", bic)):
            values = y_metrics(out, hr, border, window)
            parts = {f"{prefix}psnr@y": values["psnr"], f"{prefix}ssim@y": values["ssim"]}
            if lpips_fn is not None:
                parts[f"{prefix}lpips@alex"] = lpips_fn(shave(quantize(out), border), shave(hr.float(), border))
            for key, v in parts.items():
                if key.split("@")[0].removeprefix("bicubic_") in metrics:
                    sums[key] = sums.get(key, 0.0) + float(v.sum())
        count += len(hr)
    if count == 0:
        raise ValueError("evaluate_sr got no (lr, hr) pairs.")
    order = [f"{p}{m}" for p in ("", "bicubic_") for m in ("psnr@y", "ssim@y", "lpips@alex")]
    return {k: sums[k] / count for k in order if k in sums}


__all__ = [
    "SR_METRICS", "evaluate_sr", "gaussian_window", "load_lpips", "lpips_available", "psnr", "ssim",
    "y_metrics",
]
