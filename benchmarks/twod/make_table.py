"""Markdown table from research.py JSON results: python benchmarks/twod/make_table.py DIR..."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(path: Path) -> tuple[str, str, str]:
    res = json.loads(path.read_text())
    s = res["summary"]
    runs = res["runs"]
    cfg = res["config"]
    per_seed = " ".join(
        f"{r['final']['modes']}/{100 * r['final']['hq']:.0f}%/{r['final']['kl']:.2f}" for r in runs
    )
    line = (
        f"| {cfg['tag']} | {cfg['mixture']} | {len(runs)} | {s['modes']['mean']:.1f} ± {s['modes']['std']:.1f}"
        f" (min {s['modes']['min']:.0f}) | {100 * s['hq']['mean']:.1f} ± {100 * s['hq']['std']:.1f}"
        f" | {s['kl']['mean']:.3f} ± {s['kl']['std']:.3f} | {s['wall_s']:.0f} | {per_seed} |"
    )
    return cfg["mixture"], cfg["tag"], line


def main(dirs: list[str]) -> None:
    rows = sorted(row(p) for d in dirs for p in Path(d).glob("*.json"))
    print(
        "| config | mixture | seeds | modes mean ± sd (min) | HQ % mean ± sd | KL mean ± sd"
        " | wall s/run | per seed modes/HQ/KL |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for _, _, line in rows:
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
