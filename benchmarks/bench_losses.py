"""Cost of the two objectives against the batch size: time and peak memory of forward + backward.

For ``B`` real and ``B`` generated embeddings of dimension ``--dim`` (default 32), B in 64 ... 2048:

* matching (generator objective; gradients to the generated embeddings, the real ones detached
  as in the trainer): ``ManifoldMatchingLoss`` centroid + sorted p-diameter (the library's form),
  the same with the reference's paired p-diameter, and ``EnergyMatchingLoss`` (the presets'
  ``matching="energy"``). Every form builds B x B distance matrices: quadratic in the batch;
* metric objective (gradients to both): ``MetricObjective()`` (MvM triplet, FAISS hard negatives,
  k = 8 per real anchor), the reference's random triplets (``miner="random"``, the 2D preset),
  and pml's ``ContrastiveLoss`` with the default miner (the image preset) and over all pairs of
  the batch (``miner=None``).

Time: median of ``--repeats`` calls after one warm-up (fewer when a cell exceeds ``--budget-s``),
wall-clock and CPU time of the process (one thread: the CPU time is the compute itself, less
sensitive than the wall clock to other jobs on a shared machine).
Memory: the process's peak resident memory during one call (Linux ``VmHWM``, reset through
``/proc/self/clear_refs`` after ``gc`` + ``malloc_trim``) minus the resident memory before it:
what the call allocates beyond its inputs (torch's CPU allocator returns large blocks to the OS,
so this is the call's own peak). Single-threaded torch.

    .venv/bin/python benchmarks/bench_losses.py            # full: B = 64 ... 2048
    .venv/bin/python benchmarks/bench_losses.py --quick    # smoke test: B = 32, 64

Results: ``<out>/losses.{json,md}`` (``losses.quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, fmt, load_average, machine, table, write_results  # noqa: E402


def contenders() -> dict[str, tuple[str, Callable[[], Callable]]]:
    """name -> (description, factory of ``call(real, fake) -> loss``)."""
    from pytorch_metric_learning import losses

    from mvm_core import ManifoldMatchingLoss, MetricObjective
    from mvm_core.set_matching import EnergyMatchingLoss

    def matching(loss):
        return lambda real, fake: loss(real.detach(), ref_emb=fake)

    return {
        "matching: centroid + sorted p-diameter": (
            "ManifoldMatchingLoss(diameter_form='sorted')",
            lambda: matching(ManifoldMatchingLoss(diameter_form="sorted"))),
        "matching: centroid + paired p-diameter": (
            "ManifoldMatchingLoss(diameter_form='paired') (reference)",
            lambda: matching(ManifoldMatchingLoss(diameter_form="paired"))),
        "matching: energy distance": (
            "EnergyMatchingLoss() (presets' matching='energy')",
            lambda: matching(EnergyMatchingLoss())),
        "metric: MvM triplet, FAISS k=8": (
            "MetricObjective() (default miner: 8 nearest fakes per real anchor)",
            lambda: MetricObjective()),
        "metric: MvM triplet, random": (
            "MetricObjective(miner='random') (reference; 2D preset)",
            lambda: MetricObjective(miner="random")),
        "metric: contrastive, FAISS k=8": (
            "MetricObjective(ContrastiveLoss(0, 1)) (image preset: default miner)",
            lambda: MetricObjective(losses.ContrastiveLoss(pos_margin=0.0, neg_margin=1.0))),
        "metric: contrastive, all pairs": (
            "MetricObjective(ContrastiveLoss(0, 1), miner=None) (every real-real / real-fake pair)",
            lambda: MetricObjective(losses.ContrastiveLoss(pos_margin=0.0, neg_margin=1.0), miner=None)),
    }


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _clean() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def peak_extra_mib(fn: Callable[[], None]) -> float:
    """Peak resident memory of one call of ``fn`` above the resident memory before it (MiB)."""
    _clean()
    before = _status_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return math.nan
    fn()
    return max(0.0, (_status_kib("VmHWM") - before) / 1024)


def measure(factory: Callable[[], Callable], batch: int, dim: int, repeats: int, budget_s: float) -> dict:
    g = torch.Generator().manual_seed(batch)
    real = torch.randn(batch, dim, generator=g).requires_grad_()
    fake = (torch.randn(batch, dim, generator=g) + 0.5).requires_grad_()
    call = factory()

    def step() -> None:
        real.grad = fake.grad = None
        call(real, fake).backward()

    step()  # warm-up (lazy imports, FAISS index set-up)
    times: list[float] = []
    cpu: list[float] = []
    spent = time.perf_counter()
    while len(times) < repeats and (not times or time.perf_counter() - spent < budget_s):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"batch": batch, "median_ms": 1000 * statistics.median(times),
            "median_cpu_ms": 1000 * statistics.median(cpu), "calls": len(times),
            "peak_extra_mib": peak_extra_mib(step)}


def slope(rows: list[dict], key: str) -> float:
    """Log-log slope of ``key`` between the two largest batches (2 = quadratic)."""
    pts = [(r["batch"], r[key]) for r in rows if r.get(key, 0) and r[key] > 0]
    if len(pts) < 2:
        return math.nan
    (b1, v1), (b2, v2) = pts[-2], pts[-1]
    return math.log(v2 / v1) / math.log(b2 / b1)


def markdown(data: dict) -> str:
    meta, results = data["meta"], data["results"]
    batches = meta["batches"]
    lines = [
        f"# Loss cost against the batch ({'quick' if meta['quick'] else 'full'} run)",
        "",
        f"B real + B generated embeddings of dimension {meta['dim']}, forward + backward, median of"
        f" up to {meta['repeats']} calls; peak memory = resident-memory high-water mark of one call"
        f" above the resident memory before it (Linux VmHWM). {meta['machine']['cpu']},"
        f" 1 torch thread, machine shared (load {meta['machine']['load_average_start']} at start,"
        f" {meta.get('load_average_end')} at end), torch {meta['machine']['torch']}, commit"
        f" {meta['machine']['commit'][:10]}{' + local changes' if meta['machine']['dirty'] else ''}.",
        "",
        "CPU time (ms per forward + backward; wall-clock medians are in the JSON):",
        "",
    ]
    header = ["objective"] + [f"B={b}" for b in batches] + ["slope"]
    lines.append(table(header, [[name] + [fmt(r["median_cpu_ms"], "{:.3g}") for r in rows]
                                + [fmt(slope(rows, "median_cpu_ms"), "{:.2f}")]
                                for name, rows in results.items()]))
    lines += ["", "Peak extra memory (MiB):", ""]
    lines.append(table(header, [[name] + [fmt(r["peak_extra_mib"], "{:.3g}") for r in rows]
                                + [fmt(slope(rows, "peak_extra_mib"), "{:.2f}")]
                                for name, rows in results.items()]))
    lines += ["", "`slope`: log-log slope between the two largest batches (1 linear, 2 quadratic).",
              "Objectives: " + "; ".join(f"`{k}` = {v}" for k, v in meta["descriptions"].items()) + "."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: B = 32, 64, 2 calls")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048])
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--budget-s", type=float, default=20.0, help="time cap per cell")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.repeats = [32, 64], 2
    torch.set_num_threads(1)
    found = contenders()
    meta = {"quick": args.quick, "batches": args.batches, "dim": args.dim, "repeats": args.repeats,
            "budget_s": args.budget_s, "machine": machine(1),
            "descriptions": {k: v[0] for k, v in found.items()}}
    results: dict[str, list[dict]] = {}
    for name, (_, factory) in found.items():
        results[name] = []
        for batch in args.batches:
            row = measure(factory, batch, args.dim, args.repeats, args.budget_s)
            results[name].append(row)
            print(f"{name:40s} B={batch:5d} {row['median_cpu_ms']:9.2f} ms CPU"
                  f" {row['median_ms']:9.2f} ms wall {row['peak_extra_mib']:8.1f} MiB",
                  flush=True)
    meta["load_average_end"] = load_average()
    data = {"meta": meta, "results": results}
    md = markdown(data)
    write_results(args.out, "losses.quick" if args.quick else "losses", data, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
