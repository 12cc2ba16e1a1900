"""Helpers shared by the benchmark scripts: machine metadata, result files, summary statistics.

Each benchmark is one command that writes ``<out>/<name>.json`` (every measured number plus the
settings and machine) and ``<out>/<name>.md`` (tables rendered from that JSON, never typed in).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DETAILS = "<!-- details -->"  # in a result .md: what follows stays out of benchmarks/README.md
RESULTS = Path(__file__).resolve().parent / "results"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (the machine is shared: numbers depend on it)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def load_range(runs: Iterable[dict]) -> str:
    """``min-max`` of the 1-minute load average recorded at the start of each run."""
    loads = [r["load_average"][0] for r in runs if r.get("load_average")]
    return f"{min(loads):.1f}-{max(loads):.1f}" if loads else "not recorded"


def git_state() -> dict[str, Any]:
    """Commit of the checkout and whether tracked files differ from it (numbers belong to both)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "-uno"))}


def machine(threads: int | None = None) -> dict[str, Any]:
    """What a reader needs to compare timings: CPU, cores, load, versions, commit."""
    import torch

    from mvm_core import __version__

    info = {
        "cpu": cpu_name(),
        "logical_cpus": os.cpu_count(),
        "load_average_start": load_average(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "mvm_core": __version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        **git_state(),
    }
    if threads is not None:
        info["torch_threads"] = threads
    return info


def write_results(out: Path, name: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write ``name.json`` and ``name.md`` into ``out`` atomically (a partial file never appears)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = out / f"{name}.json", out / f"{name}.md"
    for path, text in zip(paths, (json.dumps(data, indent=1, default=_plain), markdown)):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text if text.endswith("\n") else text + "\n")
        tmp.replace(path)
    return paths


def same_config(a: dict, b: dict) -> bool:
    """Two resolved configs are equal once both went through JSON (tuples and lists compare equal):
    the test for reusing a finished run."""
    return json.loads(json.dumps(a, default=str)) == json.loads(json.dumps(b, default=str))


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def finite(values: Iterable[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation of the finite values (nan where undefined)."""
    vals = finite(values)
    if not vals:
        return math.nan, math.nan
    return statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else math.nan


def fmt(value: float | None, spec: str = "{:.3g}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return spec.format(value)


def fmt_mean_sd(values: Sequence[float], spec: str = "{:.3g}") -> str:
    """``mean ± sd`` over seeds; one value alone; ``-`` when none is finite; ``(k/n)`` when some
    values are not finite (e.g. KL is undefined when no sample is of high quality)."""
    m, s = mean_sd(values)
    if math.isnan(m):
        return "-"
    text = spec.format(m) if math.isnan(s) else f"{spec.format(m)} ± {spec.format(s)}"
    missing = len(values) - len(finite(values))
    return f"{text} ({len(values) - missing}/{len(values)})" if missing else text


def table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str | None = None) -> str:
    """A Markdown table; ``align`` holds one of ``l``/``r`` per column (default: first left)."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties; nan with fewer than 3 finite pairs)."""
    pairs = [(a, b) for a, b in zip(x, y) if math.isfinite(a) and math.isfinite(b)]
    if len(pairs) < 3:
        return math.nan

    def ranks(v: Sequence[float]) -> list[float]:
        order = sorted(range(len(v)), key=v.__getitem__)
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2 + 1
            i = j + 1
        return r

    rx, ry = ranks([p[0] for p in pairs]), ranks([p[1] for p in pairs])
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    var = math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))
    return cov / var if var > 0 else math.nan
