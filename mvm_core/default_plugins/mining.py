"""Built-in plugin: the FAISS hard-negative miner of :mod:`mvm_core.mining` (``mvm:`` miners)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..registry import Register


@hookimpl
def mvm_register_miners(register: Register) -> None:
    from ..mining import FaissHardNegativeMiner

    register(
        "mvm:FaissHardNegativeMiner", FaissHardNegativeMiner,
        description="k nearest fakes per real anchor (FAISS or torch), in the batch and/or a memory bank",
    )
