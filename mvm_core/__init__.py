"""mvm-core: generative modeling by manifold matching over learned metrics."""

from __future__ import annotations

__version__ = "0.1.0"

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

__all__ = [
    "FAKE",
    "REAL",
    "ManifoldMatchingLoss",
    "MetricObjective",
    "MvMTripletLoss",
    "RealFakeTripletMiner",
    "__version__",
    "centroid_matching",
    "diameter_matching_paired",
    "diameter_matching_sorted",
    "directed_hausdorff",
    "hausdorff",
    "p_diameter",
    "pairwise_distances",
    "squared_euclidean",
]
