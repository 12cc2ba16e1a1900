"""Turn a :class:`RunConfig` into the objects of a run: data, networks, objectives, trainer."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from .adversarial import gan_objectives
from .data import GenerativeDataset, PairedDataset
from .data.sources import kind_of, load_data
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
    """``digits``, ``ring``, ``grid``, ``folder:PATH``, a ``.npy`` / ``.pt`` file of samples, or a
    dataset registry name (``sr:skimage``: plugins' datasets) created with ``data_kwargs``
    (:func:`mvm_core.data.sources.load_data`)."""
    return load_data(config.data, config.data_kwargs, image_size=config.image_size,
                     channels=config.channels, seed=config.seed)


def _declared(kind: str, name: str, values: dict) -> dict:
    """The entries of ``values`` that the factory registered as ``name`` declares as parameters."""
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


def data_sizes(shape: tuple[int, ...]) -> dict[str, int]:
    """What a sample shape fixes for a network: ``out_dim`` / ``in_dim`` of vectors, or
    ``image_size`` and ``channels`` of ``(C, S, S)`` images."""
    if len(shape) == 1:
        return {"out_dim": shape[0], "in_dim": shape[0]}
    return {"image_size": shape[-1], "channels": shape[0]}


def build_networks(config: RunConfig, dataset: GenerativeDataset) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The generator and metric network: built-ins sized for the data (MLPs for points, DCGAN for
    images), or registry names created by the network contract (docs/plugins.md): ``z_dim`` for
    generators and ``emb_dim`` for metric networks always; ``width``, ``depth`` (the config's),
    ``image_size``, ``channels`` (images) or ``out_dim`` / ``in_dim`` (vectors) and
    ``num_classes`` (conditional generators) when the factory's signature declares them; the
    ``*_kwargs`` given last. Both networks are then checked against the data
    (:func:`check_networks`), so a size mismatch fails here, not in the first step."""
    from .registry import resolve

    if config.task == "paired":
        return _paired_networks(config, dataset)
    num_classes = dataset.num_classes if config.conditional else None
    if config.conditional and num_classes is None:
        raise ValueError(f"conditional=True needs labelled data; {dataset.name} has no labels.")
    shape = dataset.sample_shape
    points = len(shape) == 1
    z_dim = config.z_dim or (2 if points else 64)
    sizes = {"width": config.width, "depth": config.depth, **data_sizes(shape)}
    if config.generator != "auto":
        implied = {k: v for k, v in sizes.items() if k != "in_dim"}
        if num_classes is not None:
            implied["num_classes"] = num_classes
        implied = _declared("generators", config.generator, implied)
        g = resolve("generators", config.generator, z_dim=z_dim, **{**implied, **config.generator_kwargs})
    elif points:
        g = MLPGenerator(z_dim, shape[0], hidden=config.width, depth=config.depth, num_classes=num_classes)
    else:
        g = DCGANGenerator(z_dim, shape[-1], shape[0], width=config.width, num_classes=num_classes)
    if config.metric_net != "auto":
        implied = _declared("backbones", config.metric_net, {k: v for k, v in sizes.items() if k != "out_dim"})
        m = resolve("backbones", config.metric_net, emb_dim=config.emb_dim,
                    **{**implied, **config.metric_net_kwargs})
    elif points:
        m = MLPMetricNet(shape[0], config.emb_dim, hidden=config.width // 2, depth=config.depth,
                         spectral_norm=config.spectral_norm)
    else:
        m = DCGANMetricNet(shape[-1], shape[0], config.emb_dim, width=config.width,
                           spectral_norm=config.spectral_norm)
    check_networks(g, m, dataset, num_classes=num_classes)
    return g, m


@torch.no_grad()
def check_networks(generator: torch.nn.Module, metric_net: torch.nn.Module | None, dataset,
                   num_classes: int | None = None) -> None:
    """Raise a ValueError naming both shapes when the generator's samples do not have the data's
    sample shape or the metric network does not map the data's samples to ``(N, d)`` embeddings.

    One forward of two samples per network in eval mode, with latent codes from a private random
    generator: no parameter, statistic or global random state changes.
    """
    shape = tuple(dataset.sample_shape)
    if not hasattr(generator, "z_dim"):
        raise TypeError(f"the generator {type(generator).__name__} needs a `z_dim` attribute (the size"
                        " of its latent code): set self.z_dim = z_dim in its __init__.")
    z = torch.randn(2, int(generator.z_dim), generator=torch.Generator().manual_seed(0))
    cond = torch.zeros(2, dtype=torch.long) if num_classes else None

    def probe(net, *inputs):
        was_training = net.training
        net.eval()
        try:
            return net(*inputs)
        finally:
            net.train(was_training)

    try:
        fake = probe(generator, z) if cond is None else probe(generator, z, cond)
    except Exception as error:  # a factory/size mismatch inside the network
        raise ValueError(f"the generator {type(generator).__name__} fails on latent codes of shape"
                         f" {tuple(z.shape)}: {error}") from error
    if not isinstance(fake, torch.Tensor) or tuple(fake.shape[1:]) != shape:
        got = tuple(fake.shape[1:]) if isinstance(fake, torch.Tensor) else type(fake).__name__
        raise ValueError(
            f"the generator {type(generator).__name__} makes samples of shape {got} but the data's"
            f" samples have shape {shape}: size the generator for the data (declare image_size /"
            " channels or out_dim in its factory, or set --generator-kwargs)."
        )
    if metric_net is None:
        return
    real = torch.stack([dataset[i][0] for i in range(2)]).float()
    try:
        emb = probe(metric_net, real)
    except Exception as error:
        raise ValueError(f"the metric network {type(metric_net).__name__} cannot take the data's"
                         f" samples of shape {shape} (batch {tuple(real.shape)}): {error}") from error
    if not isinstance(emb, torch.Tensor) or emb.ndim != 2 or emb.shape[0] != 2:
        got = tuple(emb.shape) if isinstance(emb, torch.Tensor) else type(emb).__name__
        raise ValueError(f"the metric network {type(metric_net).__name__} maps a batch of shape"
                         f" {tuple(real.shape)} to {got}; it must return embeddings of shape (N, d).")


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


def describe_start(config: RunConfig, dataset) -> str:
    """One line naming the preset and the recipe the data's sample shape chose, printed at start."""
    kind = kind_of(dataset)
    return (f"preset {config.preset!r} with its {kind} recipe: data {config.data!r},"
            f" {len(dataset)} samples of shape {tuple(dataset.sample_shape)}")


def build_trainer(config: RunConfig, run_dir: str | Path | None = None, callbacks=(),
                  dataset=None) -> Trainer:
    """A ready-to-fit trainer for ``config`` (seeded: the same config gives the same run).

    ``dataset`` replaces the data ``config.data`` names (in-memory data, see :func:`mvm_core.train`).
    """
    from .registry import resolve

    if config.method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {config.method!r}.")
    torch.manual_seed(config.seed)
    dataset = build_dataset(config) if dataset is None else dataset
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


__all__ = ["build_dataset", "check_networks", "data_sizes", "describe_start", "build_matching", "build_networks", "build_objectives", "build_terms",
           "build_trainer"]
