"""Evaluate a trained run offline: prints a table and writes a JSON report.

The feature space follows the data (digits: the shipped digits classifier; MNIST and Stacked MNIST:
the shipped MNIST classifier; 2D mixtures: PacGAN mode coverage; other data, e.g. your own image
folder: the run's metric network, a weak judge) and is part of every key (fid@mnist-classifier). The
table and the report say which space it is; ``--inception FILE`` measures FID/KID in Inception-v3
features from a local torchvision weights file instead.
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
    parser.add_argument("--inception", metavar="FILE",
                        help="local Inception-v3 weights (torchvision's inception_v3_google-0cc3c7bd.pth"
                        " or a .safetensors of it; 'env': $MVM_CORE_INCEPTION_WEIGHTS or the torch"
                        " cache) for FID/KID @inception; never downloads")


def run(args: argparse.Namespace) -> int:
    from ..evaluation import SPACE_NOTES, evaluate_trainer, feature_space
    from ..runs import load_run

    if args.n < 2:
        raise SystemExit(f"--n must be >= 2; got {args.n}.")
    trainer = load_run(args.run, device=args.device)
    metrics = tuple(m.strip() for m in args.metrics.split(",")) if args.metrics else None
    results = evaluate_trainer(trainer, n=args.n, metrics=metrics, inception=args.inception)
    space = "inception" if args.inception else feature_space(trainer.dataset, trainer)
    note = SPACE_NOTES.get(space, "the data's own evaluation protocol")
    run_dir = Path(args.run) if Path(args.run).is_dir() else Path(args.run).parent
    out = Path(args.out) if args.out else run_dir / "eval.json"
    report = {"run": str(run_dir), "step": trainer.state.step, "n": args.n,
              "feature_space": space, "feature_space_note": note, "metrics": results}
    out.write_text(json.dumps(report, indent=2))
    print(f"feature space: {space}: {note}")
    width = max(len(k) for k in results) if results else 10
    print(f"{'metric':{width}s}  value")
    for key, value in results.items():
        print(f"{key:{width}s}  {value:.4f}")
    print(f"report: {out}")
    return 0
