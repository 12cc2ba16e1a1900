"""pytest plugin for plugin authors: isolated plugin hosts, per-test plugins and tiny networks.

Installed with mvm-core (pytest11 entry point ``mvm_core_pytest``, a module that imports torch
only when a test asks for one of its fixtures), so a plugin's tests use the fixtures directly::

    def test_my_regularizer(mvm_register_plugin, mvm_step_context):
        import my_plugin
        mvm_register_plugin(my_plugin)                       # for this test only
        term = mvm_core.create_regularizer("mine:Smoothness")
        ctx = mvm_step_context(batch_size=8, pairs=term.needs_pairs)
        assert term(ctx).ndim == 0

Fixtures:

* ``mvm_plugins``: a fresh :class:`~mvm_core.plugins.PluginHost` with the built-ins only, made
  the process-wide host for the test (registries and ``create_*``/``list_*`` use it);
* ``mvm_installed_plugins``: the same plus the installed plugins (checks your entry point);
* ``mvm_register_plugin``: ``register(plugin, name=None)`` adds a plugin object for one test;
* ``mvm_fake_distribution``: ``make(name, entry_points=..., modules=...)`` installs a throw-away
  distribution (``.dist-info`` with ``METADATA`` and ``entry_points.txt``) on ``sys.path``;
* ``mvm_tiny_backbone``, ``mvm_tiny_generator``, ``mvm_step_context``: factories of tiny
  random-init networks and of a :class:`~mvm_core.context.StepContext` built from them
  (also importable as plain functions: :func:`tiny_backbone`, ...).

Everything is offline, seeded, and runs in milliseconds on CPU.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from mvm_core_pytest import (  # the fixtures, re-exported for `pytest_plugins = ["mvm_core.testing"]`
    mvm_fake_distribution,
    mvm_installed_plugins,
    mvm_plugins,
    mvm_register_plugin,
    mvm_step_context,
    mvm_tiny_backbone,
    mvm_tiny_generator,
)

from .context import StepContext

# --- tiny networks -------------------------------------------------------------------------------


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Deterministic init without touching the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _check_shape(name: str, shape: object) -> tuple[int, ...]:
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) not in (1, 3)
        or not all(isinstance(s, int) and s > 0 for s in shape)
    ):
        raise ValueError(
            f"{name} must be (D,) for vectors or (C, H, W) for images, positive ints; got {shape!r}."
        )
    return tuple(shape)


class _TinyBackbone(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], emb_dim: int):
        super().__init__()
        self.input_shape = input_shape
        if len(input_shape) == 1:
            self.body = nn.Sequential(
                nn.Linear(input_shape[0], 16), nn.LeakyReLU(0.2), nn.Linear(16, emb_dim)
            )
        else:
            self.body = nn.Sequential(
                nn.Conv2d(input_shape[0], 8, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, emb_dim),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _TinyGenerator(nn.Module):
    def __init__(self, z_dim: int, output_shape: tuple[int, ...], num_classes: int | None):
        super().__init__()
        self.z_dim, self.output_shape, self.num_classes = z_dim, output_shape, num_classes
        self.embed = nn.Embedding(num_classes, z_dim) if num_classes else None
        self.body = nn.Sequential(
            nn.Linear(z_dim, 16), nn.LeakyReLU(0.2), nn.Linear(16, math.prod(output_shape))
        )

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if cond is None:
                raise ValueError("this tiny generator is conditional: pass cond (class ids (N,)).")
            z = z + self.embed(cond)
        x = self.body(z).view(z.shape[0], *self.output_shape)
        return torch.tanh(x) if len(self.output_shape) == 3 else x


def tiny_backbone(
    input_shape: tuple[int, ...] = (2,), emb_dim: int = 4, *, seed: int = 0
) -> nn.Module:
    """A random-init metric network ``(N, *input_shape) -> (N, emb_dim)``.

    Vectors ``(D,)`` get a 2-layer MLP, images ``(C, H, W)`` one strided conv and a linear head.
    """
    input_shape = _check_shape("input_shape", input_shape)
    if not isinstance(emb_dim, int) or emb_dim < 1:
        raise ValueError(f"emb_dim must be a positive int; got {emb_dim!r}.")
    with _seeded(seed):
        return _TinyBackbone(input_shape, emb_dim)


def tiny_generator(
    z_dim: int = 2,
    output_shape: tuple[int, ...] = (2,),
    *,
    num_classes: int | None = None,
    seed: int = 0,
) -> nn.Module:
    """A random-init generator ``z (N, z_dim)[, cond (N,)] -> (N, *output_shape)``.

    Images ``(C, H, W)`` come out in ``[-1, 1]`` (tanh); ``num_classes`` makes it conditional.
    """
    output_shape = _check_shape("output_shape", output_shape)
    if not isinstance(z_dim, int) or z_dim < 1:
        raise ValueError(f"z_dim must be a positive int; got {z_dim!r}.")
    with _seeded(seed):
        return _TinyGenerator(z_dim, output_shape, num_classes)


def make_step_context(
    batch_size: int = 8,
    *,
    z_dim: int = 2,
    sample_shape: tuple[int, ...] = (2,),
    emb_dim: int = 4,
    pairs: bool = False,
    num_classes: int | None = None,
    step: int = 0,
    seed: int = 0,
) -> StepContext:
    """A generator-step context from tiny nets, as the trainer builds it.

    ``fake`` and ``fake_emb`` carry gradients to the generator. With ``pairs`` the batch is two
    halves sharing conditions (``z[i]`` and ``z[i + B // 2]`` under ``cond[i]``); with
    ``num_classes`` the generator is conditional and ``cond``/``real_cond`` are class ids.
    """
    if pairs and (batch_size < 2 or batch_size % 2):
        raise ValueError(f"a paired batch needs an even batch_size >= 2; got {batch_size}.")
    generator = tiny_generator(z_dim, sample_shape, num_classes=num_classes, seed=seed)
    metric_net = tiny_backbone(sample_shape, emb_dim, seed=seed + 1)
    rng = torch.Generator().manual_seed(seed)
    n_codes = batch_size // 2 if pairs else batch_size
    cond = real_cond = None
    if num_classes:
        cond = torch.randint(num_classes, (n_codes,), generator=rng)
        real_cond = torch.randint(num_classes, (batch_size,), generator=rng)
        if pairs:
            cond = torch.cat([cond, cond])
    z = torch.randn(batch_size, z_dim, generator=rng)
    real = torch.randn(batch_size, *sample_shape, generator=rng)
    if len(sample_shape) == 3:
        real = torch.tanh(real)
    fake = generator(z, cond) if num_classes else generator(z)
    return StepContext(
        step=step, z=z, fake=fake, real=real, fake_emb=metric_net(fake),
        real_emb=metric_net(real), cond=cond, real_cond=real_cond, pairs=pairs,
        generator=generator, metric_net=metric_net,
    )


# --- fake installed distributions ----------------------------------------------------------------


def write_distribution(
    site: str | Path,
    name: str,
    *,
    version: str = "0.1.0",
    entry_points: Mapping[str, str] | None = None,
    group: str = "mvm_core",
    modules: Mapping[str, str] | None = None,
) -> Path:
    """Write a minimal installed distribution into directory ``site`` (put it on ``sys.path``).

    Args:
        site: a directory that is (or will be) on ``sys.path``.
        name: the distribution name (``METADATA``'s ``Name``).
        version: its version.
        entry_points: ``{entry-point name: "module[:attr]"}`` in ``group``.
        group: the entry-point group (mvm-core's is ``"mvm_core"``).
        modules: ``{module name: source}`` written next to it (``a.b`` makes a package ``a``).

    Returns the ``.dist-info`` directory, found by ``importlib.metadata`` like any install.
    """
    site = Path(site)
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = [f"[{group}]"] + [f"{ep} = {target}" for ep, target in (entry_points or {}).items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for module, source in (modules or {}).items():
        parts = module.split(".")
        folder = site.joinpath(*parts[:-1])
        folder.mkdir(parents=True, exist_ok=True)
        for depth in range(1, len(parts)):
            init = site.joinpath(*parts[:depth], "__init__.py")
            if not init.exists():
                init.write_text("", encoding="utf-8")
        (folder / f"{parts[-1]}.py").write_text(source, encoding="utf-8")
    importlib.invalidate_caches()
    return dist_info


__all__ = [
    "make_step_context", "mvm_fake_distribution", "mvm_installed_plugins", "mvm_plugins",
    "mvm_register_plugin", "mvm_step_context", "mvm_tiny_backbone", "mvm_tiny_generator",
    "tiny_backbone", "tiny_generator", "write_distribution",
]
