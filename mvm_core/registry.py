"""Registries of named factories: one per kind, filled by plugins, used by names in code and configs.

Names are namespaced ``"<prefix>:<Name>"``: ``mvm:`` for mvm-core's built-ins, ``pml:`` for
everything pytorch-metric-learning provides (discovered by introspection), and a plugin's own
prefix for its names (``timm:``, ``msgan:``). ::

    >>> import mvm_core
    >>> mvm_core.list_metric_losses("pml:*Triplet*")
    ['pml:TripletMarginLoss']
    >>> loss = mvm_core.create_metric_loss("pml:TripletMarginLoss", margin=0.2)
    >>> miner = mvm_core.resolve("miners", "mvm:RealFakeTripletMiner")   # name or object

Patterns use shell wildcards (``*``, ``?``, ``[seq]``), case-insensitively. A plugin may claim a
whole prefix backed by a catalogue (a *namespace*, e.g. every timm model under ``timm:``): a plain
listing shows it as one ``timm:*`` row, and a pattern that names the prefix (``"timm:test_*"``)
lists the catalogue. Unknown names raise :class:`UnknownNameError` with the closest names.

The registries are filled lazily, the first time one is used, by the plugin host
(:mod:`mvm_core.plugins`); this module is the data structure and the user-facing functions.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

# kind -> singular noun used in messages and in the create_* function names
KIND_NOUNS: dict[str, str] = {
    "backbones": "backbone",
    "generators": "generator",
    "feature_extractors": "feature extractor",
    "regularizers": "regularizer",
    "metric_losses": "metric loss",
    "miners": "miner",
    "distances": "distance",
    "reducers": "reducer",
    "datasets": "dataset",
    "metrics": "metric",
}
KINDS: tuple[str, ...] = tuple(KIND_NOUNS)

_PREFIX_RE = re.compile(r"^[a-z][a-z0-9_.-]*$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]*:[^\s*?\[\]:]+$")
_WILDCARDS = set("*?[")


class RegistryError(Exception):
    """Base class of registry errors."""


class UnknownNameError(RegistryError, LookupError):
    """A name that no plugin registered; the message lists the closest names."""


class DuplicateNameError(RegistryError, ValueError):
    """A name registered twice without ``override=True``."""


class UnknownKindError(RegistryError, LookupError):
    """A kind that is not one of :data:`KINDS`."""


@dataclass(frozen=True)
class Entry:
    """One registered name.

    Attributes:
        name: the full name, ``"<prefix>:<Name>"``.
        kind: the registry kind (``"metric_losses"``, ...).
        factory: ``factory(**kwargs)`` builds the object.
        plugin: name of the plugin that registered it.
        description: one line saying what it is.
        overrides: plugins whose entries of the same name this one replaced, oldest first.
        namespace: true for the ``"<prefix>:*"`` row of a catalogue-backed namespace.
    """

    name: str
    kind: str
    factory: Callable[..., Any]
    plugin: str
    description: str
    overrides: tuple[str, ...] = ()
    namespace: bool = False

    @property
    def prefix(self) -> str:
        return self.name.split(":", 1)[0]


@dataclass(frozen=True)
class _Namespace:
    prefix: str
    factory: Callable[..., Any]
    list_names: Callable[[], Iterable[str]]
    contains: Callable[[str], bool] | None
    plugin: str
    description: str


def kind_of(kind: str) -> str:
    """Canonical kind for ``kind`` (plural, singular, or with dashes: ``"metric-loss"``)."""
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a string, one of {list(KINDS)}; got {type(kind).__name__}.")
    key = kind.strip().lower().replace("-", "_").replace(" ", "_")
    if key in KIND_NOUNS:
        return key
    for plural, noun in KIND_NOUNS.items():
        if key == noun.replace(" ", "_"):
            return plural
    import difflib

    close = difflib.get_close_matches(key, KINDS, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownKindError(f"kind must be one of {list(KINDS)}; got {kind!r}.{hint}")


def _one_line(text: str | None) -> str:
    for line in (text or "").strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def _describe(factory: Callable[..., Any], description: str | None) -> str:
    line = _one_line(description) or _one_line(getattr(factory, "__doc__", None))
    if line:
        return line
    module = getattr(factory, "__module__", None) or ""
    qualname = getattr(factory, "__qualname__", None) or type(factory).__name__
    return f"{module}.{qualname}" if module else qualname


def _match(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


class Registry:
    """Named factories of one kind.

    Plugins add names through a :class:`Register`; users call :meth:`create`, :meth:`list`,
    :meth:`get` and :meth:`entries`. ``populate``, when given, is called once before the first
    lookup (the plugin host runs the registration hooks there); ``lock`` is shared with the host.
    """

    def __init__(
        self,
        kind: str,
        populate: Callable[[], None] | None = None,
        lock: Any = None,
    ):
        self.kind = kind_of(kind)
        self.noun = KIND_NOUNS[self.kind]
        self._populate = populate
        self._populated = populate is None
        self._stacks: dict[str, list[Entry]] = {}  # name -> entries, the last one active
        self._namespaces: dict[str, list[_Namespace]] = {}  # prefix -> namespaces, last active
        self._lock = lock if lock is not None else threading.RLock()

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._stacks)} names, {len(self._namespaces)} namespaces)"

    # --- filling -------------------------------------------------------------------------------
    def _ensure(self) -> None:
        if self._populated:
            return
        with self._lock:
            if self._populated:
                return
            assert self._populate is not None
            self._populate()  # calls mark_populated() before running the hooks
            self._populated = True

    def mark_populated(self) -> None:
        """Record that the hooks of this kind are running (lookups from inside them must not recurse)."""
        self._populated = True

    @property
    def populated(self) -> bool:
        """Whether the registration hooks for this kind have run."""
        return self._populated

    def add(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        plugin: str,
        description: str | None = None,
        override: bool = False,
    ) -> Entry:
        """Register ``factory`` under ``name`` (see :class:`Register` for the plugin-facing form)."""
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(
                f"{self.noun} name must look like '<prefix>:<Name>' with a lowercase prefix naming"
                f" the plugin and no spaces or wildcards (e.g. 'myplugin:MyThing'); got {name!r}."
            )
        if not callable(factory):
            raise TypeError(
                f"factory for {self.noun} {name!r} must be callable (a class or a function"
                f" returning the object); got {type(factory).__name__}."
            )
        with self._lock:
            stack = self._stacks.setdefault(name, [])
            if stack and not override:
                raise DuplicateNameError(
                    f"{self.noun} {name!r} is already registered by plugin {stack[-1].plugin!r};"
                    f" plugin {plugin!r} cannot register it again. Use a name with your own prefix,"
                    " or pass override=True to replace it on purpose."
                )
            entry = Entry(
                name=name,
                kind=self.kind,
                factory=factory,
                plugin=plugin,
                description=_describe(factory, description),
                overrides=tuple(e.plugin for e in stack),
            )
            stack.append(entry)
            return entry

    def add_namespace(
        self,
        prefix: str,
        factory: Callable[..., Any],
        *,
        plugin: str,
        list_names: Callable[[], Iterable[str]],
        contains: Callable[[str], bool] | None = None,
        description: str | None = None,
        override: bool = False,
    ) -> Entry:
        """Claim every ``"<prefix>:<name>"`` for the names of a catalogue.

        ``factory(name, **kwargs)`` builds one (``name`` without the prefix); ``list_names()``
        returns the catalogue's names; ``contains(name)`` tells whether a name is valid (default:
        membership in ``list_names()``; give it when names have variants, like timm's tags).
        """
        if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
            raise ValueError(
                f"namespace prefix must be lowercase letters, digits, '_', '-' or '.', starting"
                f" with a letter and without the ':' (e.g. 'timm'); got {prefix!r}."
            )
        for arg, value in (("factory", factory), ("list_names", list_names)):
            if not callable(value):
                raise TypeError(f"{arg} for namespace {prefix!r} must be callable; got {value!r}.")
        if contains is not None and not callable(contains):
            raise TypeError(f"contains for namespace {prefix!r} must be callable or None.")
        with self._lock:
            stack = self._namespaces.setdefault(prefix, [])
            if stack and not override:
                raise DuplicateNameError(
                    f"{self.noun} namespace '{prefix}:' is already claimed by plugin"
                    f" {stack[-1].plugin!r}; plugin {plugin!r} cannot claim it again. Use your own"
                    " prefix, or pass override=True to replace it on purpose."
                )
            ns = _Namespace(prefix, factory, list_names, contains, plugin,
                            _describe(factory, description))
            stack.append(ns)
            return self._namespace_row(prefix)

    def remove_plugin(self, plugin: str) -> list[str]:
        """Drop everything ``plugin`` registered (restoring what it overrode); returns the names."""
        removed: list[str] = []
        with self._lock:
            for name in list(self._stacks):
                stack = self._stacks[name]
                kept = [e for e in stack if e.plugin != plugin]
                if len(kept) != len(stack):
                    removed.append(name)
                    if kept:
                        # recompute the override chain of what stays
                        self._stacks[name] = [
                            _replace_overrides(e, tuple(k.plugin for k in kept[:i]))
                            for i, e in enumerate(kept)
                        ]
                    else:
                        del self._stacks[name]
            for prefix in list(self._namespaces):
                stack = self._namespaces[prefix]
                kept_ns = [ns for ns in stack if ns.plugin != plugin]
                if len(kept_ns) != len(stack):
                    removed.append(f"{prefix}:*")
                    if kept_ns:
                        self._namespaces[prefix] = kept_ns
                    else:
                        del self._namespaces[prefix]
        return removed

    def registered_by(self, plugin: str) -> list[str]:
        """Names ``plugin`` registered here (active or overridden), namespaces as ``prefix:*``."""
        with self._lock:
            names = [n for n, stack in self._stacks.items() if any(e.plugin == plugin for e in stack)]
            names += [
                f"{p}:*" for p, stack in self._namespaces.items()
                if any(ns.plugin == plugin for ns in stack)
            ]
        return sorted(names)

    # --- lookup --------------------------------------------------------------------------------
    def _namespace_row(self, prefix: str) -> Entry:
        stack = self._namespaces[prefix]
        ns = stack[-1]
        return Entry(
            name=f"{prefix}:*",
            kind=self.kind,
            factory=ns.factory,
            plugin=ns.plugin,
            description=ns.description,
            overrides=tuple(s.plugin for s in stack[:-1]),
            namespace=True,
        )

    def _namespace_entry(self, ns: _Namespace, short: str) -> Entry:
        def factory(**kwargs: Any) -> Any:
            return ns.factory(short, **kwargs)

        factory.__doc__ = ns.description
        return Entry(f"{ns.prefix}:{short}", self.kind, factory, ns.plugin, ns.description)

    def _namespace_names(self, prefix: str) -> list[str]:
        ns = self._namespaces[prefix][-1]
        return [f"{prefix}:{short}" for short in ns.list_names()]

    def get(self, name: str) -> Entry:
        """The entry for ``name``; :class:`UnknownNameError` (with close names) when there is none."""
        if not isinstance(name, str):
            raise TypeError(
                f"{self.noun} name must be a string like 'prefix:Name'; got {type(name).__name__}."
            )
        self._ensure()
        with self._lock:
            stack = self._stacks.get(name)
            if stack:
                return stack[-1]
            prefix, sep, short = name.partition(":")
            if sep and short and prefix in self._namespaces:
                ns = self._namespaces[prefix][-1]
                known = ns.contains(short) if ns.contains else short in set(ns.list_names())
                if known:
                    return self._namespace_entry(ns, short)
        raise UnknownNameError(self._unknown_message(name))

    def _unknown_message(self, name: str) -> str:
        import difflib  # only on the error path

        with self._lock:
            candidates = list(self._stacks)
            prefixes = sorted({n.split(":", 1)[0] for n in self._stacks} | set(self._namespaces))
            namespaces = list(self._namespaces)
        for prefix in namespaces:
            try:
                candidates += self._namespace_names(prefix)
            except Exception:  # a catalogue that cannot be listed must not hide the real error
                pass
        lowered = {c.lower(): c for c in candidates}
        close = [lowered[c] for c in difflib.get_close_matches(name.lower(), lowered, n=5, cutoff=0.6)]
        short = name.rpartition(":")[2].lower()
        same_short = [c for c in candidates if c.rpartition(":")[2].lower() == short]
        suggestions = list(dict.fromkeys(same_short + close))[:5]
        message = f"unknown {self.noun} {name!r}."
        if suggestions:
            message += f" Did you mean {', '.join(repr(s) for s in suggestions)}?"
        prefix = name.partition(":")[0] if ":" in name else None
        if prefix is not None and prefix not in prefixes:
            message += (
                f" No loaded plugin provides the prefix '{prefix}:' for {self.kind} (prefixes:"
                f" {', '.join(p + ':' for p in prefixes) or 'none'}); check that the plugin is"
                " installed and loads with `mvm plugins`."
            )
        elif ":" not in name:
            message += " Names carry their plugin's prefix, like 'pml:TripletMarginLoss'."
        message += f" See the available names with `mvm list {self.kind}`."
        return message

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.get(name)
        except UnknownNameError:
            return False
        return True

    def create(self, name: str, /, **kwargs: Any) -> Any:
        """Build the object registered as ``name`` with ``kwargs``."""
        entry = self.get(name)
        try:
            return entry.factory(**kwargs)
        except Exception as error:
            if hasattr(error, "add_note"):
                error.add_note(
                    f"while creating {self.noun} {name!r} (registered by plugin {entry.plugin!r})"
                    f" with arguments {sorted(kwargs)}"
                )
            raise

    def entries(self, pattern: str = "*") -> list[Entry]:
        """Entries whose names match ``pattern`` (shell wildcards, case-insensitive), sorted.

        A namespace appears as one ``"<prefix>:*"`` row unless ``pattern`` names its prefix
        literally (``"timm:res*"``), in which case its catalogue is listed.
        """
        if not isinstance(pattern, str) or not pattern:
            raise TypeError(
                f"pattern must be a non-empty string with shell wildcards such as '*' or 'pml:*';"
                f" got {pattern!r}."
            )
        self._ensure()
        prefix, sep, _ = pattern.partition(":")
        expand = sep and not (_WILDCARDS & set(prefix))
        with self._lock:
            out = {e.name: e for e in (s[-1] for s in self._stacks.values()) if _match(e.name, pattern)}
            for ns_prefix in self._namespaces:
                if expand and ns_prefix == prefix:
                    ns = self._namespaces[ns_prefix][-1]
                    for full in self._namespace_names(ns_prefix):
                        if full not in out and _match(full, pattern):
                            out[full] = self._namespace_entry(ns, full.split(":", 1)[1])
                else:
                    row = self._namespace_row(ns_prefix)
                    if _match(row.name, pattern):
                        out[row.name] = row
        return [out[name] for name in sorted(out, key=str.lower)]

    def list(self, pattern: str = "*") -> list[str]:
        """Names matching ``pattern`` (see :meth:`entries`), sorted."""
        return [e.name for e in self.entries(pattern)]

    def __len__(self) -> int:
        self._ensure()
        return len(self._stacks) + len(self._namespaces)


def _replace_overrides(entry: Entry, overrides: tuple[str, ...]) -> Entry:
    return replace(entry, overrides=overrides)


class Register:
    """The ``register`` argument of the ``mvm_register_<kind>`` hooks: one registry, one plugin.

    ``register(name, factory, *, description=None, override=False)`` adds a name;
    :meth:`namespace` claims a catalogue-backed prefix. Every entry records ``plugin``.
    """

    def __init__(self, registry: Registry, plugin: str):
        self.registry = registry
        self.plugin = plugin
        self.added: list[str] = []

    @property
    def kind(self) -> str:
        return self.registry.kind

    def __repr__(self) -> str:
        return f"<Register {self.kind} for plugin {self.plugin!r}>"

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        description: str | None = None,
        override: bool = False,
    ) -> Entry:
        """Register ``factory`` as ``name`` (``"<prefix>:<Name>"``).

        Args:
            name: full name with your plugin's prefix.
            factory: a class or function; ``factory(**kwargs)`` builds the object.
            description: one line (default: the first line of ``factory``'s docstring).
            override: replace an existing entry of the same name instead of raising.
        """
        entry = self.registry.add(
            name, factory, plugin=self.plugin, description=description, override=override
        )
        self.added.append(entry.name)
        return entry

    def namespace(
        self,
        prefix: str,
        factory: Callable[..., Any],
        *,
        list_names: Callable[[], Iterable[str]],
        contains: Callable[[str], bool] | None = None,
        description: str | None = None,
        override: bool = False,
    ) -> Entry:
        """Claim every ``"<prefix>:<name>"`` of a catalogue (see :meth:`Registry.add_namespace`).

        Args:
            prefix: the prefix without ``:`` (e.g. ``"timm"``).
            factory: ``factory(name, **kwargs)`` builds the object for ``name`` (prefix removed).
            list_names: returns the catalogue's names (called only when listing or suggesting).
            contains: tells whether a name is valid (default: membership in ``list_names()``).
            description: one line for listings.
            override: replace an existing namespace with the same prefix instead of raising.
        """
        entry = self.registry.add_namespace(
            prefix, factory, plugin=self.plugin, list_names=list_names, contains=contains,
            description=description, override=override,
        )
        self.added.append(entry.name)
        return entry


# --- the user-facing functions: they use the current plugin host's registries -------------------
def get_registry(kind: str) -> Registry:
    """The registry of ``kind`` in the current plugin host (plural, singular or dashed kind)."""
    from .plugins import get_host

    return get_host().registry(kind_of(kind))


def create(kind: str, name: str, /, **kwargs: Any) -> Any:
    """Build the ``kind`` registered as ``name`` with ``kwargs``."""
    return get_registry(kind).create(name, **kwargs)


def list_names(kind: str, pattern: str = "*") -> list[str]:
    """Names of ``kind`` matching ``pattern`` (shell wildcards, case-insensitive)."""
    return get_registry(kind).list(pattern)


def resolve(kind: str, obj_or_name: Any, /, **kwargs: Any) -> Any:
    """Accept either an object or a registry name (what the trainer and the CLI take).

    * a string is a registry name: ``create(kind, name, **kwargs)``;
    * a mapping ``{"name": ..., **options}`` (from a config file) is created with its options
      (``kwargs`` add to and take precedence over them);
    * anything else (an object, ``None``) is returned unchanged; ``kwargs`` are then an error,
      since they would be silently ignored.
    """
    registry = get_registry(kind)
    if isinstance(obj_or_name, str):
        return registry.create(obj_or_name, **kwargs)
    if isinstance(obj_or_name, Mapping):
        if "name" not in obj_or_name:
            raise ValueError(
                f"a {registry.noun} given as a mapping needs a 'name' key naming a registered"
                f" {registry.noun} (e.g. {{'name': 'prefix:Name', ...options}}); got keys"
                f" {sorted(obj_or_name)}."
            )
        options = {k: v for k, v in obj_or_name.items() if k != "name"}
        return registry.create(obj_or_name["name"], **{**options, **kwargs})
    if kwargs:
        raise TypeError(
            f"resolve({kind!r}, ...) got keyword arguments {sorted(kwargs)} with an object of type"
            f" {type(obj_or_name).__name__}: they only apply to names. Configure the object"
            " yourself, or pass its registry name instead."
        )
    return obj_or_name


def create_backbone(name: str, /, **kwargs: Any) -> Any:
    """Build the metric network (backbone) registered as ``name``."""
    return create("backbones", name, **kwargs)


def create_generator(name: str, /, **kwargs: Any) -> Any:
    """Build the generator registered as ``name``."""
    return create("generators", name, **kwargs)


def create_feature_extractor(name: str, /, **kwargs: Any) -> Any:
    """Build the feature extractor registered as ``name``."""
    return create("feature_extractors", name, **kwargs)


def create_regularizer(name: str, /, **kwargs: Any) -> Any:
    """Build the generator regularizer (a GeneratorTerm) registered as ``name``."""
    return create("regularizers", name, **kwargs)


def create_metric_loss(name: str, /, **kwargs: Any) -> Any:
    """Build the metric loss registered as ``name`` (e.g. ``"pml:TripletMarginLoss"``)."""
    return create("metric_losses", name, **kwargs)


def create_miner(name: str, /, **kwargs: Any) -> Any:
    """Build the miner registered as ``name``."""
    return create("miners", name, **kwargs)


def create_distance(name: str, /, **kwargs: Any) -> Any:
    """Build the distance registered as ``name``."""
    return create("distances", name, **kwargs)


def create_reducer(name: str, /, **kwargs: Any) -> Any:
    """Build the reducer registered as ``name``."""
    return create("reducers", name, **kwargs)


def create_dataset(name: str, /, **kwargs: Any) -> Any:
    """Build the dataset registered as ``name``."""
    return create("datasets", name, **kwargs)


def create_metric(name: str, /, **kwargs: Any) -> Any:
    """Build the evaluation metric registered as ``name``."""
    return create("metrics", name, **kwargs)


def list_backbones(pattern: str = "*") -> list[str]:
    """Names of metric networks (backbones) matching ``pattern``."""
    return list_names("backbones", pattern)


def list_generators(pattern: str = "*") -> list[str]:
    """Names of generators matching ``pattern``."""
    return list_names("generators", pattern)


def list_feature_extractors(pattern: str = "*") -> list[str]:
    """Names of feature extractors matching ``pattern``."""
    return list_names("feature_extractors", pattern)


def list_regularizers(pattern: str = "*") -> list[str]:
    """Names of generator regularizers matching ``pattern``."""
    return list_names("regularizers", pattern)


def list_metric_losses(pattern: str = "*") -> list[str]:
    """Names of metric losses matching ``pattern``."""
    return list_names("metric_losses", pattern)


def list_miners(pattern: str = "*") -> list[str]:
    """Names of miners matching ``pattern``."""
    return list_names("miners", pattern)


def list_distances(pattern: str = "*") -> list[str]:
    """Names of distances matching ``pattern``."""
    return list_names("distances", pattern)


def list_reducers(pattern: str = "*") -> list[str]:
    """Names of reducers matching ``pattern``."""
    return list_names("reducers", pattern)


def list_datasets(pattern: str = "*") -> list[str]:
    """Names of datasets matching ``pattern``."""
    return list_names("datasets", pattern)


def list_metrics(pattern: str = "*") -> list[str]:
    """Names of evaluation metrics matching ``pattern``."""
    return list_names("metrics", pattern)


__all__ = [
    "KINDS", "KIND_NOUNS", "DuplicateNameError", "Entry", "Register", "Registry", "RegistryError",
    "UnknownKindError", "UnknownNameError", "create", "create_backbone", "create_dataset",
    "create_distance", "create_feature_extractor", "create_generator", "create_metric",
    "create_metric_loss", "create_miner", "create_reducer", "create_regularizer", "get_registry",
    "kind_of", "list_backbones", "list_datasets", "list_distances", "list_feature_extractors",
    "list_generators", "list_metric_losses", "list_metrics", "list_miners", "list_names",
    "list_reducers", "list_regularizers", "resolve",
]
