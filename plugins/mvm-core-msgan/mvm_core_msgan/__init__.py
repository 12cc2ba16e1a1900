"""mvm-core plugin: MSGAN's mode-seeking regularizer (Mao et al., CVPR 2019) under ``msgan:``.

Registers ``msgan:ModeSeekingLoss`` in the regularizers registry::

    term = mvm_core.create_regularizer("msgan:ModeSeekingLoss", weight=1.0)

The module is cheap to import (torch is already loaded by mvm-core).
"""

from __future__ import annotations

from mvm_core import hookimpl
from mvm_core.registry import Register

from .mode_seeking import ModeSeekingLoss, mode_seeking_loss, mode_seeking_ratio

__version__ = "0.1.0"


@hookimpl
def mvm_register_regularizers(register: Register) -> None:
    register(
        "msgan:ModeSeekingLoss", ModeSeekingLoss,
        description="MSGAN mode seeking: 1 / (mean|G(z1) - G(z2)| / mean|z1 - z2| + eps) on paired codes",
    )


__all__ = ["ModeSeekingLoss", "mode_seeking_loss", "mode_seeking_ratio"]
