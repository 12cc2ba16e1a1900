"""mvm-core-gfmn: Generative Feature Matching Networks (dos Santos et al., ICCV 2019) for mvm-core.

Frozen pretrained feature extractors (VGG19 ReLU outputs, ResNet18 blocks, the project's digits
classifier, a tiny test net), real-data feature statistics streamed in float64 and cached on disk,
and the GFMN feature-matching generator term with minibatch, moving-average (MA) and ADAM
moving-average (AMA) estimators. Registered under the ``gfmn:`` prefix:

* feature extractors ``gfmn:vgg19``, ``gfmn:resnet18``, ``gfmn:digits-classifier``, ``gfmn:tiny``;
* regularizer (generator term) ``gfmn:FeatureMatching``.

The public names below are imported lazily, so loading the plugin (``import mvm_core_gfmn``) does
not import torchvision until an extractor is built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mvm_core.hookspecs import hookimpl

__version__ = "0.1.0"

_EXPORTS = {
    "AdamMovingAverage": "estimators",
    "DifferenceEstimator": "estimators",
    "Minibatch": "estimators",
    "MovingAverage": "estimators",
    "make_estimator": "estimators",
    "FeatureStatistics": "statistics",
    "RunningMoments": "statistics",
    "compute_real_statistics": "statistics",
    "statistics_distance": "statistics",
    "cached_real_statistics": "cache",
    "default_cache_dir": "cache",
    "load_statistics": "cache",
    "save_statistics": "cache",
    "statistics_key": "cache",
    "tensor_fingerprint": "cache",
    "GFMNTerm": "loss",
    "feature_matching": "build",
    "VGG19Features": "torchvision_extractors",
    "ResNet18Features": "torchvision_extractors",
    "TinyConvFeatures": "tiny",
    "DigitsClassifierFeatures": "digits",
    "WeightsNotFoundError": "weights",
    "WeightsSpec": "weights",
    "resolve_weights": "weights",
}

__all__ = [
    "AdamMovingAverage",
    "DifferenceEstimator",
    "DigitsClassifierFeatures",
    "FeatureStatistics",
    "GFMNTerm",
    "Minibatch",
    "MovingAverage",
    "ResNet18Features",
    "RunningMoments",
    "TinyConvFeatures",
    "VGG19Features",
    "WeightsNotFoundError",
    "WeightsSpec",
    "__version__",
    "cached_real_statistics",
    "compute_real_statistics",
    "default_cache_dir",
    "feature_matching",
    "load_statistics",
    "make_estimator",
    "resolve_weights",
    "save_statistics",
    "statistics_distance",
    "statistics_key",
    "tensor_fingerprint",
]

if TYPE_CHECKING:
    from .build import feature_matching
    from .cache import (
        cached_real_statistics,
        default_cache_dir,
        load_statistics,
        save_statistics,
        statistics_key,
        tensor_fingerprint,
    )
    from .digits import DigitsClassifierFeatures
    from .estimators import (
        AdamMovingAverage,
        DifferenceEstimator,
        Minibatch,
        MovingAverage,
        make_estimator,
    )
    from .loss import GFMNTerm
    from .statistics import (
        FeatureStatistics,
        RunningMoments,
        compute_real_statistics,
        statistics_distance,
    )
    from .tiny import TinyConvFeatures
    from .torchvision_extractors import ResNet18Features, VGG19Features
    from .weights import WeightsNotFoundError, WeightsSpec, resolve_weights


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


# ------------------------------------------------------------------------------ registrations
# Thin factories so that registering does not import torchvision; each builds the class above.


def _vgg19(**kwargs: Any):
    """VGG19 ReLU outputs relu1_1..relu5_4; ImageNet weights from local files (GFMN)."""
    return __getattr__("VGG19Features")(**kwargs)


def _resnet18(**kwargs: Any):
    """ResNet18 block outputs layer1.0..layer4.1; ImageNet weights from local files (GFMN)."""
    return __getattr__("ResNet18Features")(**kwargs)


def _digits_classifier(**kwargs: Any):
    """Hidden layers of mvm-core's shipped digits classifier (offline, for digits)."""
    return __getattr__("DigitsClassifierFeatures")(**kwargs)


def _tiny(**kwargs: Any):
    """Tiny seeded random conv extractor for tests and quick experiments."""
    return __getattr__("TinyConvFeatures")(**kwargs)


def _feature_matching(**kwargs: Any):
    """GFMN feature matching (mean + variance, AMA) over frozen extractors; needs data=."""
    return __getattr__("feature_matching")(**kwargs)


@hookimpl
def mvm_register_feature_extractors(register) -> None:
    register("gfmn:vgg19", _vgg19)
    register("gfmn:resnet18", _resnet18)
    register("gfmn:digits-classifier", _digits_classifier)
    register("gfmn:tiny", _tiny)


@hookimpl
def mvm_register_regularizers(register) -> None:
    register("gfmn:FeatureMatching", _feature_matching)
