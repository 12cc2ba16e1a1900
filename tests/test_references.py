"""No text in the project points at files users do not have or at internal tracker numbers."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".py", ".md", ".toml", ".txt", ".yaml", ".yml", ".cfg", ".json"}
# built from pieces so that this file does not match itself
FORBIDDEN = re.compile("|".join([
    "METHODS" + r"\.md", r"\bshared" + "/", r"\bissues? ?#?\d", r"\bsessions?[- ]\d", r"(?<![\w/.])#1\d\b",
]), re.I)


def _project_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
        files = [ROOT / f for f in out]
    except (OSError, subprocess.CalledProcessError):  # an sdist: no git
        files = [p for p in ROOT.rglob("*") if ".git" not in p.parts]
    return [p for p in files if p.suffix in SUFFIXES and p.is_file()]


def test_the_pattern_finds_what_it_should():
    for text in ("see shar" + "ed/" + "METHODS.md", "issue " + "#13's target", "the session" + "-2 default",
                 "(issue " + "4)", "Session" + " 3 (2026)"):
        assert FORBIDDEN.search(text), text
    for text in ("docs/method.md", "faiss issues (upstream)", "console sessions of docs", "Other#2"):
        assert not FORBIDDEN.search(text), text


def test_no_internal_references_in_the_project():
    hits = []
    for path in _project_files():
        if path == Path(__file__).resolve():  # its own examples of what is forbidden
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if FORBIDDEN.search(line) and "faiss issues #3114" not in line:
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert hits == [], "\n".join(hits)
