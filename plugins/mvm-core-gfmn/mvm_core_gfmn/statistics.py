"""Per-layer feature statistics: mean and diagonal variance, streamed over a whole dataset.

GFMN's targets are the mean and the per-feature variance of every matched layer over the *entire*
real dataset (a layer's activation ``(C, H, W)`` is one vector of ``C * H * W`` features, as in
the authors' code). They are accumulated batch by batch in float64 with the pairwise merge of Chan,
Golub & LeVeque (1979): each batch contributes its own mean and centred sum of squares, so no
``sum(x^2) - n * mean^2`` cancellation occurs however large the dataset or the feature offsets.
Variances are unbiased (divide by ``n - 1``), like the minibatch variances of generated features
they are compared with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from mvm_core.features import FeatureExtractor


@dataclass
class FeatureStatistics:
    """Mean and unbiased variance of each layer's flattened features over ``count`` samples.

    ``mean[layer]`` and ``var[layer]`` are 1-D float64 tensors of the layer's feature count.
    """

    mean: dict[str, torch.Tensor]
    var: dict[str, torch.Tensor]
    count: int

    def __post_init__(self) -> None:
        if set(self.mean) != set(self.var):
            raise ValueError(
                f"mean and var must cover the same layers; got {sorted(self.mean)} and"
                f" {sorted(self.var)}."
            )
        for layer in self.mean:
            if self.mean[layer].ndim != 1 or self.mean[layer].shape != self.var[layer].shape:
                raise ValueError(
                    f"layer {layer!r}: mean and var must be 1-D of equal length; got shapes"
                    f" {tuple(self.mean[layer].shape)} and {tuple(self.var[layer].shape)}."
                )

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(self.mean)

    def to(self, device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> FeatureStatistics:
        """A copy on ``device`` / in ``dtype``."""
        return FeatureStatistics(
            {k: v.to(device=device, dtype=dtype) for k, v in self.mean.items()},
            {k: v.to(device=device, dtype=dtype) for k, v in self.var.items()},
            self.count,
        )


class RunningMoments:
    """Streaming mean and centred sum of squares of (N, D) rows in float64 (Chan et al. merge).

    Args:
        max_elements: rows are merged in chunks of at most this many elements, which bounds the
            float64 temporaries (VGG19's ``relu1_1`` at 224 px has 3.2M features per image).
    """

    def __init__(self, max_elements: int = 1 << 24) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None
        self.max_elements = int(max_elements)

    def update(self, rows: torch.Tensor) -> None:
        """Merge a batch of rows (N, D) into the running moments."""
        if rows.ndim != 2 or rows.shape[0] == 0:
            raise ValueError(f"rows must have shape (N, D) with N >= 1; got {tuple(rows.shape)}.")
        chunk = max(1, self.max_elements // max(1, rows.shape[1]))
        for part in rows.detach().split(chunk):
            self._merge(part)

    def _merge(self, rows: torch.Tensor) -> None:
        x = rows.to(torch.float64)
        n_b = x.shape[0]
        mean_b = x.mean(0)
        m2_b = (x - mean_b).square().sum(0)
        if self.mean is None:
            self.count, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        if mean_b.shape != self.mean.shape:
            raise ValueError(
                f"rows have {mean_b.shape[0]} features but earlier batches had"
                f" {self.mean.shape[0]}; every batch must give the same feature size (same image"
                " size and channels)."
            )
        n_a, n = self.count, self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta.square() * (n_a * n_b / n)
        self.count = n

    def variance(self, unbiased: bool = True) -> torch.Tensor:
        if self.m2 is None or self.count < (2 if unbiased else 1):
            raise ValueError(
                f"an unbiased variance needs at least 2 samples; got {self.count}."
            )
        return self.m2 / (self.count - (1 if unbiased else 0))


def _images_of(batch: object, index: int) -> torch.Tensor:
    """A batch is a tensor of images or a (images, labels, ...) tuple/list as DataLoaders give."""
    if isinstance(batch, (tuple, list)) and batch:
        batch = batch[0]
    if not isinstance(batch, torch.Tensor) or batch.ndim != 4:
        shape = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
        raise ValueError(
            f"batch {index} must be images (N, C, H, W) in [-1, 1], or a tuple whose first item"
            f" is; got {shape}."
        )
    return batch


def _device_of(module: torch.nn.Module) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def compute_real_statistics(
    extractor: FeatureExtractor,
    batches: Iterable[torch.Tensor | tuple | list],
    *,
    device: torch.device | str | None = None,
) -> FeatureStatistics:
    """Mean and variance of ``extractor``'s selected layers over all images in ``batches``.

    Args:
        extractor: a frozen :class:`~mvm_core.features.FeatureExtractor`.
        batches: iterable of image batches (N, C, H, W) in [-1, 1] (or (images, ...) tuples);
            batch sizes may differ. Consumed once.
        device: where to run the extractor (default: the extractor's device).

    Returns:
        float64 :class:`FeatureStatistics` on the CPU.
    """
    if not isinstance(extractor, FeatureExtractor):
        raise TypeError(
            "extractor must be a mvm_core.features.FeatureExtractor; got"
            f" {type(extractor).__name__}."
        )
    device = torch.device(device) if device is not None else _device_of(extractor)
    moments: dict[str, RunningMoments] = {}
    for index, batch in enumerate(batches):
        images = _images_of(batch, index).to(device)
        features = extractor(images)
        for layer, activation in features.items():
            moments.setdefault(layer, RunningMoments()).update(activation.flatten(1))
    if not moments:
        raise ValueError("batches is empty: pass at least one batch of real images.")
    count = next(iter(moments.values())).count
    if count < 2:
        raise ValueError(f"real statistics need at least 2 images; got {count}.")
    return FeatureStatistics(
        {layer: m.mean.cpu() for layer, m in moments.items()},
        {layer: m.variance().cpu() for layer, m in moments.items()},
        count,
    )


def statistics_distance(
    real: FeatureStatistics,
    fake: FeatureStatistics | Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    match_variance: bool = True,
) -> dict[str, float]:
    """GFMN's matching loss between two sets of statistics, per layer (float64).

    ``||mu_real - mu_fake||^2 + ||var_real - var_fake||^2`` for every layer of ``real``; the sum
    over layers is the quantity GFMN minimizes with exact (full-data) statistics.
    """
    if isinstance(fake, FeatureStatistics):
        fake = {layer: (fake.mean[layer], fake.var[layer]) for layer in fake.layers}
    missing = [layer for layer in real.layers if layer not in fake]
    if missing:
        raise ValueError(f"fake statistics lack layer(s) {missing}; they have {sorted(fake)}.")
    out = {}
    for layer in real.layers:
        mean, var = (t.to(torch.float64).cpu() for t in fake[layer])
        value = (real.mean[layer].double().cpu() - mean).square().sum()
        if match_variance:
            value = value + (real.var[layer].double().cpu() - var).square().sum()
        out[layer] = float(value)
    return out
