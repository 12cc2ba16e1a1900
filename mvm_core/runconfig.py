"""A whole run described by one flat, serializable config: data, networks, objectives, schedule.

Values come from, in increasing priority: the preset, a config file (YAML or TOML), command-line
flags. Unknown keys are an error that names the key and the nearest valid one; every value is
checked for its field's type and range (:mod:`mvm_core.config_checks`), with a ``ConfigError``.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .trainer import TrainConfig

_TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}


@dataclass
class RunConfig(TrainConfig):
    """Everything `mvm train` needs: the training fields of :class:`TrainConfig` (inherited, and
    validated the same way) plus data, networks, objectives and outputs."""

    # data
    data: str = "digits"  # digits | mnist | stacked-mnist | ring | grid | folder:PATH | PATH.npy / PATH.pt | registry name (sr:skimage)
    data_kwargs: dict[str, Any] = field(default_factory=dict)  # ring/grid shape (num_modes or side, radius or spacing, std, weights) or a registry dataset's kwargs
    image_size: int = 8
    channels: int = 3  # for image folders
    # method
    preset: str = "default"  # default | reference (the published MvM formulation) | sr (super-resolution)
    # mvm | gan (adversarial baseline on the same nets) | none (generator terms only, no metric
    # network, e.g. an L1-only SR baseline) | gfmn (GFMN feature matching, mvm-core-gfmn plugin)
    method: str = "mvm"
    gan_loss: str = "non-saturating"  # method gan: non-saturating | hinge
    # networks
    generator: str = "auto"  # auto | registry name (e.g. mvm:MLPGenerator)
    generator_kwargs: dict[str, Any] = field(default_factory=dict)  # for a named generator
    metric_net: str = "auto"  # auto | registry name (e.g. timm:resnet18)
    metric_net_kwargs: dict[str, Any] = field(default_factory=dict)  # for a named metric net
    z_dim: int = 0  # 0: 2 for 2D data, 64 for images
    emb_dim: int = 10
    width: int = 64  # conv nets: base channels; MLPs: hidden units
    depth: int = 3  # MLPs
    spectral_norm: bool = False
    # generator objective: "centroid-diameter" (ManifoldMatchingLoss) or "energy" (EnergyMatchingLoss)
    matching: str = "centroid-diameter"
    energy_weight: float = 1.0
    chamfer_weight: float = 0.0
    cross_weight: float = 0.0
    energy_power: float = 1.0
    diameter_form: str = "sorted"
    p: float = 2.0
    centroid_weight: float = 1.0
    diameter_weight: float = 1.0
    regularizers: dict[str, float] = field(default_factory=dict)  # registry name -> weight
    # metric objective
    metric_loss: str = "mvm:MvMTripletLoss"
    metric_loss_kwargs: dict[str, Any] = field(default_factory=dict)
    miner: str = "default"  # default (FAISS hard negatives) | random (reference) | none | registry name
    miner_kwargs: dict[str, Any] = field(default_factory=dict)
    # outputs
    sample_every: int = 0
    checkpoint_every: int = 500
    eval_every: int = 0
    eval_samples: int = 2000
    tensorboard: bool = False

    def train_config(self) -> TrainConfig:
        """The training fields alone, as the :class:`Trainer` takes them."""
        return TrainConfig(**{k: v for k, v in asdict(self).items() if k in _TRAIN_FIELDS})

    @classmethod
    def valid_keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def check_keys(values: dict[str, Any], source: str) -> None:
    """Raise on keys RunConfig does not have, naming the nearest valid key."""
    valid = RunConfig.valid_keys()
    for key in values:
        if key not in valid:
            near = difflib.get_close_matches(key, valid, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else f" Valid keys: {', '.join(valid)}."
            raise ConfigError(f"unknown config key {key!r} in {source}.{hint}")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (.yaml/.yml) or TOML (.toml) config file into a dict (keys are checked)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist.")
    if path.suffix not in (".yaml", ".yml", ".toml", ".json"):
        raise ConfigError(f"config file must be .yaml, .yml, .toml or .json; got {path.name!r}.")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        elif path.suffix == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib
            values = tomllib.loads(text)
        else:
            values = json.loads(text)
    except Exception as error:  # the parsers' syntax errors, with their line and column
        message = " ".join(str(error).split())
        raise ConfigError(f"config file {str(path)!r} is not valid {path.suffix[1:].upper()}: {message}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys to values.")
    check_keys(values, str(path))
    return values


def preset_values(preset: str, kind: str) -> dict[str, Any]:
    """The values a preset sets for samples of ``kind`` ("points" or "images", see
    :func:`mvm_core.data.sources.data_kind`), before the config file and flags apply."""
    from .data.sources import KINDS
    from .presets import PRESETS

    if preset not in PRESETS:
        near = difflib.get_close_matches(preset, list(PRESETS), n=1)
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}"
                         + (f" (did you mean {near[0]!r}?)" if near else "") + ".")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}.")
    return PRESETS[preset](kind)


DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    "mnist": {"image_size": 32},  # 28 x 28 digits zero-padded to 32 (mvm_core.data.mnist)
    "stacked-mnist": {"image_size": 32},
}
"""Values a built-in dataset sets before the config file and flags (its native image size)."""


def build_run_config(file_values: dict[str, Any] | None = None,
                     overrides: dict[str, Any] | None = None, *, kind: str | None = None) -> RunConfig:
    """Preset < config file < overrides (flags), all key-checked.

    The preset's recipe follows the kind of the data's samples (points or images), read from the
    data itself (:func:`mvm_core.data.sources.data_kind`) unless ``kind`` is given (in-memory data).
    """
    file_values = dict(file_values or {})
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    check_keys(file_values, "the config file")
    check_keys(overrides, "the arguments")
    merged = {**file_values, **overrides}
    data = merged.get("data", RunConfig.data)
    preset = merged.get("preset", RunConfig.preset)
    if kind is None:
        from .data.sources import data_kind

        kind = data_kind(data, merged.get("data_kwargs"), image_size=merged.get("image_size", RunConfig.image_size),
                         channels=merged.get("channels", RunConfig.channels))
    values = {**preset_values(preset, kind), **(DATA_DEFAULTS.get(data, {}) if isinstance(data, str) else {})}
    # a preset's options of a named thing belong to it: drop them when the thing is replaced
    for name in ("metric_loss", "miner", "data", "generator", "metric_net"):
        if name in merged and merged[name] != values.get(name) and f"{name}_kwargs" not in merged:
            values[f"{name}_kwargs"] = {}
    values.update(merged)
    return RunConfig(**values)  # __post_init__ validates the training fields
