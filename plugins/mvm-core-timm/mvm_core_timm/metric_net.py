"""Any timm model as an MvM metric network: timm backbone (pooled features) + linear embedding head."""

from __future__ import annotations

import os
from typing import Any

import timm
import torch
from torch import nn

from .weights import pretrained_kwargs


class TimmMetricNet(nn.Module):
    """``images (N, C, H, W) in [-1, 1] -> embeddings (N, emb_dim)`` with a timm backbone.

    The backbone is ``timm.create_model(model_name, num_classes=0)`` (its pooled features, of size
    ``num_features``), followed by a linear head to ``emb_dim`` (10 in the MvM reference at
    64 px). From scratch (the MvM setting) the images go in as they are; with pretrained weights
    they are mapped to the normalization the weights were trained with.

    Args:
        model_name: a timm model name (``"resnet18"``, ``"test_resnet"``, tags allowed).
        emb_dim: size of the embedding.
        pretrained: load pretrained weights (offline only; see :mod:`mvm_core_timm.weights`).
        pretrained_file: a local weights file (implies ``pretrained``).
        allow_download: let timm download missing weights (default: ``MVM_CORE_ALLOW_DOWNLOADS``).
        in_chans: image channels (timm adapts pretrained first convolutions).
        **timm_kwargs: passed to ``timm.create_model`` (``img_size`` for ViTs, ``drop_rate``, ...).
    """

    def __init__(
        self,
        model_name: str,
        emb_dim: int = 10,
        *,
        pretrained: bool = False,
        pretrained_file: str | os.PathLike | None = None,
        allow_download: bool | None = None,
        in_chans: int = 3,
        **timm_kwargs: Any,
    ):
        super().__init__()
        if not isinstance(emb_dim, int) or emb_dim < 1:
            raise ValueError(f"emb_dim must be a positive int; got {emb_dim!r}.")
        for reserved in ("num_classes", "features_only", "pretrained_cfg_overlay"):
            if reserved in timm_kwargs:
                raise TypeError(
                    f"{reserved} is set by TimmMetricNet (the head is its own linear layer);"
                    " remove it from the arguments."
                )
        weights = pretrained_kwargs(model_name, pretrained=pretrained,
                                    pretrained_file=pretrained_file, allow_download=allow_download)
        self.model_name = model_name
        self.in_chans = in_chans
        self.emb_dim = emb_dim
        self.body = timm.create_model(model_name, num_classes=0, in_chans=in_chans, **weights,
                                      **timm_kwargs)
        self.head = nn.Linear(self.body.num_features, emb_dim)
        self.pretrained = bool(weights["pretrained"])
        cfg = getattr(self.body, "pretrained_cfg", {}) or {}
        mean = cfg.get("mean", (0.5,) * 3) if self.pretrained else (0.5,) * 3
        std = cfg.get("std", (0.5,) * 3) if self.pretrained else (0.5,) * 3
        # [-1, 1] -> [0, 1] -> (x - mean) / std; the identity without pretrained weights
        self.register_buffer("_mean", _per_channel(mean, in_chans), persistent=False)
        self.register_buffer("_std", _per_channel(std, in_chans), persistent=False)

    def extra_repr(self) -> str:
        return f"model_name={self.model_name!r}, emb_dim={self.emb_dim}, pretrained={self.pretrained}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != self.in_chans:
            raise ValueError(
                f"images must have shape (N, {self.in_chans}, H, W) in [-1, 1]; got"
                f" {tuple(images.shape)}. Set in_chans to the number of channels of your data."
            )
        x = ((images + 1) / 2 - self._mean) / self._std
        return self.head(self.body(x))


def _per_channel(values: tuple[float, ...], channels: int) -> torch.Tensor:
    values = tuple(values)
    if len(values) != channels:  # e.g. grey images with RGB statistics: use their mean
        values = (sum(values) / len(values),) * channels
    return torch.tensor(values, dtype=torch.float32).view(1, channels, 1, 1)
