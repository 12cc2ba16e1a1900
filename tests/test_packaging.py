"""What the distribution declares matches what the code imports; the pytest plugin stays light."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
PLUGINS = sorted(p for p in (ROOT / "plugins").glob("*") if (p / "pyproject.toml").exists())  # none in the sdist

# import name -> distribution names that provide it
PROVIDERS = {
    "torch": {"torch"}, "numpy": {"numpy"}, "pytorch_metric_learning": {"pytorch-metric-learning"},
    "pluggy": {"pluggy"}, "faiss": {"faiss-cpu", "faiss-gpu"}, "safetensors": {"safetensors"},
    "sklearn": {"scikit-learn"}, "scipy": {"scipy"}, "matplotlib": {"matplotlib"},
    "yaml": {"pyyaml"}, "tqdm": {"tqdm"}, "tomli": {"tomli"}, "PIL": {"pillow"},
    "torchvision": {"torchvision"}, "skimage": {"scikit-image"}, "pytest": {"pytest"},
    "mvm_core": {"mvm-core"}, "timm": {"timm"}, "lpips": {"lpips"},
    "huggingface_hub": {"huggingface-hub", "timm"},  # a dependency of timm, imported with it
}


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()


def _third_party_imports(package: Path, local=("mvm_core", "mvm_core_pytest")) -> set[str]:
    found = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in local and top not in sys.stdlib_module_names:
                    found.add(top)
    return found


def test_license_is_an_spdx_string_with_its_file():
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"] and "MIT License" in (ROOT / "LICENSE").read_text()
    assert any(r.startswith("setuptools>=77") for r in PYPROJECT["build-system"]["requires"])
    for plugin in PLUGINS:
        meta = tomllib.loads((plugin / "pyproject.toml").read_text())
        assert meta["project"]["license"] == "MIT", plugin.name
        assert (plugin / "LICENSE").read_text() == (ROOT / "LICENSE").read_text(), plugin.name


def test_faiss_is_optional_and_never_installed_twice():
    base = {_name(r) for r in PROJECT["dependencies"]}
    assert not base & {"faiss-cpu", "faiss-gpu"}
    extras = {k: {_name(r) for r in v} for k, v in PROJECT["optional-dependencies"].items()}
    assert extras["faiss"] == {"faiss-cpu"} and extras["faiss-gpu"] == {"faiss-gpu"}
    for name, deps in extras.items():
        assert not {"faiss-cpu", "faiss-gpu"} <= deps, name
    # the development set installs the CPU one only
    line = next(x for x in (ROOT / "requirements-dev.txt").read_text().splitlines() if x.startswith("-e .["))
    chosen = set(line[len("-e .["):-1].split(","))
    assert chosen <= set(extras) and "faiss" in chosen and "faiss-gpu" not in chosen


def test_every_imported_module_is_declared():
    base = {_name(r) for r in PROJECT["dependencies"]}
    extras = {_name(r) for deps in PROJECT["optional-dependencies"].values() for r in deps}
    imported = _third_party_imports(ROOT / "mvm_core") | _third_party_imports(ROOT / "mvm_core_pytest")
    unknown = imported - set(PROVIDERS)
    assert not unknown, f"add these imports to PROVIDERS and declare them: {unknown}"
    for module in imported - {"pytest"}:  # pytest: only the pytest plugin, run by pytest itself
        assert PROVIDERS[module] & (base | extras), module
    assert "pillow" in base  # image folders and sample grids
    assert "torchvision" not in base and {"torchvision"} == {
        _name(r) for r in PROJECT["optional-dependencies"]["inception"]}


def test_the_pytest_plugin_entry_point_does_not_import_torch():
    entry = PROJECT["entry-points"]["pytest11"]
    assert list(entry.values()) == ["mvm_core_pytest"]
    code = "import sys, mvm_core_pytest; print(sorted(m for m in ('torch', 'mvm_core') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_fixtures_work_through_both_module_names(mvm_step_context):
    import mvm_core.testing
    import mvm_core_pytest

    assert mvm_core.testing.mvm_plugins is mvm_core_pytest.mvm_plugins
    assert mvm_step_context(batch_size=4).fake.shape == (4, 2)


@pytest.mark.parametrize("plugin", PLUGINS, ids=[p.name for p in PLUGINS])
def test_every_plugin_declares_what_it_imports(plugin):
    meta = tomllib.loads((plugin / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in meta["dependencies"]}
    declared |= {_name(r) for deps in meta.get("optional-dependencies", {}).values() for r in deps}
    packages = [d for d in plugin.iterdir() if (d / "__init__.py").exists()]
    assert packages, plugin
    imported = set().union(*(_third_party_imports(d, local=(d.name,)) for d in packages))
    assert imported - set(PROVIDERS) == set()
    assert {m for m in imported if not PROVIDERS[m] & declared} == set()


@pytest.mark.parametrize("plugin", [p.name for p in PLUGINS])
def test_the_readme_says_how_to_install_each_distribution(plugin):
    readme = (ROOT / "README.md").read_text()
    assert "pip install mvm-core\n" in readme or "pip install mvm-core " in readme
    assert f"pip install {plugin}" in readme
