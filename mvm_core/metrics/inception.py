"""Inception-v3 features (the ``@inception`` space of FID/KID) from a local weights file only.

The network is torchvision's ``inception_v3`` with its ImageNet weights
(``inception_v3_google-0cc3c7bd.pth``). mvm-core never downloads them; the file is found in this
order, and a missing file fails at construction with the places it looked:

1. the ``weights`` argument of :func:`load_inception`;
2. the ``MVM_CORE_INCEPTION_WEIGHTS`` environment variable;
3. torch's download cache, ``$TORCH_HOME/hub/checkpoints/inception_v3_google-0cc3c7bd.pth`` (filled
   by an earlier ``torchvision.models.inception_v3(weights="IMAGENET1K_V1")`` with network).

``.safetensors`` and ``.pth`` files are accepted; ``.pth`` is read with ``weights_only=True``.

Layers: ``"pool"`` (2048-d global average pool, the FID features) and ``"logits"`` (1000 classes,
for the Inception score). Images in mvm-core's [-1, 1] convention are bilinearly resized to
299 x 299 and fed as [-1, 1] (what torchvision's ``transform_input=True`` produces from its
ImageNet-normalised input); 1-channel images are repeated to 3.

These are torchvision's weights, not the TensorFlow graph of the original FID code: numbers are
consistent across mvm-core runs but differ from published TF-Inception FIDs by a few percent.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..features import FeatureExtractor

SPACE = "inception"
ENV_VAR = "MVM_CORE_INCEPTION_WEIGHTS"
WEIGHTS_NAME = "inception_v3_google-0cc3c7bd.pth"
WEIGHTS_URL = "https://download.pytorch.org/models/" + WEIGHTS_NAME


def _cache_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME


def resolve_inception_weights(weights: str | Path | None = None) -> Path:
    """The Inception weights file (argument, then env var, then torch cache); never downloads."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"Inception weights not found at {path} (the weights argument). Expected"
                f" torchvision's {WEIGHTS_NAME} (or a .safetensors conversion of it); download it"
                f" on a machine with network from {WEIGHTS_URL} and pass its path."
            )
        return path
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"{ENV_VAR}={env} does not point to a file. Set it to a local copy of torchvision's"
                f" {WEIGHTS_NAME} (from {WEIGHTS_URL})."
            )
        return path
    cached = _cache_path()
    if cached.is_file():
        return cached
    raise FileNotFoundError(
        f"no Inception-v3 weights available offline. mvm-core needs torchvision's {WEIGHTS_NAME}"
        f" and never downloads it. Supply it by (1) load_inception(weights='/path/{WEIGHTS_NAME}'),"
        f" (2) the environment variable {ENV_VAR}=/path/{WEIGHTS_NAME}, or (3) placing it at"
        f" {cached}. Get the file from {WEIGHTS_URL} on a machine with network access."
    )


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__}).")
    return state


class InceptionFeatureExtractor(FeatureExtractor):
    """Frozen torchvision Inception-v3 giving ``"pool"`` (N, 2048) and ``"logits"`` (N, 1000)."""

    input_size = 299
    input_channels = 3
    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)  # network input in [-1, 1]
    layers = ("pool", "logits")

    def __init__(self, state_dict: dict[str, torch.Tensor], selected=None):
        super().__init__(selected)
        from torchvision.models.inception import Inception3

        if "fc.weight" not in state_dict:
            raise ValueError(
                "the weights are not an Inception-v3 state dict (no 'fc.weight'); expected"
                f" torchvision's {WEIGHTS_NAME}."
            )
        self.net = Inception3(
            num_classes=state_dict["fc.weight"].shape[0],
            aux_logits=any(k.startswith("AuxLogits.") for k in state_dict),
            transform_input=False,
            init_weights=False,
        )
        self.net.load_state_dict(state_dict)
        self.freeze()

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        for name in (
            "Conv2d_1a_3x3",
            "Conv2d_2a_3x3",
            "Conv2d_2b_3x3",
            "maxpool1",
            "Conv2d_3b_1x1",
            "Conv2d_4a_3x3",
            "maxpool2",
            "Mixed_5b",
            "Mixed_5c",
            "Mixed_5d",
            "Mixed_6a",
            "Mixed_6b",
            "Mixed_6c",
            "Mixed_6d",
            "Mixed_6e",
            "Mixed_7a",
            "Mixed_7b",
            "Mixed_7c",
        ):
            x = getattr(net, name)(x)
        return net.avgpool(x).flatten(1)

    def extract(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pool = self._pool(x)
        out = {"pool": pool}
        if "logits" in self.selected:
            out["logits"] = self.net.fc(pool)
        return {name: out[name] for name in self.selected}

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images in [-1, 1] -> (N, 2048) pool features (the FID features)."""
        return self._pool(self.preprocess(images))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images in [-1, 1] -> (N, num_classes) logits (for the Inception score)."""
        return self.net.fc(self.features(images))


def load_inception(
    weights: str | Path | None = None, device: torch.device | str = "cpu", selected=None
) -> InceptionFeatureExtractor:
    """Inception-v3 feature extractor from a local file (see the module docstring for the order)."""
    path = resolve_inception_weights(weights)
    return InceptionFeatureExtractor(_read_state_dict(path), selected=selected).to(device)


__all__ = [
    "ENV_VAR",
    "SPACE",
    "WEIGHTS_NAME",
    "InceptionFeatureExtractor",
    "load_inception",
    "resolve_inception_weights",
]
