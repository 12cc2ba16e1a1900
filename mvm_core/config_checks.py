"""Type and range checks of config fields: every value is of its field's type and in its range.

Config files bring values in loose forms: JSON ``"false"`` (a string, which is truthy), YAML's
``1e-3`` (a string, not a float), ``20.5`` where a count is meant. :func:`check_fields` coerces the
forms that are unambiguous (``"false"`` -> False, ``"1e-3"`` -> 0.001, ``20.0`` -> 20, a list of two
numbers -> a tuple) and rejects everything else with a :class:`~mvm_core.errors.ConfigError` that
names the field, what it takes, the value given, and the fix.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from .errors import ConfigError

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")

#: fields whose values are not only what a config file carries (e.g. in-memory data): not checked
UNCHECKED = frozenset({"data"})

# field -> (test, what the field takes); fields not named here only have their type checked
_nonneg = (lambda v: v >= 0, ">= 0")
_positive = (lambda v: v > 0, "> 0")
_count = (lambda v: v >= 1, ">= 1")
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "steps": _nonneg, "batch_size": (lambda v: v >= 2, ">= 2"), "metric_steps": _nonneg,
    "g_lr": _positive, "m_lr": _positive, "g_eps": _positive, "m_eps": _positive,
    "g_betas": (lambda v: all(0 <= b < 1 for b in v), "two numbers in [0, 1)"),
    "m_betas": (lambda v: all(0 <= b < 1 for b in v), "two numbers in [0, 1)"),
    "warmup_steps": _nonneg, "grad_clip": _positive,
    "ema_decay": (lambda v: 0 < v < 1, "in (0, 1)"), "seed": _nonneg, "log_every": _count,
    "image_size": _count, "channels": _count, "z_dim": _nonneg, "emb_dim": _count, "width": _count,
    "depth": _nonneg, "energy_weight": _nonneg, "chamfer_weight": _nonneg, "cross_weight": _nonneg,
    "energy_power": _positive, "p": _positive, "centroid_weight": _nonneg, "diameter_weight": _nonneg,
    "sample_every": _nonneg, "checkpoint_every": _nonneg, "eval_every": _nonneg, "eval_samples": _count,
}


def _fail(name: str, expected: str, value: Any, fix: str = "") -> ConfigError:
    return ConfigError(f"config value {name}={value!r} ({type(value).__name__}) is invalid: {name}"
                       f" takes {expected}.{' ' + fix if fix else ''}")


def coerce(name: str, kind: Any, value: Any) -> Any:
    """``value`` as an instance of the type annotation ``kind``, or a ConfigError."""
    args = typing.get_args(kind)
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(name, inner[0], value) if len(inner) == 1 else value  # X | Y: not checked
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise _fail(name, "true or false", value, "Write it unquoted: true / false.")
    if kind is int:
        if isinstance(value, str):
            try:
                value = float(value.strip()) if value.strip() else value
            except ValueError:
                raise _fail(name, "a whole number", value) from None
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _fail(name, "a whole number", value)
    if kind is float:
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise _fail(name, "a number", value) from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _fail(name, "a finite number", value)
            return float(value)
        raise _fail(name, "a number", value)
    if kind is str:
        if isinstance(value, str):
            return value
        if type(value).__name__ == "device":  # a torch.device for `device`
            return str(value)
        raise _fail(name, "a string", value, "Quote it in the config file.")
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise _fail(name, f"{len(args)} numbers", value, "e.g. [0.5, 0.999].")
        return tuple(coerce(name, a, v) for a, v in zip(args, value))
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(name, "a mapping of names to values", value)
        key_kind, value_kind = args
        if value_kind is Any:
            return value
        return {coerce(name, key_kind, k): coerce(f"{name}[{k!r}]", value_kind, v) for k, v in value.items()}
    return value  # Any and anything else: not checked here


def check_fields(config: Any) -> None:
    """Coerce every field of the dataclass ``config`` in place to its type, then check its range."""
    try:
        hints = typing.get_type_hints(type(config))
    except Exception:  # noqa: BLE001 - a subclass's annotations that do not resolve: ranges only
        hints = {}
    for f in fields(config):
        if f.name in UNCHECKED:
            continue
        value = getattr(config, f.name)
        if f.name in hints:
            value = coerce(f.name, hints[f.name], value)
        setattr(config, f.name, value)
        if value is not None and f.name in RANGES:
            ok, expected = RANGES[f.name]
            if not ok(value):
                raise _fail(f.name, expected, value)
