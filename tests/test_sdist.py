"""The source distribution holds every test file and conftest, and its tests pass from it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # builds an sdist and runs pytest in it (~20 s)


def _tracked() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs a git checkout (this is the sdist's own copy of the test)")
    return [f for f in out.stdout.split() if not f.startswith("plugins/")]


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> tuple[Path, list[str]]:
    """The sdist built from a clean copy of the tracked files, and the names it holds."""
    tracked = _tracked()
    src = tmp_path_factory.mktemp("src")
    for name in tracked:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(dist)!r}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    archive = dist / out.stdout.split()[-1]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        tar.extractall(dist, filter="data")
    top = names[0].split("/")[0]
    return dist / top, [n[len(top) + 1:] for n in names]


def test_the_sdist_holds_every_test_file_and_conftest(sdist):
    _, names = sdist
    tests = [f for f in _tracked() if f.startswith("tests/")]
    assert "tests/conftest.py" in tests
    missing = sorted(set(tests) - set(names))
    assert missing == []
    for name in ("LICENSE", "README.md", "docs/plugins.md", "docs/method.md", "mvm_core_pytest/__init__.py",
                 "benchmarks/precision2d.py", "benchmarks/common.py"):
        assert name in names, name


def test_tests_pass_from_the_sdist(sdist):
    root, _ = sdist
    files = ["tests/test_packaging.py", "tests/test_references.py", "tests/test_sources.py"]
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
                         cwd=root, capture_output=True, text=True, env={**_env(), "PYTHONPATH": str(root)})
    assert out.returncode == 0, out.stdout[-3000:]
    assert " passed" in out.stdout


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
