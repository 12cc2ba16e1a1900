"""Build a GFMN term from registry names and real data: what ``gfmn:FeatureMatching`` creates."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import torch
from mvm_core.features import FeatureExtractor

from .cache import tensor_fingerprint
from .loss import GFMNTerm

ExtractorSpec = str | FeatureExtractor


def _create_extractor(spec: ExtractorSpec, kwargs: Mapping[str, object]) -> FeatureExtractor:
    if isinstance(spec, FeatureExtractor):
        if kwargs:
            raise ValueError(
                f"extractor_kwargs given for an extractor instance {type(spec).__name__}; set"
                " them when constructing it."
            )
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            "extractors must be registry names (e.g. 'gfmn:vgg19') or FeatureExtractor"
            f" instances; got {type(spec).__name__}."
        )
    from mvm_core.registry import resolve

    extractor = resolve("feature_extractors", spec, **dict(kwargs))
    if not isinstance(extractor, FeatureExtractor):
        raise TypeError(
            f"feature extractor {spec!r} built a {type(extractor).__name__}, not a"
            " mvm_core.features.FeatureExtractor."
        )
    return extractor


def _tensor_of(data: object) -> torch.Tensor | None:
    if isinstance(data, torch.Tensor):
        return data
    inner = getattr(data, "data", None)  # mvm_core.data.GenerativeDataset keeps its samples here
    if isinstance(data, torch.utils.data.Dataset) and isinstance(inner, torch.Tensor):
        return inner
    return None


def feature_matching(
    data: torch.Tensor | torch.utils.data.Dataset | Iterable | Callable[[], Iterable],
    extractors: ExtractorSpec | Sequence[ExtractorSpec] = ("gfmn:vgg19", "gfmn:resnet18"),
    *,
    extractor_kwargs: Mapping[str, object] | Sequence[Mapping[str, object]] | None = None,
    dataset_key: str | None = None,
    batch_size: int = 128,
    cache_dir: str | os.PathLike[str] | Path | None = None,
    device: torch.device | str | None = None,
    **options,
) -> GFMNTerm:
    """A :class:`GFMNTerm` over ``extractors`` with real statistics of ``data`` (cached).

    Args:
        data: the real images (N, C, H, W) in [-1, 1] as a tensor, a dataset (an
            ``mvm_core.data.GenerativeDataset`` or any map-style dataset of ``(image, ...)``), an
            iterable of batches, or a function returning a fresh iterable of batches.
        extractors: registry names (``"gfmn:vgg19"``, ``"gfmn:digits-classifier"``,
            ``"timm:..."``) or extractor instances; default VGG19 + ResNet18 as in GFMN.
        extractor_kwargs: keyword arguments for the named extractors (one mapping for all, or
            one per extractor), e.g. ``{"weights": "/models/vgg19-dcbb9e9d.pth"}``.
        dataset_key: identity of ``data`` for the statistics cache; a tensor (or a dataset
            holding one) gets its content hash by default. Other data without a key is not
            cached.
        batch_size: batch size of the pass over the real data.
        cache_dir, device: see :func:`mvm_core_gfmn.cache.cached_real_statistics`.
        **options: :class:`GFMNTerm` options (``estimator``, ``estimator_options``,
            ``extractor_weights``, ``match_variance``, ``reduction``, ``names``).
    """
    specs = [extractors] if isinstance(extractors, (str, FeatureExtractor)) else list(extractors)
    if extractor_kwargs is None or isinstance(extractor_kwargs, Mapping):
        per_extractor = [dict(extractor_kwargs or {})] * len(specs)
    else:
        per_extractor = [dict(k) for k in extractor_kwargs]
        if len(per_extractor) != len(specs):
            raise ValueError(
                f"extractor_kwargs has {len(per_extractor)} entries for {len(specs)} extractors;"
                " give one mapping per extractor, or a single mapping for all."
            )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
    built = [_create_extractor(s, k) for s, k in zip(specs, per_extractor)]

    tensor = _tensor_of(data)
    if tensor is not None:
        if tensor.ndim != 4:
            raise ValueError(
                f"data must hold images (N, C, H, W) in [-1, 1]; got shape {tuple(tensor.shape)}."
            )
        dataset_key = dataset_key or f"tensor:{tensor_fingerprint(tensor)}"

        def batches() -> Iterable[torch.Tensor]:
            return tensor.split(batch_size)
    elif isinstance(data, torch.utils.data.Dataset):
        def batches() -> Iterable:
            return torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    else:
        batches = data  # an iterable or a callable: GFMNTerm.from_data checks re-iterability
    return GFMNTerm.from_data(
        built, batches, dataset_key=dataset_key, cache_dir=cache_dir, device=device, **options
    )
