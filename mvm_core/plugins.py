"""The plugin host: loads built-in and installed plugins and fills the registries from their hooks.

Built-ins (:data:`DEFAULT_PLUGINS`, modules of :mod:`mvm_core.default_plugins`) and third-party
plugins (entry points of the group ``mvm_core``) go through the same hooks (see
:mod:`mvm_core.hookspecs`). Loading is lazy: nothing is imported at ``import mvm_core``; the first
registry lookup imports the plugins, and the hooks of a kind run the first time that kind is used.

One broken plugin never breaks the host: entry points are loaded one at a time, and a plugin whose
import, hook validation or registration fails is reported (a :class:`PluginWarning` naming its
distribution, version, entry point and the original error), rolled back and skipped.

Environment switches (read when plugins are first loaded):

* ``MVM_CORE_STRICT_PLUGINS=1``: any plugin problem raises :class:`PluginError` instead;
* ``MVM_CORE_LOAD_PLUGINS=a,b``: load only these installed plugins (entry-point or distribution
  names; an empty value loads none);
* ``MVM_CORE_DISABLE_PLUGINS=a,b``: load every installed plugin but these.

The switches select installed plugins only; built-ins always load (replace a built-in name with
``override=True``). :func:`list_plugins` (and ``mvm plugins``) shows what loaded, what failed and why.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import traceback as _traceback
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pluggy

from . import hookspecs
from .registry import KINDS, Register, Registry, kind_of

ENTRY_POINT_GROUP = "mvm_core"
STRICT_ENV = "MVM_CORE_STRICT_PLUGINS"
LOAD_ENV = "MVM_CORE_LOAD_PLUGINS"
DISABLE_ENV = "MVM_CORE_DISABLE_PLUGINS"

# Built-in plugins, registered before installed ones (so that plugins can override them).
DEFAULT_PLUGINS: tuple[str, ...] = (
    "mvm_core.default_plugins.metric",
    "mvm_core.default_plugins.pml",
    "mvm_core.default_plugins.mining",
    "mvm_core.default_plugins.nets",
    "mvm_core.default_plugins.data",
    "mvm_core.default_plugins.metrics",
    "mvm_core.default_plugins.objectives",
)

Status = Literal["loaded", "failed", "disabled"]


class PluginError(RuntimeError):
    """A plugin problem in strict mode (``MVM_CORE_STRICT_PLUGINS=1``) or on explicit registration."""


class PluginWarning(UserWarning):
    """A plugin was skipped (or misbehaves) and the host goes on without it."""


@dataclass(frozen=True)
class PluginInfo:
    """What :func:`list_plugins` reports for one plugin.

    Attributes:
        name: plugin name (the entry-point name; the module name for built-ins).
        distribution, version: the installed distribution providing it (None when registered
            from code).
        entry_point: ``"name = module"`` as declared in the distribution's metadata.
        builtin: part of mvm-core itself.
        status: ``"loaded"``, ``"failed"`` or ``"disabled"``.
        hooks: the hooks it implements.
        registered: per kind, the names it registered (namespaces as ``"prefix:*"``).
        error: for a failed plugin, ``"ExceptionType: message"`` of the original error.
        traceback: the formatted traceback of that error.
        note: why a plugin is disabled.
        warnings: problems that did not stop it (implementations of unknown hooks).
    """

    name: str
    distribution: str | None
    version: str | None
    entry_point: str | None
    builtin: bool
    status: Status
    hooks: tuple[str, ...] = ()
    registered: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    note: str | None = None
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = asdict(self)
        out["hooks"] = list(self.hooks)
        out["registered"] = {k: list(v) for k, v in self.registered.items()}
        out["warnings"] = list(self.warnings)
        return out


@dataclass
class _Record:
    name: str
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None
    builtin: bool = False
    strict: bool = False  # registered from code: its problems raise
    status: Status = "loaded"
    plugin: object | None = None
    error: str | None = None
    traceback: str | None = None
    note: str | None = None
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        text = f"mvm-core plugin {self.name!r}"
        if self.distribution:
            text += f" (distribution {self.distribution} {self.version or '?'}"
            text += f", entry point '{self.entry_point}')" if self.entry_point else ")"
        return text


def _normalize(name: str | None) -> str:
    return (name or "").strip().lower().replace("_", "-").replace(".", "-")


def _env_flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise PluginError(f"environment variable {name} must be 1 or 0; got {raw!r}. Unset it or set {name}=1.")


def _env_names(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {_normalize(part) for part in raw.split(",") if part.strip()}


def _reraise_interrupt(error: BaseException) -> None:
    """A plugin's failure is contained, even ``sys.exit()``; the user's Ctrl-C is not."""
    if isinstance(error, (KeyboardInterrupt, GeneratorExit)):
        raise error


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class PluginHost:
    """A pluggy plugin manager for the ``mvm_core`` hooks plus one :class:`Registry` per kind.

    Args:
        builtins: modules registered first (default :data:`DEFAULT_PLUGINS`).
        entry_points: load installed plugins (entry-point group ``group``).
        group: the entry-point group.

    The process-wide host is :func:`get_host`; isolated hosts serve tests (:mod:`mvm_core.testing`).
    """

    def __init__(
        self,
        *,
        builtins: tuple[str, ...] | list[str] = DEFAULT_PLUGINS,
        entry_points: bool = True,
        group: str = ENTRY_POINT_GROUP,
    ):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.builtins = tuple(builtins)
        self.entry_points = entry_points
        self.group = group
        self._lock = threading.RLock()
        self._records: dict[str, _Record] = {}
        self._loaded = False
        self._strict = False
        self._registries = {
            kind: Registry(kind, populate=self._populator(kind), lock=self._lock) for kind in KINDS
        }

    def __repr__(self) -> str:
        return f"PluginHost({len(self._records)} plugins, loaded={self._loaded})"

    def _populator(self, kind: str):
        return lambda: self._populate(kind)

    # --- loading -------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        """Whether built-ins and entry points have been imported."""
        return self._loaded

    def load(self) -> None:
        """Import built-ins and installed plugins (once); hooks run later, per kind, on first use."""
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            self._strict = _env_flag(STRICT_ENV)
            from . import __version__

            for module_name in self.builtins:
                record = _Record(module_name, "mvm-core", __version__, builtin=True)
                try:
                    plugin = importlib.import_module(module_name)
                except BaseException as error:  # sys.exit() at import too; not Ctrl-C
                    _reraise_interrupt(error)
                    self._failed(record, error, "could not be imported")
                    continue
                self._add(record, plugin, strict=self._strict)
            if self.entry_points:
                self._load_entry_points()

    def _load_entry_points(self) -> None:
        from importlib import metadata

        only = _env_names(LOAD_ENV)
        disabled = _env_names(DISABLE_ENV) or set()
        found: list[tuple[Any, str | None, set[str]]] = []
        seen: set[tuple[str, str, str]] = set()
        for ep in metadata.entry_points(group=self.group):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            key = (_normalize(dist_name), ep.name, ep.value)
            if key not in seen:  # the same distribution can be found twice on sys.path
                seen.add(key)
                found.append((ep, dist_name, {_normalize(ep.name), _normalize(dist_name)} - {""}))
        # switches first: a typo there is reported before any plugin is imported
        known = set().union(*(ids for _, _, ids in found))
        installed = ", ".join(ep.name for ep, _, _ in found) or "none"
        for env, names in ((LOAD_ENV, only or set()), (DISABLE_ENV, disabled)):
            for missing in sorted(names - known):
                self._problem(
                    f"{env} names {missing!r}, but no installed plugin has that entry-point or"
                    f" distribution name (installed: {installed})."
                )
        for ep, dist_name, ids in found:
            dist = getattr(ep, "dist", None)
            record = _Record(
                ep.name, dist_name, dist.version if dist is not None else None,
                entry_point=f"{ep.name} = {ep.value}",
            )
            if only is not None and not ids & only:
                record.status, record.note = "disabled", f"not listed in {LOAD_ENV}"
                self._keep(record)
            elif ids & disabled:
                record.status, record.note = "disabled", f"listed in {DISABLE_ENV}"
                self._keep(record)
            else:
                try:
                    plugin = ep.load()
                except BaseException as error:  # sys.exit() at import too; not Ctrl-C
                    _reraise_interrupt(error)
                    self._failed(record, error, "could not be imported")
                    continue
                self._add(record, plugin, strict=self._strict)

    def _keep(self, record: _Record) -> None:
        name = record.name
        if name in self._records:  # two distributions using one entry-point name
            name = f"{record.name} ({record.distribution})"
            record.name = name
        self._records[name] = record

    def _problem(self, message: str, error: BaseException | None = None) -> None:
        if self._strict:
            raise PluginError(message) from error
        warnings.warn(message, PluginWarning, stacklevel=2)

    def _failed(self, record: _Record, error: BaseException, what: str) -> None:
        record.status = "failed"
        record.error = _error_text(error)
        record.traceback = "".join(_traceback.format_exception(error))
        record.plugin = None
        if record.name not in self._records or self._records[record.name] is not record:
            self._keep(record)
        if self._strict:
            advice = f"Fix or uninstall it, or skip it with {DISABLE_ENV}={record.name}."
        else:
            advice = (
                f"It is skipped; fix or uninstall it, skip it quietly with {DISABLE_ENV}="
                f"{record.name}, or make this an error with {STRICT_ENV}=1."
            )
        self._problem(f"{record.describe()} {what}: {record.error}. {advice}", error)

    def _add(self, record: _Record, plugin: object, *, strict: bool) -> None:
        """Register ``plugin`` with pluggy, check its hooks, run the hooks of kinds already used."""
        if record.name in self._records and self._records[record.name].status != "disabled":
            error = ValueError(
                f"a plugin named {record.name!r} is already registered"
                f" ({self._records[record.name].describe()})"
            )
            if strict:
                raise PluginError(f"{record.describe()} cannot be registered: {error}") from error
            self._failed(record, error, "cannot be registered")
            return
        try:
            self.pm.register(plugin, name=record.name)
        except Exception as error:  # e.g. pluggy.PluginValidationError: bad hookimpl arguments
            if strict:
                raise PluginError(f"{record.describe()} is invalid: {_error_text(error)}") from error
            self._failed(record, error, "is invalid")
            return
        record.plugin, record.status = plugin, "loaded"
        self._records[record.name] = record
        for message in self._unknown_hooks(plugin):
            record.warnings.append(message)
            if strict:
                self._remove(record)
                record.status, record.error = "failed", message
                raise PluginError(f"{record.describe()} {message}")
            self._problem(f"{record.describe()} {message}")
        for kind, registry in self._registries.items():
            if registry.populated and not self._run_hooks(record, kind, strict=strict):
                return

    def _unknown_hooks(self, plugin: object) -> list[str]:
        """Implementations of hooks that no spec declares (what pluggy's check_pending rejects)."""
        import difflib

        messages = []
        for caller in self.pm.get_hookcallers(plugin) or []:
            if caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not impl.optionalhook:
                    close = difflib.get_close_matches(caller.name, hookspecs.hook_names(), n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    messages.append(
                        f"implements unknown hook {caller.name!r}{hint}; it is never called. The"
                        f" hooks are: {', '.join(hookspecs.hook_names())}."
                    )
        return messages

    def _populate(self, kind: str) -> None:
        self.load()
        self._registries[kind].mark_populated()
        for record in list(self._records.values()):
            if record.status == "loaded":
                self._run_hooks(record, kind, strict=self._strict or record.strict)

    def _run_hooks(self, record: _Record, kind: str, *, strict: bool) -> bool:
        """Run ``record``'s ``mvm_register_<kind>`` implementation; roll it back on failure."""
        caller = getattr(self.pm.hook, hookspecs.HOOK_PREFIX + kind)
        for impl in caller.get_hookimpls():
            if impl.plugin is not record.plugin:
                continue
            try:
                if impl.hookwrapper or impl.wrapper:
                    raise TypeError(f"{caller.name} is a registration hook; it cannot be a wrapper")
                args = {"register": Register(self._registries[kind], record.name)}
                impl.function(**{name: args[name] for name in impl.argnames})
            except BaseException as error:  # sys.exit() in a hook too; not Ctrl-C
                _reraise_interrupt(error)
                self._remove(record)
                if strict:
                    record.status, record.error = "failed", _error_text(error)
                    raise PluginError(
                        f"{record.describe()} failed in {caller.name}: {_error_text(error)}"
                    ) from error
                self._failed(record, error, f"failed in {caller.name}")
                return False
        return True

    def _remove(self, record: _Record) -> None:
        for registry in self._registries.values():
            registry.remove_plugin(record.name)
        if record.plugin is not None and self.pm.is_registered(record.plugin):
            self.pm.unregister(record.plugin)

    # --- public API ----------------------------------------------------------------------------
    def registry(self, kind: str) -> Registry:
        """The registry of ``kind`` (filled on first use)."""
        return self._registries[kind_of(kind)]

    def register(self, plugin: object, name: str | None = None) -> str:
        """Add a plugin object (a module or any object with hookimpls) from code; returns its name.

        Unlike installed plugins, its problems raise :class:`PluginError` (and nothing it registered
        is left behind): the caller is code that can handle them. Kinds already used get its
        registrations now; the others when they are first used (where a failure raises too).
        """
        with self._lock:
            self.load()
            if name is None:  # a module's name, else the class name made unique
                base = getattr(plugin, "__name__", None) or type(plugin).__name__
                name, n = base, 1
                while name in self._records:
                    n += 1
                    name = f"{base}#{n}"
            if self.pm.is_registered(plugin):
                raise PluginError(
                    f"plugin object {plugin!r} is already registered as"
                    f" {self.pm.get_name(plugin)!r}; unregister it first."
                )
            record = _Record(name, strict=True)
            try:
                self._add(record, plugin, strict=True)
            except PluginError:
                if self._records.get(name) is record:
                    del self._records[name]
                raise
            return name

    def unregister(self, name: str) -> None:
        """Remove plugin ``name`` and everything it registered (restoring what it overrode)."""
        with self._lock:
            record = self._records.get(name)
            if record is None:
                raise KeyError(
                    f"no plugin named {name!r}; registered plugins: {sorted(self._records)}."
                )
            self._remove(record)
            del self._records[name]

    def plugins(self) -> list[PluginInfo]:
        """Every plugin known to this host with what it registered (runs every kind's hooks)."""
        with self._lock:
            self.load()
            for registry in self._registries.values():
                registry._ensure()
            infos = []
            for record in self._records.values():
                hooks: tuple[str, ...] = ()
                registered: dict[str, tuple[str, ...]] = {}
                if record.status == "loaded" and record.plugin is not None:
                    callers = self.pm.get_hookcallers(record.plugin) or []
                    hooks = tuple(sorted(c.name for c in callers))
                    for kind, registry in self._registries.items():
                        names = registry.registered_by(record.name)
                        if names:
                            registered[kind] = tuple(names)
                infos.append(PluginInfo(
                    name=record.name, distribution=record.distribution, version=record.version,
                    entry_point=record.entry_point, builtin=record.builtin, status=record.status,
                    hooks=hooks, registered=registered, error=record.error,
                    traceback=record.traceback, note=record.note, warnings=tuple(record.warnings),
                ))
            return infos


_host: PluginHost | None = None
_host_lock = threading.Lock()


def get_host() -> PluginHost:
    """The process-wide plugin host (created on first use; plugins load on first registry use)."""
    global _host
    if _host is None:
        with _host_lock:
            if _host is None:
                _host = PluginHost()
    return _host


def set_host(host: PluginHost | None) -> PluginHost | None:
    """Replace the process-wide host (None: a fresh one on next use); returns the previous one."""
    global _host
    with _host_lock:
        previous, _host = _host, host
    return previous


@contextlib.contextmanager
def use_host(host: PluginHost) -> Iterator[PluginHost]:
    """Make ``host`` the process-wide host inside a ``with`` block (tests, sandboxes)."""
    previous = set_host(host)
    try:
        yield host
    finally:
        set_host(previous)


def load_plugins() -> None:
    """Import built-in and installed plugins now instead of on first registry use."""
    get_host().load()


def list_plugins() -> list[PluginInfo]:
    """Every plugin: name, distribution, version, hooks, what it registered, status and error."""
    return get_host().plugins()


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a plugin object from code in the process-wide host; returns its name."""
    return get_host().register(plugin, name)


def unregister_plugin(name: str) -> None:
    """Remove a plugin (and its registrations) from the process-wide host."""
    get_host().unregister(name)


__all__ = [
    "DEFAULT_PLUGINS", "DISABLE_ENV", "ENTRY_POINT_GROUP", "LOAD_ENV", "STRICT_ENV", "PluginError",
    "PluginHost", "PluginInfo", "PluginWarning", "get_host", "list_plugins", "load_plugins",
    "register_plugin", "set_host", "unregister_plugin", "use_host",
]
