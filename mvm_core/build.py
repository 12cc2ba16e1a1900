"""Turn a :class:`RunConfig` into the objects of a run: data, networks, objectives, trainer."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import torch

from .adversarial import gan_objectives
from .data import (
    GenerativeDataset,
    PairedDataset,
    digits_dataset,
    image_folder_dataset,
    mixture_dataset,
    tensor_dataset,
)
from .data.mnist import mnist_dataset, stacked_mnist_dataset
from .data.toy import MIXTURES
from .matching import ManifoldMatchingLoss
from .metric import MetricObjective
from .nets import DCGANGenerator, DCGANMetricNet, MLPGenerator, MLPMetricNet
from .runconfig import RunConfig
from .set_matching import EnergyMatchingLoss
from .trainer import Trainer, check_task

# mvm: manifold matching in a learned metric | gan: adversarial objectives on the same networks |
# none: the generator terms alone, no metric network | gfmn: fixed-feature matching (plugin)
METHODS = ("mvm", "gan", "none", "gfmn")


def build_dataset(config: RunConfig) -> GenerativeDataset | PairedDataset:
    """``digits``, ``mnist``, ``stacked-mnist``, ``ring``, ``grid``, ``folder:PATH``, a ``.npy`` / ``.pt`` file of samples, or a
    dataset registry name (``sr:skimage``: plugins' datasets) created with ``data_kwargs``."""
    spec = config.data
    if config.data_kwargs and (":" not in spec or spec.startswith("folder:")) and spec not in MIXTURES \
            and spec != "stacked-mnist":
        raise ValueError(
            f"data_kwargs {config.data_kwargs} apply to ring, grid, stacked-mnist and datasets named in the registry"
            f" (like 'sr:skimage'); the built-in data {spec!r} takes none. Remove --data-kwargs."
        )
    if spec == "digits":
        return digits_dataset(config.image_size, labels=True)
    if spec == "mnist":
        return mnist_dataset(config.image_size)
    if spec == "stacked-mnist":  # data_kwargs: n (number of triples), seed of the triples
        try:
            return stacked_mnist_dataset(config.image_size, **config.data_kwargs)
        except TypeError:
            raise ValueError(f"--data-kwargs for stacked-mnist take n and seed; got {config.data_kwargs}.") from None
    if spec in MIXTURES:  # kwargs of mvm_core.data.toy.ring / grid: modes, spacing, std, weights
        try:
            return mixture_dataset(MIXTURES[spec](**config.data_kwargs), seed=config.seed)
        except TypeError as error:
            params = ", ".join(inspect.signature(MIXTURES[spec]).parameters)
            raise ValueError(f"--data-kwargs for {spec} take {params}; got {config.data_kwargs} ({error}).") from None
    if spec.startswith("folder:"):
        return image_folder_dataset(spec[len("folder:"):], config.image_size, config.channels)
    path = Path(spec)
    if path.suffix == ".npy" and path.exists():
        return tensor_dataset(np.load(path, allow_pickle=False), name=path.name)
    if path.suffix == ".pt" and path.exists():
        return tensor_dataset(torch.load(path, weights_only=True), name=path.name)
    if ":" in spec:  # a registered dataset (built-in mvm: names or a plugin's)
        from .registry import resolve

        return resolve("datasets", spec, **config.data_kwargs)
    raise ValueError(
        f"unknown data {spec!r}: use digits, mnist, stacked-mnist, ring, grid, folder:PATH (a folder of images), a"
        " .npy / .pt file holding a tensor of samples, or a dataset name (`mvm list datasets`)."
    )


def _declared(kind: str, name: str, values: dict) -> dict:
    """The entries of ``values`` that the factory registered as ``name`` declares as parameters."""
    import inspect

    from .registry import get_registry

    factory = get_registry(kind).get(name).factory
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins without a signature: pass nothing implicit
        return {}
    return {k: v for k, v in values.items() if k in params}


def _paired_networks(config: RunConfig, dataset: PairedDataset) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Networks for a paired task: registry names created with what the data fixes (``channels``
    of the targets, the generator's ``scale`` = target size / input size) when their factories
    declare those parameters, then the ``*_kwargs`` given."""
    from .registry import resolve

    if config.generator == "auto":
        raise ValueError(
            "a paired task needs a generator that maps the inputs to targets: name one with"
            " --generator (e.g. sr:SRResNet, sr:RDN from the mvm-core-sr plugin) or use --preset sr."
        )
    target, source = dataset.sample_shape, dataset.input_shape
    implied = {"channels": target[0]}
    if len(target) == 3 and len(source) == 3:
        if target[-1] % source[-1] or target[-2] % source[-2]:
            raise ValueError(f"targets {target} are not a whole multiple of the inputs {source}.")
        implied["scale"] = target[-1] // source[-1]
    g_kwargs = {**_declared("generators", config.generator, implied), **config.generator_kwargs}
    g = resolve("generators", config.generator, **g_kwargs)
    if config.metric_net == "auto":
        if len(target) != 3 or target[-1] != target[-2]:
            raise ValueError(f"metric_net='auto' needs square image targets; got {target}. Name one.")
        m = DCGANMetricNet(target[-1], target[0], config.emb_dim, width=config.width,
                           spectral_norm=config.spectral_norm)
    else:
        m_implied = _declared("backbones", config.metric_net, {"channels": target[0]})
        m = resolve("backbones", config.metric_net, emb_dim=config.emb_dim,
                    **{**m_implied, **config.metric_net_kwargs})
    return g, m


def build_networks(config: RunConfig, dataset: GenerativeDataset) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The generator and metric network: built-ins sized for the data (MLPs for points, DCGAN for
    images), or registry names created with ``z_dim`` / ``emb_dim`` plus the ``*_kwargs`` given."""
    from .registry import resolve

    if config.task == "paired":
        return _paired_networks(config, dataset)
    num_classes = dataset.num_classes if config.conditional else None
    if config.conditional and num_classes is None:
        raise ValueError(f"conditional=True needs labelled data; {dataset.name} has no labels.")
    shape = dataset.sample_shape
    points = len(shape) == 1
    z_dim = config.z_dim or (2 if points else 64)
    if config.generator != "auto":
        g = resolve("generators", config.generator, z_dim=z_dim, **config.generator_kwargs)
    elif points:
        g = MLPGenerator(z_dim, shape[0], hidden=config.width, depth=config.depth, num_classes=num_classes)
    else:
        g = DCGANGenerator(z_dim, shape[-1], shape[0], width=config.width, num_classes=num_classes)
    if config.metric_net != "auto":
        m = resolve("backbones", config.metric_net, emb_dim=config.emb_dim, **config.metric_net_kwargs)
    elif points:
        m = MLPMetricNet(shape[0], config.emb_dim, hidden=config.width // 2, depth=config.depth,
                         spectral_norm=config.spectral_norm)
    else:
        m = DCGANMetricNet(shape[-1], shape[0], config.emb_dim, width=config.width,
                           spectral_norm=config.spectral_norm)
    return g, m


def build_matching(config: RunConfig) -> torch.nn.Module:
    """The generator's set-matching loss in the metric network's embedding."""
    if config.matching == "centroid-diameter":
        return ManifoldMatchingLoss(p=config.p, centroid_weight=config.centroid_weight,
                                    diameter_weight=config.diameter_weight,
                                    diameter_form=config.diameter_form)
    if config.matching == "energy":
        return EnergyMatchingLoss(energy_weight=config.energy_weight, chamfer_weight=config.chamfer_weight,
                                  cross_weight=config.cross_weight, power=config.energy_power)
    raise ValueError(f"matching must be 'centroid-diameter' or 'energy'; got {config.matching!r}.")


def build_terms(config: RunConfig, dataset: GenerativeDataset) -> dict:
    """Weighted generator terms from registry names (feature-matching terms receive the data)."""
    from .registry import resolve

    terms = {}
    for name, weight in config.regularizers.items():
        kwargs = {"data": dataset} if name.lower().startswith("gfmn:") else {}
        terms[name] = (weight, resolve("regularizers", name, **kwargs))
    return terms


def _nested_objects(kwargs: dict) -> dict:
    """A loss's ``distance`` / ``reducer`` given in a config as a registry name or a mapping
    ``{"name": "pml:LpDistance", "normalize_embeddings": false}`` becomes that object."""
    from .registry import resolve

    kinds = {"distance": "distances", "reducer": "reducers"}
    return {k: resolve(kinds[k], v) if k in kinds and isinstance(v, (str, dict)) else v
            for k, v in kwargs.items()}


def build_objectives(config: RunConfig) -> tuple[torch.nn.Module, MetricObjective]:
    """Matching loss and metric objective from the config (losses and miners by registry name)."""
    from .registry import resolve

    matching = build_matching(config)
    loss = resolve("metric_losses", config.metric_loss, **_nested_objects(config.metric_loss_kwargs))
    if config.miner in ("default", "random"):
        miner = config.miner
    elif config.miner == "none":
        miner = None
    else:
        miner = resolve("miners", config.miner, **config.miner_kwargs)
    return matching, MetricObjective(loss, miner=miner)


def build_trainer(config: RunConfig, run_dir: str | Path | None = None, callbacks=()) -> Trainer:
    """A ready-to-fit trainer for ``config`` (seeded: the same config gives the same run)."""
    from .registry import resolve

    if config.method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {config.method!r}.")
    torch.manual_seed(config.seed)
    dataset = build_dataset(config)
    check_task(config.task, dataset)  # before the networks: their arguments depend on the task
    generator, metric_net = build_networks(config, dataset)
    terms = build_terms(config, dataset)
    common = {"generator_terms": terms, "callbacks": callbacks, "run_dir": run_dir,
              "extra_state": {"run_config": config.to_dict()}}
    if config.method == "gfmn":
        # GFMN alone: fixed pretrained features, no metric network (the mvm-core-gfmn plugin)
        extractors = ["gfmn:digits-classifier"] if config.data == "digits" else ["gfmn:vgg19", "gfmn:resnet18"]
        terms["gfmn"] = (1.0, resolve("regularizers", "gfmn:FeatureMatching", data=dataset, extractors=extractors))
        return Trainer(generator, None, dataset, config.train_config(), **common)
    if config.method == "none":  # the generator terms alone (e.g. L1-only super-resolution)
        if not terms:
            raise ValueError("method 'none' trains on the generator terms alone: give some with"
                             " --regularizers NAME=WEIGHT (e.g. mvm:ContentLoss=1).")
        return Trainer(generator, None, dataset, config.train_config(), **common)
    if config.method == "gan":  # the same networks, adversarial objectives in both slots
        emb_dim = int(getattr(metric_net, "emb_dim", config.emb_dim))
        matching, objective = gan_objectives(emb_dim, config.gan_loss)
        return Trainer(generator, metric_net, dataset, config.train_config(), matching=matching,
                       metric_objective=objective, **common)
    matching, objective = build_objectives(config)
    return Trainer(generator, metric_net, dataset, config.train_config(), matching=matching,
                   metric_objective=objective, **common)


__all__ = ["build_dataset", "build_matching", "build_networks", "build_objectives", "build_terms",
           "build_trainer"]
