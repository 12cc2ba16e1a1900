"""Turn a :class:`RunConfig` into the objects of a run: data, networks, objectives, trainer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .data import (
    GenerativeDataset,
    digits_dataset,
    grid_dataset,
    image_folder_dataset,
    ring_dataset,
    tensor_dataset,
)
from .matching import ManifoldMatchingLoss
from .metric import MetricObjective
from .nets import DCGANGenerator, DCGANMetricNet, MLPGenerator, MLPMetricNet
from .runconfig import RunConfig
from .set_matching import EnergyMatchingLoss
from .trainer import Trainer


def build_dataset(config: RunConfig) -> GenerativeDataset:
    """``digits``, ``ring``, ``grid``, ``folder:PATH``, or a ``.npy`` / ``.pt`` file of samples."""
    spec = config.data
    if spec == "digits":
        return digits_dataset(config.image_size, labels=True)
    if spec == "ring":
        return ring_dataset(seed=config.seed)
    if spec == "grid":
        return grid_dataset(seed=config.seed)
    if spec.startswith("folder:"):
        return image_folder_dataset(spec[len("folder:"):], config.image_size, config.channels)
    path = Path(spec)
    if path.suffix == ".npy" and path.exists():
        return tensor_dataset(np.load(path, allow_pickle=False), name=path.name)
    if path.suffix == ".pt" and path.exists():
        return tensor_dataset(torch.load(path, weights_only=True), name=path.name)
    raise ValueError(
        f"unknown data {spec!r}: use digits, ring, grid, folder:PATH (a folder of images), or a"
        " .npy / .pt file holding a tensor of samples."
    )


def build_networks(config: RunConfig, dataset: GenerativeDataset) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The generator and metric network: built-ins sized for the data (MLPs for points, DCGAN for
    images), or registry names created with ``z_dim`` / ``emb_dim`` plus the ``*_kwargs`` given."""
    from .registry import resolve

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


def build_objectives(config: RunConfig) -> tuple[torch.nn.Module, MetricObjective]:
    """Matching loss and metric objective from the config (losses and miners by registry name)."""
    from .registry import resolve

    matching = build_matching(config)
    loss = resolve("metric_losses", config.metric_loss, **config.metric_loss_kwargs)
    if config.miner == "default":
        miner = "default"
    elif config.miner == "none":
        miner = None
    else:
        miner = resolve("miners", config.miner, **config.miner_kwargs)
    return matching, MetricObjective(loss, miner=miner)


def build_trainer(config: RunConfig, run_dir: str | Path | None = None, callbacks=()) -> Trainer:
    """A ready-to-fit trainer for ``config`` (seeded: the same config gives the same run)."""
    from .registry import resolve

    if config.method not in ("mvm", "gfmn"):
        raise ValueError(f"method must be 'mvm' or 'gfmn'; got {config.method!r}.")
    torch.manual_seed(config.seed)
    dataset = build_dataset(config)
    generator, metric_net = build_networks(config, dataset)
    terms = build_terms(config, dataset)
    common = {"generator_terms": terms, "callbacks": callbacks, "run_dir": run_dir,
              "extra_state": {"run_config": config.to_dict()}}
    if config.method == "gfmn":
        # GFMN alone: fixed pretrained features, no metric network (the mvm-core-gfmn plugin)
        extractors = ["gfmn:digits-classifier"] if config.data == "digits" else ["gfmn:vgg19", "gfmn:resnet18"]
        terms["gfmn"] = (1.0, resolve("regularizers", "gfmn:FeatureMatching", data=dataset, extractors=extractors))
        return Trainer(generator, None, dataset, config.train_config(), **common)
    matching, objective = build_objectives(config)
    return Trainer(generator, metric_net, dataset, config.train_config(), matching=matching,
                   metric_objective=objective, **common)


__all__ = ["build_dataset", "build_matching", "build_networks", "build_objectives", "build_terms",
           "build_trainer"]
