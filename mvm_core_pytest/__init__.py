"""mvm-core's pytest plugin (pytest11 entry point): fixtures for plugin authors.

pytest imports this module at the start of every session in an environment with mvm-core, so it
imports nothing heavy: torch and mvm-core load inside a fixture, when a test asks for one. The
fixtures and the helpers behind them are documented in :mod:`mvm_core.testing` (which
re-exports them for ``pytest_plugins = ["mvm_core.testing"]``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def mvm_plugins() -> Iterator[Any]:
    """A fresh plugin host with mvm-core's built-ins only, current for this test."""
    from mvm_core.plugins import PluginHost, use_host

    host = PluginHost(entry_points=False)
    with use_host(host):
        yield host


@pytest.fixture
def mvm_installed_plugins() -> Iterator[Any]:
    """A fresh host with built-ins and installed plugins (under the MVM_CORE_* switches), current for this test."""
    from mvm_core.plugins import PluginHost, use_host

    host = PluginHost(entry_points=True)
    with use_host(host):
        yield host


@pytest.fixture
def mvm_register_plugin(mvm_plugins) -> Iterator[Callable[..., str]]:
    """``register(plugin, name=None) -> name``: add a plugin object to the test's host."""
    names: list[str] = []

    def register(plugin: object, name: str | None = None) -> str:
        registered = mvm_plugins.register(plugin, name)
        names.append(registered)
        return registered

    yield register
    for name in reversed(names):
        with contextlib.suppress(KeyError):
            mvm_plugins.unregister(name)


@pytest.fixture
def mvm_fake_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Path]]:
    """``make(name, *, entry_points, modules=None, version="0.1.0") -> site``: a throw-away install.

    The site directory is prepended to ``sys.path`` for the test; the modules it held are
    removed from ``sys.modules`` afterwards.
    """
    from mvm_core.testing import write_distribution

    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    written: list[str] = []

    def make(
        name: str,
        *,
        entry_points: Mapping[str, str],
        modules: Mapping[str, str] | None = None,
        version: str = "0.1.0",
        group: str = "mvm_core",
    ) -> Path:
        write_distribution(site, name, version=version, entry_points=entry_points, group=group,
                           modules=modules)
        written.extend(modules or {})
        return site

    yield make
    for module in written:
        top = module.split(".")[0]
        for loaded in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            del sys.modules[loaded]


@pytest.fixture
def mvm_tiny_backbone() -> Callable[..., Any]:
    """The :func:`mvm_core.testing.tiny_backbone` factory."""
    from mvm_core.testing import tiny_backbone

    return tiny_backbone


@pytest.fixture
def mvm_tiny_generator() -> Callable[..., Any]:
    """The :func:`mvm_core.testing.tiny_generator` factory."""
    from mvm_core.testing import tiny_generator

    return tiny_generator


@pytest.fixture
def mvm_step_context() -> Callable[..., Any]:
    """The :func:`mvm_core.testing.make_step_context` factory."""
    from mvm_core.testing import make_step_context

    return make_step_context


__all__ = [
    "mvm_fake_distribution", "mvm_installed_plugins", "mvm_plugins", "mvm_register_plugin",
    "mvm_step_context", "mvm_tiny_backbone", "mvm_tiny_generator",
]
