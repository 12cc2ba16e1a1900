"""Precise generation on 2D mixtures: the ablation behind the `default` points preset, its quality
against the step budget, mixtures it was not tuned on, and sample plots.

Every run is a library run (``build_run_config`` with the ``default`` preset for points, read at
run time, plus the row's overrides; ``build_trainer``; ``fit``; ``evaluate_trainer``: the PacGAN
protocol on 2,500 samples, as in ``quality2d.py``). Parts:

* ``ablation``: each choice of the default removed alone (rows ``-x``) on the ring of 8 and the
  grid of 25, seeds 0 1 2, at a budget of 3,000 steps (a quarter of the default's).
* ``final``: the default as shipped (its own budget) on the ring and the grid, seeds 0 1 2.
* ``budget``: the default with step budgets 1,500 / 3,000 / 6,000 / 12,000 (the learning-rate decay
  follows each budget, as for a user who sets ``--steps``), seed 0.
* ``heldout``: the default, untouched, on mixtures it was not tuned on: 12 modes on the ring, the
  ring of 8 with unequal priors (1:2:...:8; KL is against those priors), a tight 4 x 4 grid
  (spacing 1, std 0.02) and a wide 3 x 3 grid (spacing 3, std 0.1); seed 0 (``--heldout-seeds``).

A run whose resolved config equals another's (the budget's 12,000 steps and ``final``) is run once.
* plots: samples of the default (seed 0) on every mixture, ``<out>/precision2d_samples.png``.

    .venv/bin/python benchmarks/precision2d.py --jobs 2             # everything (about 3 CPU hours)
    .venv/bin/python benchmarks/precision2d.py --parts heldout --seeds 0
    .venv/bin/python benchmarks/precision2d.py --quick              # smoke test (seconds)

Finished runs are kept in ``<out>/precision2d.json`` and reused while their resolved config is
unchanged. Results: ``<out>/precision2d.{json,md}`` (``precision2d.quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DETAILS,
    RESULTS,
    fmt_mean_sd,
    load_average,
    load_range,
    machine,
    read_json,
    same_config,
    table,
    write_results,
)

# name -> (what changes, overrides on top of the `default` preset for points)
ABLATION_STEPS = 3000
ABLATION: dict[str, tuple[str, dict]] = {
    "default": ("the `default` preset", {}),
    "-batch": ("batch 100 instead of 256 (the reference's batch)", {"batch_size": 100}),
    "-width": ("128-wide MLPs instead of 400 (the earlier default)", {"width": 128}),
    "-chamfer": ("no nearest-real (Chamfer) term", {"chamfer_weight": 0.0}),
    "-energy": ("centroid + sorted p-diameter matching instead of energy + Chamfer",
                {"matching": "centroid-diameter"}),
}
# name -> (what it is, data, data_kwargs)
HELDOUT: dict[str, tuple[str, str, dict]] = {
    "ring12": ("ring of 12 modes (radius 1, std 0.01)", "ring", {"num_modes": 12}),
    "ring8-priors": ("ring of 8, priors 1:2:...:8", "ring", {"weights": [1, 2, 3, 4, 5, 6, 7, 8]}),
    "grid16-tight": ("4 x 4 grid, spacing 1, std 0.02", "grid", {"side": 4, "spacing": 1.0, "std": 0.02}),
    "grid9-wide": ("3 x 3 grid, spacing 3, std 0.1", "grid", {"side": 3, "spacing": 3.0, "std": 0.1}),
}
BUDGETS = (1500, 3000, 6000, 12000)
MIXTURES = ("ring", "grid")


def resolved_config(overrides: dict, data: str, data_kwargs: dict, seed: int, steps: int | None):
    from mvm_core.runconfig import build_run_config

    values = {"data": data, "data_kwargs": data_kwargs, "seed": seed, "device": "cpu", "log_every": 50,
              "checkpoint_every": 0, **overrides}
    if steps is not None:
        values["steps"] = steps
    return build_run_config({}, values)


def run_one(part: str, name: str, config, keep_samples: bool) -> dict:
    from mvm_core.build import build_trainer
    from mvm_core.evaluation import evaluate_trainer

    trainer = build_trainer(config)
    load = load_average()
    start = time.perf_counter()
    trainer.fit()
    train_s = time.perf_counter() - start
    metrics = evaluate_trainer(trainer)
    out = {"part": part, "name": name, "data": config.data, "data_kwargs": config.data_kwargs,
           "seed": config.seed, "steps": config.steps, "modes": metrics["modes@data"],
           "num_modes": trainer.dataset.mixture.num_modes, "high_quality": metrics["high_quality@data"],
           "reverse_kl": metrics["reverse_kl@data"], "train_s": train_s,
           "ms_per_step": 1000 * train_s / max(1, config.steps), "load_average": load,
           "resolved": config.to_dict()}
    if keep_samples:
        out["samples"] = trainer.sample(2500, seed=12345).float().cpu().tolist()
    return out


def jobs(parts: list[str], seeds: list[int], steps: int | None, heldout_seeds: list[int]) -> list[tuple]:
    """(part, name, data, data_kwargs, seed, overrides, steps), seed-major."""
    out = []
    for seed in seeds:
        if "ablation" in parts:
            out += [("ablation", n, m, {}, seed, o, steps or ABLATION_STEPS)
                    for n, (_, o) in ABLATION.items() for m in MIXTURES]
        if "final" in parts:
            out += [("final", "default", m, {}, seed, {}, steps) for m in MIXTURES]
        if "heldout" in parts and seed in heldout_seeds:
            out += [("heldout", n, d, kw, seed, {}, steps) for n, (_, d, kw) in HELDOUT.items()]
    if "budget" in parts:
        budgets = (steps,) if steps is not None else BUDGETS
        out += [("budget", str(b), m, {}, seeds[0], {}, b) for b in budgets for m in MIXTURES]
    return out


def summary(runs: list[dict], part: str, key: str = "name") -> list[list[str]]:
    rows = []
    for name in dict.fromkeys(r[key] for r in runs if r["part"] == part):
        for data in dict.fromkeys(r["data"] for r in runs if r["part"] == part and r[key] == name):
            rs = [r for r in runs if r["part"] == part and r[key] == name and r["data"] == data]
            modes = [r["modes"] for r in rs]
            rows.append([name, data, f"{fmt_mean_sd(modes, '{:.1f}')} ({min(modes):.0f}/{rs[0]['num_modes']})",
                         fmt_mean_sd([100 * r["high_quality"] for r in rs], "{:.1f}"),
                         fmt_mean_sd([r["reverse_kl"] for r in rs], "{:.3f}"),
                         ", ".join(f"{100 * r['high_quality']:.1f}" for r in rs),
                         f"{statistics.fmean(r['train_s'] for r in rs):.0f}"])
    return rows


def markdown(data: dict) -> str:
    meta, runs = data["meta"], data["runs"]
    preset = meta["preset_values"]
    out = [
        f"# Precise 2D generation ({'quick' if meta['quick'] else 'full'} run)",
        "",
        "Library runs, `default` preset for points plus each row's overrides; PacGAN protocol on 2,500"
        " samples (modes captured, share of samples within 3 std of their nearest mode, reverse KL of the"
        " high-quality histogram to the priors). Mean ± sd over seeds; modes: mean (min over seeds / modes)."
        f" Machine: {meta['machine']['cpu']}, {meta['machine']['logical_cpus']} logical CPUs shared with"
        f" other jobs (1-minute load average {load_range(runs)}), torch {meta['machine']['torch']}, 1 thread;"
        f" commit {meta['machine']['commit'][:10]}{' + local changes' if meta['machine']['dirty'] else ''}.",
        "",
        "Default preset (points): " + ", ".join(
            f"{k}={preset[k]}" for k in ("steps", "batch_size", "matching", "energy_weight", "chamfer_weight",
                                         "metric_loss", "metric_loss_kwargs", "miner", "emb_dim", "width",
                                         "depth", "g_lr", "m_lr", "lr_schedule", "ema_decay") if k in preset) + ".",
        "",
    ]
    header = ["row", "data", "modes", "HQ %", "KL", "HQ % per seed", "train s"]
    if any(r["part"] == "ablation" for r in runs):
        out += [f"## Ablation (each choice removed alone; {ABLATION_STEPS:,} steps unless --steps)", ""]
        out += [f"- `{n}`: {d}" for n, (d, _) in ABLATION.items()] + [""]
        out += [table(header, summary(runs, "ablation"), "llrrrlr"), ""]
    if any(r["part"] == "final" for r in runs):
        out += ["## The default as shipped", ""]
        out += [table(header, summary(runs, "final"), "llrrrlr"), ""]
    if any(r["part"] == "budget" for r in runs):
        out += ["## Quality against the step budget (default, seed 0)", ""]
        out += [table(["steps"] + header[1:], summary(runs, "budget"), "rlrrrlr"), ""]
    if any(r["part"] == "heldout" for r in runs):
        out += ["## Mixtures the defaults were not tuned on", ""]
        out += [f"- `{n}`: {d}" for n, (d, _, _) in HELDOUT.items()] + [""]
        out += [table(header, summary(runs, "heldout"), "llrrrlr"), ""]
    out += [DETAILS, "", "Per run:", ""]
    out.append(table(["part", "row", "data", "seed", "steps", "modes", "HQ %", "KL", "train s", "ms/step"],
                     [[r["part"], r["name"], r["data"], r["seed"], r["steps"], f"{r['modes']:.0f}",
                       f"{100 * r['high_quality']:.1f}", f"{r['reverse_kl']:.4f}", f"{r['train_s']:.0f}",
                       f"{r['ms_per_step']:.1f}"] for r in runs], "llllrrrrrr"))
    return "\n".join(out)


def plot_samples(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mvm_core.build import build_dataset

    shown = [r for r in runs if "samples" in r]
    if not shown:
        return
    fig, axes = plt.subplots(1, len(shown), figsize=(3 * len(shown), 3.5), squeeze=False)
    for ax, r in zip(axes[0], shown):
        mixture = build_dataset(resolved_config({}, r["data"], r["data_kwargs"], 0, None)).mixture
        x = torch.tensor(r["samples"])
        ax.scatter(x[:, 0], x[:, 1], s=0.5, alpha=0.5)
        ax.scatter(mixture.means[:, 0], mixture.means[:, 1], s=6, c="red", marker="x", linewidths=0.6)
        lim = mixture.extent() * 1.15
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
        ax.set_title(f"{r['name']}\n{r['modes']:.0f}/{r['num_modes']} modes, HQ {100 * r['high_quality']:.1f}%",
                     fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 seed, 30 steps, default rows")
    parser.add_argument("--parts", nargs="+", choices=("ablation", "final", "budget", "heldout"),
                        default=["ablation", "final", "budget", "heldout"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--heldout-seeds", nargs="+", type=int, default=[0],
                        help="seeds for the held-out mixtures (among --seeds)")
    parser.add_argument("--steps", type=int, help="override every budget")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--fresh", action="store_true", help="ignore finished runs in the JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.seeds, args.steps = args.seeds[:1], args.steps or 30
    stem = "precision2d.quick" if args.quick else "precision2d"
    previous = None if args.fresh else read_json(args.out / f"{stem}.json")
    kept = previous["runs"] if previous else []
    todo = jobs(args.parts, args.seeds, args.steps, args.heldout_seeds)
    if args.quick:
        todo = [j for j in todo if j[0] in ("final", "budget") or j[1] == "ring12"][:5]
    meta = {"quick": args.quick, "seeds": args.seeds, "parts": args.parts, "steps_override": args.steps,
            "machine": machine(args.threads),
            "preset_values": resolved_config({}, "ring", {}, 0, args.steps).to_dict()}
    runs: list[dict] = []

    def save() -> None:
        meta["load_average_end"] = load_average()
        data = {"meta": meta, "runs": runs}
        write_results(args.out, stem, data, markdown(data))

    pending = []
    for part, name, data, data_kwargs, seed, overrides, steps in todo:
        config = resolved_config(overrides, data, data_kwargs, seed, steps)
        keep = seed == args.seeds[0] and part in ("final", "heldout")
        done = next((r for r in kept if r["part"] == part and r["name"] == name and r["data"] == data
                     and r["seed"] == seed and same_config(r["resolved"], config.to_dict())
                     and ("samples" in r or not keep)), None)
        if done is None:
            pending.append((part, name, config, keep))
        else:
            runs.append(done)
    # identical resolved configs (e.g. budget 12,000 and final, seed 0) are trained once
    unique: dict[str, tuple] = {}
    twins: dict[str, list[tuple]] = {}
    for job in pending:
        key = json.dumps(job[2].to_dict(), sort_keys=True, default=str)
        if key in unique:
            twins.setdefault(key, []).append(job)
            unique[key] = (*unique[key][:3], unique[key][3] or job[3])
        else:
            unique[key] = job
    # longest runs first, so that parallel workers finish together
    pending = sorted(unique.values(), key=lambda job: -job[2].steps * job[2].batch_size * job[2].width)
    def finished(done: dict) -> None:
        print(f"{done['part']:8s} {done['name']:14s} {done['data']} s{done['seed']}: modes"
              f" {done['modes']:.0f}/{done['num_modes']} HQ {100 * done['high_quality']:.1f}%"
              f" KL {done['reverse_kl']:.4f} ({done['train_s']:.0f} s)", flush=True)
        runs.append(done)
        key = json.dumps(done["resolved"], sort_keys=True, default=str)
        for part, name, _, _ in twins.get(key, []):
            runs.append({**done, "part": part, "name": name})
        save()

    if args.jobs == 1:
        for job in pending:
            finished(run_one(*job))
    else:  # spawned workers import this file as a script (run it as one, not imported by name)
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=torch.set_num_threads, initargs=(args.threads,)) as pool:
            for future in as_completed([pool.submit(run_one, *job) for job in pending]):
                finished(future.result())
    order = {(j[0], j[1], j[2], j[4]): i for i, j in enumerate(todo)}
    runs.sort(key=lambda r: order.get((r["part"], r["name"], r["data"], r["seed"]), 0))
    save()
    plot_samples([r for r in runs if "samples" in r and r["part"] in ("final", "heldout")],
                 args.out / f"{stem}_samples.png")
    print((args.out / f"{stem}.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
