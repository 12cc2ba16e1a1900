"""The runs behind the health monitor's thresholds: healthy defaults and engineered failures.

Each scenario is a `mvm train` configuration (a preset plus overrides) and, for the engineered
failures, one deliberate fault. Every run writes its logged history (``results/NAME.sSEED.jsonl``)
and a summary (``results/NAME.sSEED.json``: final quality, divergence, wall time);
``--summary`` prints, per run, the statistics each threshold of ``mvm_core/health.py`` is compared
with and the verdict (``docs/reading-a-run.md`` quotes them).

Examples::

    .venv/bin/python benchmarks/health/evidence.py --run ring_default --seeds 0 1 2
    .venv/bin/python benchmarks/health/evidence.py --all          # every scenario, its seeds
    .venv/bin/python benchmarks/health/evidence.py --summary

Single-threaded (``torch.set_num_threads(1)``): wall times are per CPU core.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)

from mvm_core.build import build_trainer  # noqa: E402
from mvm_core.callbacks import Evaluator  # noqa: E402
from mvm_core.evaluation import default_evaluator, evaluate_trainer  # noqa: E402
from mvm_core.runconfig import build_run_config  # noqa: E402
from mvm_core.trainer import TrainingDiverged  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _zero_input(module: torch.nn.Module) -> None:
    """Fault: the module's first argument is multiplied by 0 (its output ignores its input)."""
    forward = module.forward

    def ignoring(x, *args, **kwargs):
        return forward(x * 0, *args, **kwargs)

    module.forward = ignoring


FAULTS = {
    "const_metric": lambda trainer: _zero_input(trainer.metric_net),  # M(x) is one point
    "ignore_z": lambda trainer: _zero_input(trainer.generator),  # G(z) is one sample
}

# name -> (config values, fault or None, seeds run by --all)
SCENARIOS: dict[str, tuple[dict, str | None, tuple[int, ...]]] = {
    # healthy: the defaults at their full budget, and the short budgets the tests use
    # (the full budgets evaluate quality during training too: the quality trend of a healthy run)
    "ring_default": ({"data": "ring", "eval_every": 500}, None, (0, 1, 2)),
    "digits_default": ({"data": "digits", "eval_every": 250}, None, (0, 1, 2)),
    "ring_1000": ({"data": "ring", "steps": 1000}, None, (0, 1)),
    "ring_1500": ({"data": "ring", "steps": 1500}, None, (0, 1)),
    "digits_600": ({"data": "digits", "steps": 600}, None, (0, 1)),
    "digits_1000": ({"data": "digits", "steps": 1000}, None, (0, 1)),
    "ring_short": ({"data": "ring", "steps": 600}, None, (0, 1, 2, 3, 4)),
    "digits_short": ({"data": "digits", "steps": 300}, None, (0, 1, 2, 3, 4)),
    # not a failure of training, but not solved: the 25-grid and the published formulation
    "grid_default": ({"data": "grid"}, None, (0,)),
    "ring_reference": ({"data": "ring", "preset": "reference", "steps": 3000}, None, (0,)),
    "digits_reference": ({"data": "digits", "preset": "reference"}, None, (0,)),
    # engineered failures
    "ring_lr10": ({"data": "ring", "steps": 600, "g_lr": 10.0, "m_lr": 10.0}, None, (0, 1)),
    "ring_lr1": ({"data": "ring", "steps": 600, "g_lr": 1.0, "m_lr": 1.0}, None, (0, 1)),
    "ring_lr0.1": ({"data": "ring", "steps": 600, "g_lr": 0.1, "m_lr": 0.1}, None, (0, 1)),
    "digits_lr1": ({"data": "digits", "steps": 300, "g_lr": 1.0, "m_lr": 1.0}, None, (0, 1)),
    "digits_lr0.05": ({"data": "digits", "steps": 300, "g_lr": 0.05, "m_lr": 0.05}, None, (0, 1)),
    "ring_const_metric": ({"data": "ring", "steps": 600}, "const_metric", (0, 1)),
    "digits_const_metric": ({"data": "digits", "steps": 300}, "const_metric", (0, 1)),
    "ring_ignore_z": ({"data": "ring", "steps": 600}, "ignore_z", (0, 1)),
    "digits_ignore_z": ({"data": "digits", "steps": 300}, "ignore_z", (0, 1)),
    "ring_frozen_g": ({"data": "ring", "steps": 600, "g_lr": 1e-9}, None, (0, 1)),
    "ring_reference_mlr0.1": ({"data": "ring", "preset": "reference", "steps": 600, "m_lr": 0.1}, None, (0, 1)),
    "ring_mlr1": ({"data": "ring", "steps": 600, "m_lr": 1.0}, None, (0, 1)),
    "digits_frozen_g": ({"data": "digits", "steps": 300, "g_lr": 1e-9}, None, (0, 1)),
}


def run(name: str, seed: int) -> dict:
    values, fault, _ = SCENARIOS[name]
    config = build_run_config({**values, "seed": seed, "device": "cpu", "log_every": 10})
    callbacks = []
    if config.eval_every:  # quality during training, logged in the history like `mvm train` does
        callbacks.append(Evaluator(default_evaluator(config), every=config.eval_every))
    trainer = build_trainer(config, callbacks=callbacks)
    if fault:
        FAULTS[fault](trainer)
    start = time.time()
    diverged = None
    try:
        trainer.fit()
    except TrainingDiverged as error:
        diverged = {"step": trainer.state.step, "message": str(error).split(" The last good")[0]}
    seconds = time.time() - start
    quality = {} if diverged else evaluate_trainer(trainer)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"{name}.s{seed}"
    (RESULTS / f"{stem}.jsonl").write_text("".join(json.dumps(_compact(r)) + "\n" for r in trainer.state.history))
    summary = {"name": name, "seed": seed, "config": values, "fault": fault, "steps": config.steps,
               "diverged": diverged, "quality": quality, "train_s": round(seconds, 1)}
    (RESULTS / f"{stem}.json").write_text(json.dumps(summary, indent=2))
    print(f"{name} seed {seed}: {seconds:.0f} s, diverged={diverged is not None}, {quality}", flush=True)
    return summary


def _compact(record: dict) -> dict:
    """A logged record with 6 significant digits and without the wall-clock time."""
    return {k: float(f"{v:.6g}") if isinstance(v, float) and math.isfinite(v) else v
            for k, v in record.items() if k != "time"}


def load(path: Path) -> tuple[dict, list[dict]]:
    summary = json.loads(path.read_text())
    history = [json.loads(line) for line in path.with_name(path.stem + ".jsonl").read_text().splitlines() if line]
    return summary, history


def summary_table() -> str:
    """One row per run: the statistics the rules compare with their thresholds, and the verdict."""
    from mvm_core.health import diagnose

    lines = ["| run | seed | steps | quality | verdict (start step) | " + " | ".join(EVIDENCE_COLUMNS) + " |",
             "|---|---|---|---|---|" + "---|" * len(EVIDENCE_COLUMNS)]
    for path in sorted(RESULTS.glob("*.json")):
        summary, history = load(path)
        report = diagnose(history, total_steps=summary["steps"], quality=summary["quality"],
                          diverged=summary["diverged"])
        flagged = ", ".join(f"{f['mode']} ({f['step']})" for f in report["failures"]) or "healthy"
        cells = [_fmt(report["evidence"].get(key)) for key in EVIDENCE_COLUMNS]
        lines.append(f"| {summary['name']} | {summary['seed']} | {summary['steps']} | {_quality(summary)} |"
                     f" {flagged} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


EVIDENCE_COLUMNS = ("growth", "emb_norm_max", "real_spread", "metric_grad_ratio", "satisfied_share",
                    "diameter_ratio", "fake_duplicates", "loss_m_band", "matching_spearman",
                    "matching_lost_ground", "quality_poor", "stall_judged")


def _quality(summary: dict) -> str:
    q = summary["quality"]
    if "high_quality@data" in q:
        return f"HQ {q['high_quality@data']:.2f}"
    if "fid@digits-classifier" in q:
        return f"FID {q['fid@digits-classifier']:.0f}"
    return "-"


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", choices=sorted(SCENARIOS), nargs="+")
    ap.add_argument("--seeds", nargs="+", type=int)
    ap.add_argument("--all", action="store_true", help="every scenario with its listed seeds")
    ap.add_argument("--skip-done", action="store_true", help="skip runs whose results exist")
    ap.add_argument("--summary", action="store_true", help="print the evidence table and exit")
    args = ap.parse_args()
    if args.summary:
        table = summary_table()
        print(table)
        (HERE / "RESULTS.md").write_text(_HEADER + table + "\n")
        return
    names = sorted(SCENARIOS) if args.all else (args.run or [])
    if not names:
        sys.exit("give --run NAME..., --all or --summary")
    for name in names:
        for seed in args.seeds or SCENARIOS[name][2]:
            if args.skip_done and (RESULTS / f"{name}.s{seed}.json").exists():
                continue
            run(name, seed)


_HEADER = """# Evidence behind the health monitor's thresholds

Generated by `benchmarks/health/evidence.py --summary` from `results/` (one logged history and
summary per run; `default` preset unless the name says otherwise, one CPU thread). Each column is
a number a rule of `mvm_core/health.py` compares with its threshold, taken over the run's final
20% of logged records (`growth` and `emb_norm_max` over the whole run); `quality` is the final
PacGAN high-quality share (2D) or FID@digits-classifier. `docs/reading-a-run.md` reads the table.

"""


if __name__ == "__main__":
    main()
