"""Evaluate a trained run offline: prints a table and writes a JSON report.

The feature space follows the data (digits: the shipped digits classifier; 2D mixtures: PacGAN
mode coverage; other data: the run's metric network) and is part of every key (fid@digits-classifier).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder written by `mvm train` (or its checkpoint file)")
    parser.add_argument("--metrics", help="comma-separated metric names (default: per data kind)")
    parser.add_argument("--n", type=int, default=2000, help="generated samples (default 2000)")
    parser.add_argument("--out", help="JSON report path (default RUN/eval.json)")
    parser.add_argument("--device", help="device for sampling (default: the run's)")


def run(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate_trainer
    from ..runs import load_run

    if args.n < 2:
        raise SystemExit(f"--n must be >= 2; got {args.n}.")
    trainer = load_run(args.run, device=args.device)
    metrics = tuple(m.strip() for m in args.metrics.split(",")) if args.metrics else None
    results = evaluate_trainer(trainer, n=args.n, metrics=metrics)
    run_dir = Path(args.run) if Path(args.run).is_dir() else Path(args.run).parent
    out = Path(args.out) if args.out else run_dir / "eval.json"
    report = {"run": str(run_dir), "step": trainer.state.step, "n": args.n, "metrics": results}
    out.write_text(json.dumps(report, indent=2))
    width = max(len(k) for k in results) if results else 10
    print(f"{'metric':{width}s}  value")
    for key, value in results.items():
        print(f"{key:{width}s}  {value:.4f}")
    print(f"report: {out}")
    return 0
