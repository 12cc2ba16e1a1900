"""Plugin hook specifications: the only place the ``mvm_*`` hooks are declared.

A plugin is a module (or any object) with functions decorated by :data:`hookimpl` whose names are
hook names below. Every hook is a *registration* hook: it receives ``register``, a
:class:`mvm_core.registry.Register` bound to one registry and to the calling plugin, and calls it
once per thing it provides::

    from mvm_core import hookimpl

    @hookimpl
    def mvm_register_regularizers(register):
        register("myplugin:Smoothness", Smoothness, description="penalize jumps between codes")

``register(name, factory, *, description=None, override=False)`` adds one name; names are
``"<prefix>:<Name>"`` with the plugin's own prefix. ``register.namespace(prefix, factory, *,
list_names, contains=None, description, override=False)`` claims a whole prefix whose names come
from a catalogue (e.g. ``timm:<any timm model>``). Hooks run lazily, the first time a registry of
their kind is used, in plugin order: built-ins first, then installed plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # registry is light, but keep this module free of runtime imports from mvm_core
    from .registry import Register

PROJECT = "mvm_core"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

HOOK_PREFIX = "mvm_register_"


@hookspec
def mvm_register_backbones(register: Register) -> None:
    """Register metric networks: modules mapping a batch of samples to embeddings ``(N, d)``.

    Args:
        register: call ``register(name, factory, description=...)``; ``factory(**kwargs)`` returns
            a ``torch.nn.Module`` whose output is one ``d``-dimensional embedding per sample.
    """


@hookspec
def mvm_register_generators(register: Register) -> None:
    """Register generators: modules mapping latent codes ``(N, z_dim)`` to samples.

    Args:
        register: call ``register(name, factory, description=...)``; ``factory(**kwargs)`` returns
            a ``torch.nn.Module`` taking ``z`` (and ``cond`` when conditional) and returning samples
            in mvm-core's convention (vectors, or images ``(N, C, H, W)`` in ``[-1, 1]``).
    """


@hookspec
def mvm_register_feature_extractors(register: Register) -> None:
    """Register frozen feature extractors (GFMN features, evaluation networks).

    Args:
        register: call ``register(name, factory, description=...)``; ``factory(**kwargs)`` returns
            a :class:`mvm_core.features.FeatureExtractor` (images in ``[-1, 1]`` to named layers).
    """


@hookspec
def mvm_register_regularizers(register: Register) -> None:
    """Register generator terms added to the generator objective (mode seeking, feature matching).

    Args:
        register: call ``register(name, factory, description=...)``; ``factory(**kwargs)`` returns
            a :class:`mvm_core.context.GeneratorTerm`: ``term(ctx) -> scalar`` on a
            :class:`~mvm_core.context.StepContext`, with ``needs_pairs = True`` to get paired codes.
    """


@hookspec
def mvm_register_metric_losses(register: Register) -> None:
    """Register losses for the metric network (pytorch-metric-learning compatible).

    Args:
        register: call ``register(name, factory, description=...)``; ``factory(**kwargs)`` returns
            a pml ``BaseMetricLossFunction`` (or loss wrapper) called as
            ``loss(embeddings, labels, indices_tuple)`` with labels ``REAL = 0`` / ``FAKE = 1``.
    """


@hookspec
def mvm_register_miners(register: Register) -> None:
    """Register tuple miners for the metric loss (pytorch-metric-learning compatible).

    Args:
        register: call ``register(name, factory, description=...)``; ``factory(**kwargs)`` returns
            a pml ``BaseMiner`` returning pair or triplet indices from ``(embeddings, labels)``.
    """


@hookspec
def mvm_register_distances(register: Register) -> None:
    """Register distances between embeddings (pytorch-metric-learning compatible).

    Args:
        register: call ``register(name, factory, description=...)``; ``factory(**kwargs)`` returns
            a pml ``BaseDistance`` (a distance or, with ``is_inverted``, a similarity).
    """


@hookspec
def mvm_register_reducers(register: Register) -> None:
    """Register loss reducers: how per-tuple losses become one scalar (pml compatible).

    Args:
        register: call ``register(name, factory, description=...)``; ``factory(**kwargs)`` returns
            a pml ``BaseReducer``.
    """


@hookspec
def mvm_register_datasets(register: Register) -> None:
    """Register datasets of real samples to train on and evaluate against.

    Args:
        register: call ``register(name, factory, description=...)``; ``factory(**kwargs)`` returns
            a dataset of real samples (see :mod:`mvm_core.data` for the built-in conventions).
    """


@hookspec
def mvm_register_metrics(register: Register) -> None:
    """Register evaluation metrics computed on real and generated samples or their features.

    Args:
        register: call ``register(name, factory, description=...)``; ``factory(**kwargs)`` returns
            a callable metric (see :mod:`mvm_core.metrics` for the built-in conventions).
    """


def hook_names() -> tuple[str, ...]:
    """Names of every hook declared here, in declaration order."""
    return tuple(name for name in globals() if name.startswith(HOOK_PREFIX))


def kinds() -> tuple[str, ...]:
    """The registry kinds, one per registration hook (``mvm_register_<kind>``)."""
    return tuple(name[len(HOOK_PREFIX) :] for name in hook_names())
