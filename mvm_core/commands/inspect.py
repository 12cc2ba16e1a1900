"""Read a run: a health verdict with its evidence, and a diagnostic plot (health.png).

Reads the run folder's log.jsonl (or the history in its checkpoint), its config and its quality
metrics (metrics.json, eval.json), and applies the health rules of mvm_core/health.py: divergence,
metric collapse, generator collapse, oscillation beyond the band, stalled matching. Prints the
verdict, each failure with the numbers behind it and the step where it started, and the trends
(matching slope and monotonicity, metric-loss band, Hausdorff, diameters, gradient norms).
docs/reading-a-run.md explains every line. --check exits with status 1 when a failure is found.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder written by `mvm train` (or its checkpoint file)")
    parser.add_argument("--plot", help="diagnostic PNG path (default RUN/health.png)")
    parser.add_argument("--no-plot", action="store_true", help="do not write the diagnostic plot")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a failure is found")


def read_run(path: str | Path) -> tuple[Path, list[dict], dict, dict, dict | None]:
    """``(run_dir, history, config, quality, divergence event)`` of a run folder or checkpoint."""
    path = Path(path)
    run_dir = path if path.is_dir() else path.parent
    if not run_dir.exists():
        raise SystemExit(f"mvm inspect: {str(path)!r} does not exist; pass a run folder written by `mvm train`.")
    history: list[dict] = []
    log = run_dir / "log.jsonl"
    if log.exists():
        from ..callbacks import read_log

        history = read_log(log)  # a torn last line (killed mid-write) is skipped
    checkpoint = path if path.is_file() else run_dir / "checkpoint.safetensors"
    config: dict = {}
    if (run_dir / "config.json").exists():
        config = json.loads((run_dir / "config.json").read_text())
    if (not history or not config) and checkpoint.exists():
        from ..checkpoint import load_checkpoint

        state = load_checkpoint(checkpoint, check_finite=False)  # history and config only
        from ..trainer import decode_history

        history = history or decode_history(state.get("history", []))
        config = config or dict(state.get("extra", {}).get("run_config", {}))
    quality: dict = {}
    diverged = None
    for name in ("metrics.json", "eval.json"):  # the offline evaluation, when run, wins
        file = run_dir / name
        if not file.exists():
            continue
        payload = json.loads(file.read_text())
        values = payload.get("metrics", payload)
        quality.update({k: v for k, v in values.items() if isinstance(v, (int, float)) and k != "step"})
        health = payload.get("health") or {}
        for failure in health.get("failures", []):
            if failure["mode"] == "divergence" and failure["rule"].startswith("the trainer stopped"):
                diverged = {"step": failure["step"], "message": failure["rule"].split(": ", 1)[-1]}
    if not history and diverged is None:  # a run that diverged before its first log still reads
        raise SystemExit(
            f"mvm inspect: no logged history in {str(run_dir)!r} (no log.jsonl, no checkpoint with a"
            " history); train with `mvm train --out RUN` first, or pass the folder it wrote."
        )
    return run_dir, history, config, quality, diverged


def run(args: argparse.Namespace) -> int:
    from ..health import diagnose, format_report, save_health_plot

    run_dir, history, config, quality, diverged = read_run(args.run)
    report = diagnose(history, total_steps=config.get("steps"), quality=quality or None, diverged=diverged)
    plot = None
    if not args.no_plot and history:
        plot = save_health_plot(history, Path(args.plot) if args.plot else run_dir / "health.png", report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"run: {run_dir}")
        print(format_report(report))
        if plot is not None:
            print(f"plot: {plot}")
    if args.check and report["verdict"] != "healthy":
        print(f"mvm inspect: {report['verdict']}", file=sys.stderr)
        return 1
    return 0


__all__ = ["add_arguments", "read_run", "run"]
