"""Time per training step: the Trainer vs a minimal hand-written loop vs the reference code's order.

All three use the same networks, objectives, batch and optimizers (the `default` digits recipe):
* trainer: `mvm_core.trainer.Trainer.train_step` (one G forward, one M forward over real + fake);
* minimal: the same single-pass step written by hand (the Trainer's overhead is the difference);
* reference-order: as the MvM reference code, G runs three times per iteration (generator step,
  metric step on fresh fakes, logging) and M embeds real and fake separately in each step.

    python benchmarks/bench_trainer_step.py [--steps 100] [--repeats 5] [--threads 1] [--quick] [--out DIR]

Wall-clock and process CPU time are both recorded: on a shared machine the CPU time (one thread)
is the steadier measure of the work done. Writes <out>/trainer_step.{json,md} (default
benchmarks/results; ``trainer_step.quick.*`` with --quick); quote medians and ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from mvm_core.build import build_trainer
from mvm_core.runconfig import build_run_config

RESULTS = Path(__file__).parent / "results"


def make(seed: int = 0):
    config = build_run_config({"data": "digits", "seed": seed, "device": "cpu", "log_every": 10**9})
    return build_trainer(config)


def step_minimal(t) -> None:
    real, _ = next(t.batches)
    z = t.latent(len(real))
    fake = t.generator(z)
    emb = t.metric_net(torch.cat([real, fake]))
    r, f = emb[: len(real)], emb[len(real) :]
    loss_g = t.matching(r.detach(), ref_emb=f)
    t.g_opt.zero_grad(set_to_none=True)
    loss_g.backward(inputs=list(t.generator.parameters()), retain_graph=True)
    t.g_opt.step()
    t.ema.update(t.generator)
    loss_m = t.metric_objective(r, f)
    t.m_opt.zero_grad(set_to_none=True)
    loss_m.backward(inputs=list(t.metric_net.parameters()))
    t.m_opt.step()


def step_reference_order(t) -> None:
    real, _ = next(t.batches)
    fake = t.generator(t.latent(len(real)))  # 1: generator step
    loss_g = t.matching(t.metric_net(real).detach(), ref_emb=t.metric_net(fake))
    t.g_opt.zero_grad(set_to_none=True)
    loss_g.backward(inputs=list(t.generator.parameters()))
    t.g_opt.step()
    t.ema.update(t.generator)
    fake = t.generator(t.latent(len(real))).detach()  # 2: metric step on fresh fakes
    loss_m = t.metric_objective(t.metric_net(real), t.metric_net(fake))
    t.m_opt.zero_grad(set_to_none=True)
    loss_m.backward(inputs=list(t.metric_net.parameters()))
    t.m_opt.step()
    with torch.no_grad():  # 3: the reference logs with another generator pass
        t.generator(t.latent(len(real)))


def time_steps(fn, trainer, steps: int) -> tuple[float, float]:
    """Seconds per step after a warm-up: (wall clock, process CPU time)."""
    for _ in range(5):  # warm-up
        fn(trainer)
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        fn(trainer)
    return (time.perf_counter() - start) / steps, (time.process_time() - start_cpu) / steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="5 steps x 1 repeat (CI smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats = 5, 1
    torch.set_num_threads(args.threads)
    contenders = {
        "trainer": lambda t: t.train_step(),
        "minimal": step_minimal,
        "reference-order": step_reference_order,
    }
    times = {name: [] for name in contenders}
    cpu = {name: [] for name in contenders}
    load_start = os.getloadavg()
    for _ in range(args.repeats):  # interleaved, so load changes hit every contender alike
        for name, fn in contenders.items():
            wall, used = time_steps(fn, make(), args.steps)
            times[name].append(wall)
            cpu[name].append(used)
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    rows = [
        {"contender": k, "median_ms": 1000 * med[k], "runs_ms": [1000 * x for x in times[k]],
         "vs_minimal": med[k] / med["minimal"], "median_cpu_ms": 1000 * med_cpu[k],
         "runs_cpu_ms": [1000 * x for x in cpu[k]], "cpu_vs_minimal": med_cpu[k] / med_cpu["minimal"]}
        for k in contenders
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"steps": args.steps, "repeats": args.repeats, "threads": args.threads,
            "torch": torch.__version__, "recipe": "mvm train default (digits 8x8, batch 64)",
            "load_average": [round(x, 2) for x in (*load_start, *os.getloadavg())]}
    stem = "trainer_step.quick" if args.quick else "trainer_step"
    (args.out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [f"Time per step, {meta['recipe']}, {args.threads} thread(s), median of {args.repeats}"
             f" x {args.steps} steps; load average (1/5/15 min) {meta['load_average'][:3]} at start,"
             f" {meta['load_average'][3:]} at end.", "",
             "| contender | median ms/step (wall) | x minimal | median CPU ms/step | x minimal |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['contender']} | {r['median_ms']:.2f} | {r['vs_minimal']:.3f} | {r['median_cpu_ms']:.2f}"
              f" | {r['cpu_vs_minimal']:.3f} |" for r in rows]
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
