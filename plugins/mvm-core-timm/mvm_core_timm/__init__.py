"""mvm-core plugin: any timm model as a metric network or a feature extractor, under ``timm:``.

* backbones: ``create_backbone("timm:resnet18", emb_dim=10)`` -> :class:`TimmMetricNet`;
* feature extractors: ``create_feature_extractor("timm:resnet18", layers=["layer3"])`` ->
  :class:`TimmFeatureExtractor` (pretrained by default, from a local file).

Every name of ``timm.list_models()`` is available (``timm:`` claims the whole namespace), with
wildcards: ``list_backbones("timm:test_*")``. Pretrained weights come only from local files unless
downloads are allowed (see :mod:`mvm_core_timm.weights`). timm itself is imported on first use,
not when mvm-core loads this plugin.
"""

from __future__ import annotations

from typing import Any

from mvm_core import hookimpl
from mvm_core.registry import Register

__version__ = "0.1.0"
PREFIX = "timm"


def _list_models() -> list[str]:
    import timm

    return timm.list_models()


def _is_model(name: str) -> bool:
    """An architecture timm knows, with a valid pretrained tag when one is given."""
    import timm

    arch, _, tag = name.partition(".")
    if not timm.is_model(arch):
        return False
    return not tag or name in timm.list_pretrained(name)


def _metric_net(model_name: str, **kwargs: Any):
    from .metric_net import TimmMetricNet

    return TimmMetricNet(model_name, **kwargs)


def _feature_extractor(model_name: str, **kwargs: Any):
    from .feature_extractor import TimmFeatureExtractor

    return TimmFeatureExtractor(model_name, **kwargs)


@hookimpl
def mvm_register_backbones(register: Register) -> None:
    register.namespace(
        PREFIX, _metric_net, list_names=_list_models, contains=_is_model,
        description="any timm model + linear embedding head (emb_dim=10; pretrained from a local file)",
    )


@hookimpl
def mvm_register_feature_extractors(register: Register) -> None:
    register.namespace(
        PREFIX, _feature_extractor, list_names=_list_models, contains=_is_model,
        description="any timm model's feature maps, frozen (features_only; pretrained from a local file)",
    )


def __getattr__(name: str) -> Any:
    # the classes import timm: load them on first access only
    if name == "TimmMetricNet":
        from .metric_net import TimmMetricNet

        return TimmMetricNet
    if name == "TimmFeatureExtractor":
        from .feature_extractor import TimmFeatureExtractor

        return TimmFeatureExtractor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PREFIX", "TimmFeatureExtractor", "TimmMetricNet"]
