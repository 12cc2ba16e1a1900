"""Built-in plugin: everything pytorch-metric-learning provides, as ``pml:<ClassName>``.

Discovered by introspecting pml's ``losses``, ``miners``, ``distances`` and ``reducers`` modules, so
a newer pml release brings its new classes without a change here. Abstract bases (``Base*``,
``Generic*``) and mixins are left out; loss wrappers (``CrossBatchMemory``, ``SelfSupervisedLoss``,
``MultipleLosses``) are included. Whether a loss suits MvM is checked where it is used
(:func:`mvm_core.metric.check_metric_loss`).
"""

from __future__ import annotations

import inspect
import re
from types import ModuleType

from ..hookspecs import hookimpl
from ..registry import Register

PREFIX = "pml"


def pml_classes(module: ModuleType, base: type) -> dict[str, type]:
    """Public concrete classes of a pml module that subclass ``base``, by class name."""
    found = {}
    for name, obj in vars(module).items():
        if (
            inspect.isclass(obj)
            and issubclass(obj, base)
            and obj.__module__.startswith("pytorch_metric_learning.")
            and not name.startswith(("_", "Base", "Generic"))
            and not name.endswith("Mixin")
        ):
            found[name] = obj
    return dict(sorted(found.items()))


def _description(cls: type, what: str) -> str:
    """The class's own first docstring line (pml's are sparse and often start with arguments)."""
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    first = next((line.strip() for line in doc.splitlines() if line.strip()), "")
    is_argument = re.match(r"^\w+\s*:", first) is not None or first.endswith(":")
    if first and not is_argument:
        return f"pytorch-metric-learning {what}: {first}"
    return f"pytorch-metric-learning {what} {cls.__name__}"


def _register_all(register: Register, module: ModuleType, base: type, what: str) -> None:
    for name, cls in pml_classes(module, base).items():
        register(f"{PREFIX}:{name}", cls, description=_description(cls, what))


@hookimpl
def mvm_register_metric_losses(register: Register) -> None:
    import torch
    from pytorch_metric_learning import losses

    # nn.Module, not BaseMetricLossFunction: the loss wrappers are losses too
    _register_all(register, losses, torch.nn.Module, "loss")


@hookimpl
def mvm_register_miners(register: Register) -> None:
    from pytorch_metric_learning import miners

    _register_all(register, miners, miners.BaseMiner, "miner")


@hookimpl
def mvm_register_distances(register: Register) -> None:
    from pytorch_metric_learning import distances

    _register_all(register, distances, distances.BaseDistance, "distance")


@hookimpl
def mvm_register_reducers(register: Register) -> None:
    from pytorch_metric_learning import reducers

    _register_all(register, reducers, reducers.BaseReducer, "reducer")
