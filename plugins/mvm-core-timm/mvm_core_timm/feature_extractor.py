"""Any timm model as a frozen feature extractor (``features_only``), for GFMN and evaluation."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import timm
import torch
from mvm_core.features import FeatureExtractor

from .weights import pretrained_kwargs


class TimmFeatureExtractor(FeatureExtractor):
    """A timm model's intermediate feature maps, frozen: ``images -> {layer: (N, C_l, H_l, W_l)}``.

    Layers are named after timm's ``feature_info`` modules (``"layer1"``...``"layer4"`` for
    ResNets, ``"stages.0"``... for ConvNeXts), shallow to deep. Pretrained by default, since
    frozen random features are rarely what a feature extractor is for; pass ``pretrained=False``
    for random init (tests). With pretrained weights, images are resized to the weights' input
    size and normalized with their mean/std.

    Args:
        model_name: a timm model name.
        layers: the layers to return (default: all of them).
        pretrained, pretrained_file, allow_download: see :mod:`mvm_core_timm.weights`.
        input_size: side to resize to (default: the pretrained input size; none without weights).
        **timm_kwargs: passed to ``timm.create_model`` (``out_indices``, ``in_chans``, ...).
    """

    def __init__(
        self,
        model_name: str,
        layers: Sequence[str] | None = None,
        *,
        pretrained: bool = True,
        pretrained_file: str | os.PathLike | None = None,
        allow_download: bool | None = None,
        input_size: int | None = None,
        **timm_kwargs: Any,
    ):
        super().__init__()
        weights = pretrained_kwargs(model_name, pretrained=pretrained,
                                    pretrained_file=pretrained_file, allow_download=allow_download)
        self.model_name = model_name
        self.model = timm.create_model(model_name, features_only=True, **weights, **timm_kwargs)
        self.pretrained = bool(weights["pretrained"])
        cfg = getattr(self.model, "pretrained_cfg", {}) or {}
        self.input_channels = int(timm_kwargs.get("in_chans", 3))
        self.layers = tuple(self.model.feature_info.module_name())
        if self.pretrained:
            self.mean = tuple(cfg.get("mean", self.mean))
            self.std = tuple(cfg.get("std", self.std))
            self.input_size = input_size or int(cfg.get("input_size", (3, 224, 224))[-1])
        else:  # random init: [-1, 1] images as they are
            self.mean, self.std = (0.5,) * self.input_channels, (0.5,) * self.input_channels
            self.input_size = input_size
        if len(self.mean) != self.input_channels:
            self.mean = (sum(self.mean) / len(self.mean),) * self.input_channels
            self.std = (sum(self.std) / len(self.std),) * self.input_channels
        self.selected = self._check_layers(layers)
        self.channels = dict(zip(self.layers, self.model.feature_info.channels()))
        self.freeze()

    def extra_repr(self) -> str:
        return f"model_name={self.model_name!r}, layers={list(self.selected)}, pretrained={self.pretrained}"

    def extract(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = self.model(x)
        return {name: out for name, out in zip(self.layers, outputs) if name in self.selected}
