"""VGG19 and ResNet18 feature extractors from torchvision, frozen, with ImageNet weights on disk.

GFMN (dos Santos et al., ICCV 2019) matches the statistics of *many* layers of ImageNet
classifiers: every ReLU output of VGG19 and the residual blocks of ResNet18. Both extractors here
provide those layers by name, run the network only as deep as the deepest layer asked for, and
never download weights unless told to (see :mod:`mvm_core_gfmn.weights` for the lookup order).

Inputs follow mvm-core's convention (float (N, C, H, W) in [-1, 1]); the base class maps them to
[0, 1], repeats gray images to 3 channels, resizes to ``input_size`` and applies the ImageNet
normalization the torchvision weights were trained with.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torchvision
from mvm_core.features import FeatureExtractor

from .weights import WeightsSpec, load_state_dict_file, resolve_weights, verify_hash_prefix

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's IMAGENET1K_V1 files (torchvision.models.VGG19_Weights / ResNet18_Weights).
VGG19_IMAGENET = WeightsSpec(
    "vgg19-dcbb9e9d.pth",
    "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    "torchvision VGG19_Weights.IMAGENET1K_V1",
)
RESNET18_IMAGENET = WeightsSpec(
    "resnet18-f37072fd.pth",
    "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "torchvision ResNet18_Weights.IMAGENET1K_V1",
)

WeightsArg = str | os.PathLike[str] | None


def _check_input_size(owner: str, input_size: int | None) -> int | None:
    if input_size is not None and (not isinstance(input_size, int) or input_size < 32):
        raise ValueError(
            f"{owner}: input_size must be an int >= 32 (the network downsamples by 32) or None to"
            f" keep the images' own size; got {input_size!r}."
        )
    return input_size


def _read_pretrained(
    owner: str, spec: WeightsSpec, weights: WeightsArg, allow_download: bool, check_hash: bool
) -> tuple[dict[str, torch.Tensor] | None, str]:
    """The state dict ``weights`` designates (None for random init) and a description of it."""
    if weights is None:
        return None, "random-init"
    explicit = None if weights == "imagenet" else weights
    path = resolve_weights(spec, explicit, allow_download=allow_download, owner=owner)
    if check_hash:
        verify_hash_prefix(path, spec)
    return load_state_dict_file(path), str(path)


def _load_strict(
    owner: str, module: torch.nn.Module, state: dict[str, torch.Tensor], source: str,
    spec: WeightsSpec,
) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(
            f"{owner}: {source!r} is not a state dict of this architecture (expected"
            f" {spec.description}, file {spec.file_name!r}): {error}"
        ) from error


# VGG19 ("configuration E" of Simonyan & Zisserman): conv widths, "M" = 2x2 max pool. torchvision's
# ``vgg19().features`` lays out Conv2d, ReLU pairs and MaxPool2d in this order, so the module
# indices, hence the state-dict keys ``features.<index>.weight``, follow from it.
_VGG19_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")  # fmt: skip


def _vgg19_relu_indices() -> dict[int, str]:
    """Index of each ReLU in ``vgg19().features`` -> ``relu<block>_<conv>``."""
    names, index, block, conv = {}, 0, 1, 0
    for width in _VGG19_CONFIG:
        if width == "M":
            index, block, conv = index + 1, block + 1, 0
        else:
            conv += 1
            names[index + 1] = f"relu{block}_{conv}"
            index += 2
    return names


_VGG19_RELUS = _vgg19_relu_indices()
_VGG19_DEPTH = sum(1 if width == "M" else 2 for width in _VGG19_CONFIG)  # 37 modules


def _vgg19_features(depth: int) -> torch.nn.Sequential:
    """The first ``depth`` modules of torchvision's ``vgg19().features``, with its initialization.

    Built directly (not through ``torchvision.models.vgg19``) so that no 120M-parameter classifier
    is allocated and initialized only to be thrown away.
    """
    modules: list[torch.nn.Module] = []
    channels = 3
    for width in _VGG19_CONFIG:
        if width == "M":
            modules.append(torch.nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        conv = torch.nn.Conv2d(channels, int(width), kernel_size=3, padding=1)
        torch.nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        torch.nn.init.zeros_(conv.bias)
        # not in place: a tapped ReLU output must not be overwritten by a later module
        modules += [conv, torch.nn.ReLU(inplace=False)]
        channels = int(width)
    return torch.nn.Sequential(*modules[:depth])


def _check_vgg19_features(owner: str, state: dict[str, torch.Tensor], source: str) -> None:
    """Keys and shapes of a full VGG19 feature stack (catches VGG16/VGG19-BN files early)."""
    expected, index, channels = {}, 0, 3
    for width in _VGG19_CONFIG:
        if width == "M":
            index += 1
            continue
        expected[f"{index}.weight"] = (int(width), channels, 3, 3)
        expected[f"{index}.bias"] = (int(width),)
        index, channels = index + 2, int(width)
    got = {key: tuple(value.shape) for key, value in state.items()}
    if got != expected:
        missing = sorted(set(expected) - set(got))[:4]
        unexpected = sorted(set(got) - set(expected))[:4]
        wrong = [k for k in expected if k in got and got[k] != expected[k]][:4]
        raise ValueError(
            f"{owner}: {source!r} is not a torchvision VGG19 state dict (features.* keys: missing"
            f" {missing}, unexpected {unexpected}, wrong shape {wrong}). Use"
            f" {VGG19_IMAGENET.file_name!r} ({VGG19_IMAGENET.description})."
        )


class VGG19Features(FeatureExtractor):
    """VGG19's 16 convolutional ReLU outputs (``relu1_1`` ... ``relu5_4``), frozen.

    Args:
        layers: subset of :attr:`layers` to return (default: all 16, as in GFMN).
        weights: ``"imagenet"`` (torchvision IMAGENET1K_V1, found by the lookup order of
            :mod:`mvm_core_gfmn.weights`), a path to a state-dict file or a folder holding
            ``vgg19-dcbb9e9d.pth``, or ``None`` for random initialization.
        allow_download: permit downloading the ImageNet file when no local copy exists.
        input_size: side images are resized to (224: the weights' training resolution; any
            value >= 32, or None to keep the images' size).
        check_hash: verify the file's SHA-256 prefix (reads the whole file once).
    """

    layers = tuple(_VGG19_RELUS.values())
    input_channels = 3
    mean = IMAGENET_MEAN
    std = IMAGENET_STD
    weights_spec = VGG19_IMAGENET

    def __init__(
        self,
        layers: Sequence[str] | None = None,
        *,
        weights: WeightsArg = "imagenet",
        allow_download: bool = False,
        input_size: int | None = 224,
        check_hash: bool = False,
    ):
        super().__init__(layers)
        self.input_size = _check_input_size(type(self).__name__, input_size)
        state, self.weights_source = _read_pretrained(
            type(self).__name__, self.weights_spec, weights, allow_download, check_hash
        )
        index_of = {name: index for index, name in _VGG19_RELUS.items()}
        self._taps = {index_of[name]: name for name in self.selected}
        self.body = _vgg19_features(max(self._taps, default=-1) + 1)
        if state is not None:
            # The whole feature stack of the file must be VGG19's (a VGG16 file fails here), and
            # the part this extractor runs is loaded from it.
            full = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
            _check_vgg19_features(type(self).__name__, full, self.weights_source)
            kept = {k: v for k, v in full.items() if int(k.split(".")[0]) < len(self.body)}
            _load_strict(type(self).__name__, self.body, kept, self.weights_source,
                         self.weights_spec)
        self.freeze()

    def extract(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for index, module in enumerate(self.body):
            x = module(x)
            if index in self._taps:
                out[self._taps[index]] = x
        return {name: out[name] for name in self.selected}


_RESNET18_BLOCKS = tuple(f"layer{stage}.{block}" for stage in range(1, 5) for block in range(2))


class ResNet18Features(FeatureExtractor):
    """ResNet18's 8 residual-block outputs (``layer1.0`` ... ``layer4.1``), frozen.

    Arguments as for :class:`VGG19Features`; the file is ``resnet18-f37072fd.pth``. Batch norm
    runs on its stored ImageNet statistics (extractors are always in eval mode).
    """

    layers = _RESNET18_BLOCKS
    input_channels = 3
    mean = IMAGENET_MEAN
    std = IMAGENET_STD
    weights_spec = RESNET18_IMAGENET

    def __init__(
        self,
        layers: Sequence[str] | None = None,
        *,
        weights: WeightsArg = "imagenet",
        allow_download: bool = False,
        input_size: int | None = 224,
        check_hash: bool = False,
    ):
        super().__init__(layers)
        self.input_size = _check_input_size(type(self).__name__, input_size)
        state, self.weights_source = _read_pretrained(
            type(self).__name__, self.weights_spec, weights, allow_download, check_hash
        )
        model = torchvision.models.resnet18(weights=None)
        if state is not None:
            _load_strict(type(self).__name__, model, state, self.weights_source, self.weights_spec)
        self.stem = torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
        deepest = max((self.layers.index(name) for name in self.selected), default=-1)
        self.blocks = torch.nn.ModuleList(
            getattr(model, name.split(".")[0])[int(name.split(".")[1])]
            for name in self.layers[: deepest + 1]
        )
        self.freeze()

    def extract(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        x = self.stem(x)
        for name, block in zip(self.layers, self.blocks):
            x = block(x)
            out[name] = x
        return {name: out[name] for name in self.selected}
