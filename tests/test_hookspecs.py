"""Meta-tests: every hook is documented, typed, exposed through the API and exercised."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import mvm_core
from mvm_core import hookimpl, hookspecs, registry

pytest_plugins = ["mvm_core.testing"]

ROOT = Path(__file__).resolve().parents[1]
HOOKS = hookspecs.hook_names()


def test_there_is_one_hook_per_kind_and_the_kinds_agree():
    assert HOOKS == tuple(f"mvm_register_{kind}" for kind in registry.KINDS)
    assert hookspecs.kinds() == registry.KINDS
    assert len(HOOKS) == 10


def test_markers_belong_to_the_mvm_core_project():
    assert hookspecs.hookspec.project_name == "mvm_core"
    assert hookspecs.hookimpl.project_name == "mvm_core"
    assert mvm_core.hookimpl is hookspecs.hookimpl


@pytest.mark.parametrize("hook", HOOKS)
def test_hookspec_is_documented_and_typed(hook):
    spec = getattr(hookspecs, hook)
    assert hasattr(spec, "mvm_core_spec"), f"{hook} is not marked with @hookspec"
    doc = inspect.getdoc(spec) or ""
    first, _, rest = doc.partition("\n")
    assert first.endswith(".") and len(first) <= 100, f"{hook}: one-line summary"
    signature = inspect.signature(spec)
    assert signature.return_annotation == "None"
    assert "Args:" in rest
    for name, param in signature.parameters.items():
        assert param.annotation != inspect.Parameter.empty, f"{hook}({name}) has no type"
        assert re.search(rf"^\s+{name}: \S", rest, re.M), f"{hook}: parameter {name} undocumented"


def test_hookspecs_live_only_in_hookspecs_py():
    offenders = []
    for path in (ROOT / "mvm_core").rglob("*.py"):
        if path.name == "hookspecs.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) \
                    == "HookspecMarker":
                offenders.append(str(path))
            if isinstance(node, ast.FunctionDef) and any(
                getattr(d, "id", getattr(d, "attr", "")) == "hookspec" for d in node.decorator_list
            ):
                offenders.append(f"{path}:{node.name}")
    assert offenders == []


@pytest.mark.parametrize("kind", registry.KINDS)
def test_each_kind_has_create_and_list_functions_exported(kind):
    noun = registry.KIND_NOUNS[kind].replace(" ", "_")
    for name in (f"create_{noun}", f"list_{kind}"):
        function = getattr(registry, name)
        assert getattr(mvm_core, name) is function and name in mvm_core.__all__
        assert inspect.getdoc(function)
        assert inspect.signature(function).return_annotation != inspect.Parameter.empty


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_registers_and_creates(hook, mvm_register_plugin, mvm_plugins):
    """Each hook, implemented by a plugin, makes its name creatable, listable and reported."""
    kind = hook[len(hookspecs.HOOK_PREFIX):]

    class Made:
        """A thing made by the test plugin."""

        def __init__(self, size: int = 1):
            self.size = size

    class Plugin:
        pass

    def implementation(register):
        register("meta:Made", Made)
        register.namespace("metazoo", lambda name, **kw: (name, kw), list_names=lambda: ["a", "b"],
                           description="the meta zoo")

    implementation.__name__ = hook
    setattr(Plugin, hook, staticmethod(hookimpl(implementation)))
    mvm_register_plugin(Plugin(), "meta-plugin")
    noun = registry.KIND_NOUNS[kind].replace(" ", "_")
    made = getattr(mvm_core, f"create_{noun}")("meta:Made", size=3)
    assert isinstance(made, Made) and made.size == 3
    assert mvm_core.resolve(kind, {"name": "metazoo:b", "x": 1}) == ("b", {"x": 1})
    assert getattr(mvm_core, f"list_{kind}")("meta*:*") == ["meta:Made", "metazoo:*"]
    assert getattr(mvm_core, f"list_{kind}")("metazoo:*") == ["metazoo:a", "metazoo:b"]
    info = {p.name: p for p in mvm_plugins.plugins()}["meta-plugin"]
    assert info.hooks == (hook,)
    assert dict(info.registered) == {kind: ("meta:Made", "metazoo:*")}


def test_docs_cover_every_hook():
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    missing = [hook for hook in HOOKS if hook not in text]
    assert missing == []
