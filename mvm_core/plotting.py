"""Pictures of a run: sample grids, 2D scatter plots, loss curves (matplotlib, headless)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from .files import own_file


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_image_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 4) -> Path:
    """Save (N, C, H, W) images in [-1, 1] as one PNG grid (1 or 3 channels)."""
    from PIL import Image

    images = images.detach().float().cpu().clamp(-1, 1)
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    pad = 1
    canvas = torch.ones(c, ncol * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(n):
        r, col = divmod(i, nrow)
        canvas[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + col * (w + pad) : pad + col * (w + pad) + w] = (
            images[i] + 1
        ) / 2
    array = (canvas.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    img = Image.fromarray(array[..., 0] if c == 1 else array, mode="L" if c == 1 else "RGB")
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(own_file(path))
    return path


def save_scatter(fake: torch.Tensor, path: str | Path, real: torch.Tensor | None = None,
                 means: torch.Tensor | None = None, extent: float | None = None, title: str = "") -> Path:
    """Scatter generated 2D points (and real points / mode centres) into a PNG."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if real is not None:
        r = real.detach().cpu()
        ax.scatter(r[:, 0], r[:, 1], s=2, c="tab:blue", alpha=0.3, label="real")
    f = fake.detach().float().cpu()
    ax.scatter(f[:, 0], f[:, 1], s=2, c="tab:red", alpha=0.5, label="generated")
    if means is not None:
        ax.scatter(means[:, 0], means[:, 1], s=30, marker="x", c="k", label="modes")
    if extent is not None:
        ax.set_xlim(-extent, extent)
        ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=6, markerscale=3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(own_file(path))
    plt.close(fig)
    return path


def save_loss_curves(history: Sequence[dict], path: str | Path,
                     keys: Sequence[str] = ("matching", "loss_m", "hausdorff")) -> Path:
    """Plot the logged objectives over steps, one panel per key present in the history."""
    plt = _plt()
    keys = [k for k in keys if any(k in row for row in history)]
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(4 * max(1, len(keys)), 3), dpi=100)
    axes = [axes] if len(keys) <= 1 else list(axes)
    for ax, key in zip(axes, keys):
        steps = [row["step"] for row in history if key in row]
        values = [row[key] for row in history if key in row]
        ax.plot(steps, values, lw=1)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
        if values and min(values) > 0 and max(values) / max(min(values), 1e-12) > 100:
            ax.set_yscale("log")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(own_file(path))
    plt.close(fig)
    return path
