"""Built-in plugin: mvm-core's metric-learning pieces (``mvm:`` losses, miners and distances)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..registry import Register


@hookimpl
def mvm_register_metric_losses(register: Register) -> None:
    from ..metric import MvMTripletLoss

    register(
        "mvm:MvMTripletLoss", MvMTripletLoss,
        description="MvM reference triplet loss on squared distances with direction guidance",
    )


@hookimpl
def mvm_register_miners(register: Register) -> None:
    from ..metric import RealFakeTripletMiner

    register(
        "mvm:RealFakeTripletMiner", RealFakeTripletMiner,
        description="real anchors, real positives, fake negatives; a bounded number per anchor",
    )


@hookimpl
def mvm_register_distances(register: Register) -> None:
    from ..matching import squared_euclidean

    register(
        "mvm:SquaredEuclidean", squared_euclidean,
        description="||a - b||^2 on unnormalized embeddings (the MvM reference distance)",
    )
