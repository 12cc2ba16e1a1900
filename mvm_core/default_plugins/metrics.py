"""Built-in plugin: the evaluation metrics of :mod:`mvm_core.metrics` as ``mvm:<metric>``.

One name per entry of :data:`mvm_core.metrics.evaluate.METRICS`. The object a name creates is
:func:`mvm_core.metrics.evaluate` bound to that metric and to the keyword arguments given to
``create_metric`` (``space`` at least), so it is called on two feature sets::

    fid = mvm_core.create_metric("mvm:fid", space="inception")
    fid(real_features, fake_features)          # {"fid@inception": ...}
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ..hookspecs import hookimpl
from ..registry import Register


def _bound_metric(name: str) -> Callable[..., Any]:
    def factory(**kwargs: Any) -> functools.partial:
        from ..metrics import evaluate

        if "metrics" in kwargs:
            raise TypeError(
                f"mvm:{name} computes {name!r} only; to compute several metrics at once call"
                " mvm_core.metrics.evaluate(real, fake, metrics=[...], space=...)."
            )
        return functools.partial(evaluate, metrics=(name,), **kwargs)

    return factory


@hookimpl
def mvm_register_metrics(register: Register) -> None:
    from ..metrics import METRICS

    for name, (description, _keys) in METRICS.items():
        register(f"mvm:{name}", _bound_metric(name), description=description)
