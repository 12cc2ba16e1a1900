"""Built-in plugin: mvm-core's generator terms (``mvm:`` regularizers), e.g. the content loss of
paired tasks."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..registry import Register


@hookimpl
def mvm_register_regularizers(register: Register) -> None:
    from ..content import ContentLoss

    register(
        "mvm:ContentLoss", ContentLoss,
        description="paired tasks: pixel distance of each output to its own target (L1, L2 or Charbonnier)",
    )
