"""Start-up and throughput of what users run: ``import mvm_core`` and the default ``mvm train``.

* import time: ``--imports`` fresh interpreters each time ``import torch`` and then
  ``import mvm_core`` (what the package adds on top of torch), wall clock and process CPU time,
  medians; plus ``mvm --help`` end to end (interpreter start, imports, argument parsing);
* the default CLI run: ``mvm train --steps N --no-progress`` (the digits default preset, CPU)
  in a subprocess: steps per second from the timestamps in its ``log.jsonl`` (training only,
  first to last logged step), the command's total wall time (start-up, data, final evaluation and
  checkpoint included) and its CPU time.

    .venv/bin/python benchmarks/bench_cli.py             # 5 imports, 200 CLI steps
    .venv/bin/python benchmarks/bench_cli.py --quick     # smoke test: 1 import, 20 steps, no --help

Results: ``<out>/cli.{json,md}`` (``cli.quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, fmt, load_average, machine, table, write_results  # noqa: E402

_IMPORT_PROBE = """
import json, time
w0, c0 = time.perf_counter(), time.process_time()
import torch
w1, c1 = time.perf_counter(), time.process_time()
import mvm_core
w2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"torch_wall": w1 - w0, "torch_cpu": c1 - c0,
                  "mvm_core_wall": w2 - w1, "mvm_core_cpu": c2 - c1}))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def import_times(n: int) -> dict:
    """Median import times over ``n`` fresh interpreters."""
    runs = []
    for _ in range(n):
        out = subprocess.run([sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True,
                             check=True, cwd=ROOT, env=_env())
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]} | {"runs": runs}


def mvm_executable() -> list[str]:
    script = Path(sys.executable).with_name("mvm")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mvm_core.cli"]


def help_time(n: int) -> dict:
    if n == 0:
        return {"wall_s": float("nan"), "cpu_s": float("nan")}
    walls, cpus = [], []
    for _ in range(n):
        cpu0, start = _children_cpu(), time.perf_counter()
        subprocess.run([*mvm_executable(), "--help"], capture_output=True, check=True, cwd=ROOT, env=_env())
        walls.append(time.perf_counter() - start)
        cpus.append(_children_cpu() - cpu0)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus)}


def cli_run(steps: int) -> dict:
    """``mvm train --steps N`` with the default preset; throughput from its log."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cmd = [*mvm_executable(), "train", "--steps", str(steps), "--out", str(run_dir), "--no-progress",
               "--log-every", "10", "--checkpoint-every", "0"]
        cpu0, start = _children_cpu(), time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=_env())
        wall, cpu = time.perf_counter() - start, _children_cpu() - cpu0
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
        records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line]
        records = [r for r in records if "step" in r and "time" in r]
        first, last = records[0], records[-1]
        span = last["time"] - first["time"]
        metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").exists() else {}
    shown = ["mvm", *cmd[len(mvm_executable()):]]
    shown[shown.index("--out") + 1] = "RUN"
    return {"command": " ".join(shown), "steps": steps,
            "steps_per_s": (last["step"] - first["step"]) / span if span > 0 else float("nan"),
            "total_wall_s": wall, "total_cpu_s": cpu, "stdout_tail": proc.stdout.strip().splitlines()[:1],
            "final_metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))}}


def markdown(data: dict) -> str:
    meta, imp, hlp, cli = data["meta"], data["imports"], data["help"], data["cli"]
    lines = [
        f"# Start-up and CLI throughput ({'quick' if meta['quick'] else 'full'} run)",
        "",
        f"{meta['machine']['cpu']}, {meta['machine']['logical_cpus']} logical CPUs shared with other"
        f" jobs (load {meta['machine']['load_average_start']} at start, {meta.get('load_average_end')}"
        f" at end), torch {meta['machine']['torch']}, commit {meta['machine']['commit'][:10]}"
        f"{' + local changes' if meta['machine']['dirty'] else ''}. Medians of {meta['imports']}"
        " fresh interpreters.",
        "",
        table(["what", "wall s", "CPU s"], [
            ["`import torch`", fmt(imp["torch_wall"], "{:.2f}"), fmt(imp["torch_cpu"], "{:.2f}")],
            ["`import mvm_core` (after torch)", fmt(imp["mvm_core_wall"], "{:.2f}"),
             fmt(imp["mvm_core_cpu"], "{:.2f}")],
            ["`mvm --help` (whole process)", fmt(hlp["wall_s"], "{:.2f}"), fmt(hlp["cpu_s"], "{:.2f}")],
        ], "lrr"),
        "",
        table(["default CLI run", "steps", "steps/s (training)", "command wall s", "command CPU s"], [
            [f"`{cli['command']}`", cli["steps"], fmt(cli["steps_per_s"], "{:.1f}"),
             fmt(cli["total_wall_s"], "{:.1f}"), fmt(cli["total_cpu_s"], "{:.1f}")]], "lrrrr"),
        "",
        "steps/s: logged steps between the first and last record of `log.jsonl` over their time"
        " span (training only). Command wall/CPU: the whole process (start-up, data, final"
        " evaluation and checkpoint included).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 import, 20 CLI steps")
    parser.add_argument("--imports", type=int, default=5, help="fresh interpreters for import times")
    parser.add_argument("--steps", type=int, default=200, help="steps of the CLI run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.imports, args.steps = 1, 20
    meta = {"quick": args.quick, "imports": args.imports, "machine": machine(1)}
    data = {"meta": meta, "imports": import_times(args.imports),
            "help": help_time(0 if args.quick else args.imports),
            "cli": cli_run(args.steps)}
    meta["load_average_end"] = load_average()
    md = markdown(data)
    write_results(args.out, "cli.quick" if args.quick else "cli", data, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
