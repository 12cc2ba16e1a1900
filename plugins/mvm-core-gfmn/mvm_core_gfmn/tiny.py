"""A tiny convolutional extractor with seeded random weights, for tests and quick experiments.

It has the shape of the real extractors (named ReLU outputs, frozen, declared preprocessing) and
runs on any image size, so plugin code can be tested in milliseconds without weight files.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mvm_core.features import FeatureExtractor


class TinyConvFeatures(FeatureExtractor):
    """``conv1`` ... ``conv<k>``: ReLU outputs of 3x3 convolutions (stride 2 after the first).

    Args:
        layers: subset of the layer names to return (default: all).
        in_channels: channels of the images (1 for digits/MNIST, 3 for color).
        widths: output channels of each convolution, one layer per entry.
        seed: seed of the random weights (same seed, same extractor, same cache key).
    """

    def __init__(
        self,
        layers: Sequence[str] | None = None,
        *,
        in_channels: int = 1,
        widths: Sequence[int] = (8, 16),
        seed: int = 0,
    ):
        if in_channels < 1 or not widths or any(int(w) < 1 for w in widths):
            raise ValueError(
                f"TinyConvFeatures needs in_channels >= 1 and positive widths; got"
                f" in_channels={in_channels}, widths={tuple(widths)}."
            )
        self.layers = tuple(f"conv{i + 1}" for i in range(len(widths)))
        super().__init__(layers)
        self.input_size = None
        self.input_channels = in_channels
        # identity normalization on [-1, 1]: preprocess maps to [0, 1], (x - 0.5) / 0.5 maps back
        self.mean = (0.5,) * in_channels
        self.std = (0.5,) * in_channels
        generator = torch.Generator().manual_seed(seed)
        convs, channels = [], in_channels
        for index, width in enumerate(widths):
            conv = torch.nn.Conv2d(channels, int(width), 3, stride=1 if index == 0 else 2,
                                   padding=1)
            bound = (6.0 / (channels * 9)) ** 0.5  # He-uniform for ReLU
            with torch.no_grad():
                conv.weight.uniform_(-bound, bound, generator=generator)
                conv.bias.uniform_(-0.1, 0.1, generator=generator)
            convs.append(conv)
            channels = int(width)
        self.convs = torch.nn.ModuleList(convs)
        self.freeze()

    def extract(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        deepest = max((self.layers.index(name) for name in self.selected), default=-1)
        for name, conv in zip(self.layers[: deepest + 1], self.convs):
            x = torch.relu(conv(x))
            out[name] = x
        return {name: out[name] for name in self.selected}
