"""mvm-core: generative modeling by manifold matching over learned metrics."""

from __future__ import annotations

__version__ = "0.1.0"

# hooks, plugins and registries are light: plugin code is imported on first registry use
from .api import train
from .hookspecs import hookimpl
from .matching import (
    ManifoldMatchingLoss,
    centroid_matching,
    diameter_matching_paired,
    diameter_matching_sorted,
    directed_hausdorff,
    hausdorff,
    p_diameter,
    pairwise_distances,
    squared_euclidean,
)
from .metric import FAKE, REAL, MetricObjective, MvMTripletLoss, RealFakeTripletMiner
from .mining import FaissHardNegativeMiner, FakeEmbeddingBank
from .plugins import list_plugins, load_plugins, register_plugin
from .registry import (
    create_backbone,
    create_dataset,
    create_distance,
    create_feature_extractor,
    create_generator,
    create_metric,
    create_metric_loss,
    create_miner,
    create_reducer,
    create_regularizer,
    list_backbones,
    list_datasets,
    list_distances,
    list_feature_extractors,
    list_generators,
    list_metric_losses,
    list_metrics,
    list_miners,
    list_reducers,
    list_regularizers,
    resolve,
)
from .set_matching import EnergyMatchingLoss, chamfer_distance, energy_distance

__all__ = [
    "FAKE",
    "REAL",
    "EnergyMatchingLoss",
    "FaissHardNegativeMiner",
    "FakeEmbeddingBank",
    "ManifoldMatchingLoss",
    "MetricObjective",
    "MvMTripletLoss",
    "RealFakeTripletMiner",
    "__version__",
    "centroid_matching",
    "chamfer_distance",
    "create_backbone",
    "create_dataset",
    "create_distance",
    "create_feature_extractor",
    "create_generator",
    "create_metric",
    "create_metric_loss",
    "create_miner",
    "create_reducer",
    "create_regularizer",
    "diameter_matching_paired",
    "diameter_matching_sorted",
    "directed_hausdorff",
    "energy_distance",
    "hausdorff",
    "hookimpl",
    "list_backbones",
    "list_datasets",
    "list_distances",
    "list_feature_extractors",
    "list_generators",
    "list_metric_losses",
    "list_metrics",
    "list_miners",
    "list_plugins",
    "list_reducers",
    "list_regularizers",
    "load_plugins",
    "p_diameter",
    "pairwise_distances",
    "register_plugin",
    "resolve",
    "squared_euclidean",
    "train",
]
