"""The project's digits classifier as a GFMN extractor: offline "pretrained" features for digits.

mvm-core ships a small CNN trained on scikit-learn's digits (:mod:`mvm_core.metrics.digits_classifier`,
weights inside the package). GFMN matches many layers of a pretrained classifier, so this wrapper
exposes all its hidden layers, not only the 64-d penultimate one used for FID:

``relu1`` (16 x 8 x 8), ``relu2`` (32 x 8 x 8), ``relu3`` (64 x 4 x 4): the ReLU outputs of its
three convolutions; ``features`` (64): its penultimate layer (the ``@digits-classifier`` space).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from mvm_core.features import FeatureExtractor


class DigitsClassifierFeatures(FeatureExtractor):
    """Hidden layers of mvm-core's digits classifier, frozen.

    Args:
        layers: subset of ``("relu1", "relu2", "relu3", "features")`` (default: all four).
        net: a ``mvm_core.metrics.digits_classifier.DigitsNet`` to wrap (default: the shipped,
            trained one, loaded with ``load_digits_classifier(weights)``).
        weights: a classifier ``.safetensors`` file of your own (default: the shipped file).

    Inputs: digits (N, 1, H, W) in [-1, 1] with H = W a multiple of 8 (pooled to 8 x 8 inside,
    as the classifier does).
    """

    layers = ("relu1", "relu2", "relu3", "features")
    input_size = None
    input_channels = 1
    mean = (0.5,)
    std = (0.5,)  # [-1, 1] -> [0, 1] -> back to [-1, 1], the classifier's training range

    def __init__(
        self,
        layers: Sequence[str] | None = None,
        *,
        net: torch.nn.Module | None = None,
        weights: str | Path | None = None,
    ):
        super().__init__(layers)
        from mvm_core.metrics.digits_classifier import DigitsNet, load_digits_classifier

        if net is None:
            net = load_digits_classifier(weights).net
        elif weights is not None:
            raise ValueError("pass either net or weights to DigitsClassifierFeatures, not both.")
        if not isinstance(net, DigitsNet):
            raise TypeError(f"net must be a DigitsNet; got {type(net).__name__}.")
        self.net = net
        self.freeze()

    def extract(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        # The classifier's own forward (DigitsNet.features), with its intermediate ReLUs kept.
        from mvm_core.metrics.digits_classifier import NATIVE_SIZE, DigitsNet

        DigitsNet.check_images(x)
        net, out = self.net, {}
        deepest = max(self.layers.index(name) for name in self.selected)
        x = F.adaptive_avg_pool2d(x, NATIVE_SIZE)
        out["relu1"] = x = F.relu(net.conv1(x))
        if deepest >= 1:
            out["relu2"] = x = F.relu(net.conv2(x))
            x = F.max_pool2d(x, 2)
        if deepest >= 2:
            out["relu3"] = x = F.relu(net.conv3(x))
            x = F.max_pool2d(x, 2)
        if deepest >= 3:
            out["features"] = F.relu(net.fc(x.flatten(1)))
        return {name: out[name] for name in self.selected}
