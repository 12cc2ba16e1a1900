"""Hard-negative mining at scale: mvm_core's FAISS miner against torch brute force and pml miners.

For ``--anchors`` real embeddings (default 4,096, dim 128) and banks of generated embeddings of
each ``--sizes`` (default 10^4, 10^5, 10^6), mine the ``k = 8`` nearest generated embeddings of
every anchor with:

* ``ours-flat``   FaissHardNegativeMiner(index="flat"): exact FAISS search over the bank;
* ``ours-ivf``    FaissHardNegativeMiner(index="ivf"): approximate, with its recall@k;
* ``ours-hnsw``   FaissHardNegativeMiner(index="hnsw"): approximate (up to ``--hnsw-max`` rows:
                  its single-thread build is slow);
* ``torch-chunked``  chunked cdist + top-k (``mvm_core.mining.chunked_knn``, the miner's own
                  fallback without FAISS);
* ``pml-BatchHardMiner`` / ``pml-TripletMarginMiner``  pytorch-metric-learning's miners on the
                  same data (anchors as reals, ``ref_emb`` = anchors + bank): they build dense
                  distance matrices (and all triplets for the latter).

Each contender runs in a subprocess capped with ``RLIMIT_AS`` (``--mem-cap-gib``, default 6) so
an allocation that does not fit fails there (reported as OOM) instead of swapping the machine;
every contender uses ``--threads`` threads (default 1) for torch and FAISS. Times are medians of
``--repeats`` calls (fewer when a call exceeds ``--budget-s``); the approximate indexes' first
call builds the index and is reported separately. Peak memory is the subprocess's VmHWM over the
timed calls (reset with /proc/self/clear_refs after the data is built), and ``extra`` is that
peak minus the resident size before the calls (the data itself excluded).

Data (``--data manifold``, default): embeddings near a union of 64 random 16-dimensional affine
subspaces of R^128 (centres ~ N(0, 9 I), coordinates ~ N(0, I), isotropic noise 0.1), the low
intrinsic dimension a trained metric network produces; ``--data iso`` is isotropic N(0, I) noise,
the worst case for approximate search.

Usage::

    python benchmarks/bench_mining.py            # full run (tens of minutes on one core)
    python benchmarks/bench_mining.py --quick    # CI smoke test: small sizes, one subprocess

Results: ``benchmarks/results/mining[.quick][.iso].json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONTENDERS = (
    "ours-flat",
    "ours-ivf",
    "ours-hnsw",
    "torch-chunked",
    "pml-BatchHardMiner",
    "pml-TripletMarginMiner",
)
RESULTS = Path(__file__).resolve().parent / "results"


# ------------------------------------------------------------------------------------------------
# worker side (runs in the capped subprocess)


def make_data(n: int, d: int, seed: int, kind: str):
    """(n, d) float32 embeddings, generated in blocks (deterministic given the seed)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    if kind == "iso":
        return torch.randn(n, d, generator=g)
    model = torch.Generator().manual_seed(12345)  # the same subspaces for anchors and bank
    clusters, intrinsic = 64, 16
    centres = 3.0 * torch.randn(clusters, d, generator=model)
    bases = torch.linalg.qr(torch.randn(clusters, d, intrinsic, generator=model)).Q
    out = torch.empty(n, d)
    for s in range(0, n, 65536):
        m = min(65536, n - s)
        c = torch.randint(0, clusters, (m,), generator=g)
        u = torch.randn(m, intrinsic, generator=g)
        out[s : s + m] = (
            centres[c]
            + torch.einsum("mdi,mi->md", bases[c], u)
            + 0.1 * torch.randn(m, d, generator=g)
        )
    return out


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _per_anchor_rows(indices, ref_emb, n_anchors: int, k: int):
    """(A, k, d) negative vectors grouped by anchor (None if some anchor has fewer than k)."""
    import torch

    a, _, n = indices
    if len(a) != n_anchors * k:
        return None
    order = torch.argsort(a, stable=True)
    return ref_emb[n[order]].view(n_anchors, k, -1)


def _recall(rows, truth) -> float:
    """Share of the exact k nearest (as vectors) found, per anchor, averaged."""
    if rows is None:
        return float("nan")
    hits = 0
    for s in range(0, len(rows), 256):
        eq = (rows[s : s + 256, :, None, :] == truth[s : s + 256, None, :, :]).all(-1)
        hits += int(eq.any(1).sum())
    return hits / truth.shape[0] / truth.shape[1]


def _release_freed_memory() -> None:
    """Return freed heap pages to the OS so the next call's peak is measured from a clean base."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def make_call(name: str, spec: dict, anchors, bank_data, shared: dict):
    """A no-argument callable doing one mining call of contender ``name`` (setup done here)."""
    import torch
    from pytorch_metric_learning import miners as pml_miners

    from mvm_core.matching import squared_euclidean
    from mvm_core.metric import FAKE, REAL
    from mvm_core.mining import FaissHardNegativeMiner, FakeEmbeddingBank, chunked_knn

    k = spec["k"]
    labels = torch.full((len(anchors),), REAL, dtype=torch.long)
    if name.startswith("ours-"):
        index = name.split("-", 1)[1]
        params = {
            "flat": {},
            "ivf": {"nprobe": spec["nprobe"]},
            "hnsw": {"ef_search": spec["ef_search"], "hnsw_m": spec["hnsw_m"]},
        }[index]
        if "bank" not in shared:  # one bank shared by our miners (each keeps its own index)
            shared["bank"] = FakeEmbeddingBank(len(bank_data), max_age=None)
            shared["bank"].enqueue(bank_data)
        miner = FaissHardNegativeMiner(
            k=k, bank=shared["bank"], source="bank", index=index, **params
        )
        return (lambda: miner.mine_with_reference(anchors, labels)), miner, params
    if name == "torch-chunked":
        return (lambda: chunked_knn(anchors, bank_data, k, squared_euclidean())), None, {}
    cls = getattr(pml_miners, name.split("-", 1)[1])
    kwargs = {"distance": squared_euclidean()}
    if cls is pml_miners.TripletMarginMiner:
        kwargs.update(margin=0.2, type_of_triplets="hard")
    miner = cls(**kwargs)
    ref = torch.cat([anchors, bank_data])
    ref_labels = torch.cat([labels, torch.full((len(bank_data),), FAKE, dtype=torch.long)])
    return (lambda: miner(anchors, labels, ref, ref_labels)), miner, {}


def _measured(call, memory: dict | None = None):
    """(output, seconds, peak MiB over the call, extra MiB over the RSS before it).

    ``memory`` receives the peak and extra even when the call raises (an allocation that failed).
    """
    memory = {} if memory is None else memory
    _release_freed_memory()
    reset = _reset_peak()
    base = _status_kib("VmRSS")
    start = time.perf_counter()
    try:
        out = call()
    finally:
        seconds = time.perf_counter() - start
        peak = _status_kib("VmHWM") if reset else _status_kib("VmRSS")
        memory.update(peak_rss_mib=peak / 1024, extra_mib=(peak - base) / 1024)
    return out, seconds, memory["peak_rss_mib"], memory["extra_mib"]


def run_group(spec: dict, anchors, bank_data) -> list[dict]:
    """Run the contenders of ``spec`` in interleaved rounds (so that a change in the shared
    machine's load affects them alike); approximate indexes are built by a first, separate call."""
    k, n_anchor = spec["k"], len(anchors)
    shared: dict = {}
    rows, calls = {}, {}
    for name in spec["contenders"]:
        row = {
            "contender": name,
            "size": len(bank_data),
            "status": "ok",
            "times_s": [],
            "peak_rss_mib": 0.0,
            "extra_mib": 0.0,
        }
        try:
            calls[name], miner, params = make_call(name, spec, anchors, bank_data, shared)
            row["miner"] = miner
            if params:
                row["params"] = params
        except (MemoryError, RuntimeError) as err:
            _fail(row, err)
        rows[name] = row
    outputs = {}
    for name in [n for n in spec["contenders"] if n in ("ours-ivf", "ours-hnsw") and n in calls]:
        row = rows[name]
        try:
            before = _status_kib("VmRSS")
            out, seconds, peak, extra = _measured(calls[name])
            row.update(
                first_call_s=seconds,
                build_peak_rss_mib=peak,
                index_mib=(_status_kib("VmRSS") - before) / 1024,
                approximate=bool(row["miner"].approximate_search),
            )
        except (MemoryError, RuntimeError) as err:
            _fail(row, err)
            calls.pop(name)
    start = time.perf_counter()
    for _ in range(spec["repeats"]):
        for name in list(calls):
            row = rows[name]
            memory: dict = {}
            try:
                out, seconds, peak, extra = _measured(calls[name], memory)
            except (MemoryError, RuntimeError) as err:
                _fail(row, err)
                row["peak_rss_mib"] = max(row["peak_rss_mib"], memory.get("peak_rss_mib", 0.0))
                row["extra_mib"] = max(row["extra_mib"], memory.get("extra_mib", 0.0))
                calls.pop(name)
                continue
            row["times_s"].append(seconds)
            row["peak_rss_mib"] = max(row["peak_rss_mib"], peak)
            row["extra_mib"] = max(row["extra_mib"], extra)
            outputs[name] = out
        if time.perf_counter() - start > spec["budget_s"]:
            break
    truth = None
    for name in spec["contenders"]:
        row = rows[name]
        miner = row.pop("miner", None)
        if row["times_s"]:
            row["median_s"] = statistics.median(row["times_s"])
            row["runs"] = len(row["times_s"])
            if "first_call_s" in row:
                row["build_s"] = row["first_call_s"] - row["median_s"]
        out = outputs.get(name)
        if out is None:
            continue
        if name.startswith("ours-"):
            indices, ref_emb, _ = out
            vectors = _per_anchor_rows(indices, ref_emb, n_anchor, k)
        elif name == "torch-chunked":
            vectors = bank_data[out[1]]
        else:
            continue
        if name == "ours-flat":
            truth = vectors
            row["recall"] = 1.0
        elif truth is not None:
            row["recall"] = _recall(vectors, truth)
        knob = {"ours-ivf": "nprobe", "ours-hnsw": "ef_search"}.get(name)
        if knob and truth is not None and row["status"] == "ok":
            row["sweep"] = _sweep(miner, knob, spec[f"{knob}_sweep"], calls[name], truth, k)
    return [rows[name] for name in spec["contenders"]]


def _sweep(miner, knob: str, values: list[int], call, truth, k: int) -> list[dict]:
    """Recall and time of one search call for each value of the index's recall knob."""
    default, out = getattr(miner, knob), []
    for value in values:
        setattr(miner, knob, value)
        (indices, ref_emb, _), seconds, _, _ = _measured(call)
        vectors = _per_anchor_rows(indices, ref_emb, len(truth), k)
        out.append({knob: value, "seconds": seconds, "recall": _recall(vectors, truth)})
    setattr(miner, knob, default)
    return out


def _fail(row: dict, err: BaseException) -> None:
    message = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
    oom = isinstance(err, MemoryError) or "alloc" in message.lower() or "memory" in message.lower()
    row.update(status="oom" if oom else "error", error=message)


def worker(spec: dict) -> None:
    import torch

    torch.set_num_threads(spec["threads"])
    import faiss

    faiss.omp_set_num_threads(spec["threads"])
    anchors = make_data(spec["anchors"], spec["dim"], 1, spec["data"])
    bank_data = make_data(spec["size"], spec["dim"], 2, spec["data"])
    print("RESULT " + json.dumps(run_group(spec, anchors, bank_data)))


# ------------------------------------------------------------------------------------------------
# parent side


def _limit(cap_bytes: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))

    return apply


def run_subprocess(spec: dict, args) -> list[dict]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(args.threads)
    env["MALLOC_MMAP_THRESHOLD_"] = "131072"  # big blocks go back to the OS when freed
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=_limit(int(args.mem_cap_gib * (1 << 30))),
    )
    wall = time.perf_counter() - start
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            rows = json.loads(line[len("RESULT ") :])
            for row in rows:
                row["subprocess_wall_s"] = wall
            return rows
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    status = "oom" if proc.returncode < 0 or "MemoryError" in " ".join(tail) else "error"
    return [
        {
            "contender": name,
            "size": spec["size"],
            "status": status,
            "error": f"exit {proc.returncode}: {' | '.join(tail)[:300]}",
        }
        for name in spec["contenders"]
    ]


def _fmt(value, spec="{:.3g}"):
    if value is None or value != value:  # None or nan
        return "-"
    return spec.format(value)


def markdown(rows: list[dict], meta: dict) -> str:
    torch_time = {r["size"]: r.get("median_s") for r in rows if r["contender"] == "torch-chunked"}
    lines = [
        f"Mining benchmark: {meta['anchors']} anchors, dim {meta['dim']}, k = {meta['k']},"
        f" data '{meta['data']}', {meta['threads']} thread(s) per contender, memory cap"
        f" {meta['mem_cap_gib']} GiB; {meta['cpu']}; torch {meta['torch']}, faiss {meta['faiss']},"
        f" pml {meta['pml']}.",
        "",
        "| bank | contender | median s | runs | x vs torch | recall@k | build s | index MiB"
        " | peak MiB | extra MiB | anchors x bank MiB | status |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        speed = None
        if r.get("median_s") and torch_time.get(r["size"]):
            speed = torch_time[r["size"]] / r["median_s"]
        dense = meta["anchors"] * r["size"] * 4 / (1 << 20)
        status = _status_text(r)
        name = r["contender"]
        if r.get("params"):
            name += " (" + ", ".join(f"{k}={v}" for k, v in r["params"].items()) + ")"
        lines.append(
            f"| {r['size']:,} | {name} | {_fmt(r.get('median_s'))} | {r.get('runs', '-')}"
            f" | {_fmt(speed, '{:.1f}')} | {_fmt(r.get('recall'), '{:.4f}')}"
            f" | {_fmt(r.get('build_s'))} | {_fmt(r.get('index_mib'), '{:.0f}')}"
            f" | {_fmt(r.get('peak_rss_mib'), '{:.0f}')}"
            f" | {_fmt(r.get('extra_mib'), '{:.0f}')} | {dense:,.0f} | {status} |"
        )
    sweeps = [r for r in rows if r.get("sweep")]
    if sweeps:
        lines += [
            "",
            "Recall/speed knobs (one call each, same process and data as the rows above):",
            "",
            "| bank | index | knob | s | x vs torch | recall@k |",
            "|---:|---|---|---:|---:|---:|",
        ]
        for r in sweeps:
            for point in sorted(
                r["sweep"] + [_default_point(r)], key=lambda p: list(p.values())[0]
            ):
                knob, value = next(iter(point.items()))
                speed = torch_time.get(r["size"]) and torch_time[r["size"]] / point["seconds"]
                lines.append(
                    f"| {r['size']:,} | {r['contender']} | {knob}={value} | {point['seconds']:.3g}"
                    f" | {_fmt(speed, '{:.1f}')} | {_fmt(point['recall'], '{:.4f}')} |"
                )
    return "\n".join(lines) + "\n"


def _status_text(row: dict) -> str:
    if row["status"] == "ok":
        return "ok"
    tried = re.search(r"tried to allocate (\d+) bytes", row.get("error", ""))
    if row["status"] == "oom" and tried:
        return f"OOM: an allocation of {int(tried.group(1)) / (1 << 30):.2f} GiB failed"
    return f"{row['status']}: {row.get('error', '')[:80]}"


def _default_point(row: dict) -> dict:
    knob, value = next(iter(row["params"].items()))
    return {knob: value, "seconds": row["median_s"], "recall": row.get("recall")}


def check_targets(rows: list[dict], sizes: list[int]) -> list[str]:
    """The issue's targets, each with the measured numbers."""
    by = {(r["size"], r["contender"]): r for r in rows}
    out = []
    for n in sizes:
        flat, ref = by.get((n, "ours-flat"), {}), by.get((n, "torch-chunked"), {})
        if flat.get("median_s") and ref.get("median_s"):
            x = ref["median_s"] / flat["median_s"]
            out.append(f"exact >= 2x torch at {n:,}: {x:.1f}x -> {'PASS' if x >= 2 else 'FAIL'}")
    big = max(sizes)
    if big < 1_000_000:
        out.append(f"approximate >= 20x at 10^6: not checked (largest bank {big:,})")
        return out
    ivf, ref = by.get((big, "ours-ivf"), {}), by.get((big, "torch-chunked"), {})
    if ivf.get("median_s") and ref.get("median_s"):
        x, rec = ref["median_s"] / ivf["median_s"], ivf.get("recall", float("nan"))
        ok = x >= 20 and rec >= 0.95
        out.append(
            f"approximate >= 20x torch with recall >= 0.95 at {big:,}: {x:.1f}x,"
            f" recall {rec:.4f} -> {'PASS' if ok else 'FAIL'}"
        )
    extras = [
        (r["size"], r["extra_mib"])
        for r in rows
        if r["contender"] == "ours-flat" and "extra_mib" in r
    ]
    if len(extras) >= 2:
        growth = extras[-1][1] / max(extras[0][1], 1.0)
        out.append(
            f"ours-flat extra memory {extras[0][1]:.0f} MiB at {extras[0][0]:,} ->"
            f" {extras[-1][1]:.0f} MiB at {extras[-1][0]:,} (x{growth:.1f} for a"
            f" x{extras[-1][0] / extras[0][0]:.0f} bank)"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="CI smoke test (< 30 s)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--anchors", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--budget-s",
        type=float,
        default=300.0,
        help="stop repeating a contender once its calls took this long",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mem-cap-gib", type=float, default=6.0)
    parser.add_argument("--data", choices=("manifold", "iso"), default="manifold")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument(
        "--hnsw-max",
        type=int,
        default=100_000,
        help="largest bank for ours-hnsw (its build is slow on one core)",
    )
    parser.add_argument("--nprobe", type=int, default=32)
    parser.add_argument("--ef-search", type=int, default=64)
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument(
        "--nprobe-sweep",
        type=int,
        nargs="*",
        default=[4, 8, 16, 64],
        help="extra nprobe values timed once each (recall/speed trade-off)",
    )
    parser.add_argument("--ef-search-sweep", type=int, nargs="*", default=[16, 32, 128])
    parser.add_argument("--tag", default="", help="suffix of the result files")
    parser.add_argument("--render", type=Path, help="re-write the .md of a saved .json and exit")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    if args.render:  # re-write the Markdown of a saved run
        saved = json.loads(args.render.read_text())
        md = markdown(saved["rows"], saved["meta"]) + "\n"
        md += "\n".join(f"- {t}" for t in saved["targets"]) + "\n"
        args.render.with_suffix(".md").write_text(md)
        print(md)
        return 0
    if args.quick:
        args.sizes, args.anchors, args.repeats = [10_000], 512, 1
        args.nprobe_sweep, args.ef_search_sweep = [8], [32]
    from importlib.metadata import PackageNotFoundError, version

    def version_of(*dists: str) -> str:  # without importing torch/faiss in the parent
        for dist in dists:
            try:
                return version(dist)
            except PackageNotFoundError:
                pass
        return "not installed"

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    meta = {
        "anchors": args.anchors,
        "dim": args.dim,
        "k": args.k,
        "data": args.data,
        "threads": args.threads,
        "mem_cap_gib": args.mem_cap_gib,
        "repeats": args.repeats,
        "cpu": f"{cpu} ({os.cpu_count()} logical CPUs)",
        "torch": version_of("torch"),
        "faiss": version_of("faiss-cpu", "faiss-gpu", "faiss"),
        "pml": version_of("pytorch-metric-learning"),
        "quick": args.quick,
        "sizes": args.sizes,
        "nprobe": args.nprobe,
        "ef_search": args.ef_search,
        "hnsw_m": args.hnsw_m,
    }
    rows: list[dict] = []
    start = time.perf_counter()
    for size in args.sizes:
        names = [c for c in args.contenders if not (c == "ours-hnsw" and size > args.hnsw_max)]
        if "ours-flat" in names:  # first: it writes the exact neighbours used for recall
            names.remove("ours-flat")
            names.insert(0, "ours-flat")
        spec = {
            "size": size,
            "anchors": args.anchors,
            "dim": args.dim,
            "k": args.k,
            "repeats": args.repeats,
            "budget_s": args.budget_s,
            "threads": args.threads,
            "data": args.data,
            "nprobe": args.nprobe,
            "ef_search": args.ef_search,
            "hnsw_m": args.hnsw_m,
            "nprobe_sweep": args.nprobe_sweep,
            "ef_search_sweep": args.ef_search_sweep,
        }
        # ours and torch interleaved in one process (fair timing under a changing load); the
        # pml miners alone (their allocations can fail under the cap)
        ours = [n for n in names if not n.startswith("pml-")]
        groups = [names] if args.quick else [ours] + [[n] for n in names if n not in ours]
        groups = [g for g in groups if g]
        for group in groups:
            got = run_subprocess({**spec, "contenders": group}, args)
            rows.extend(got)
            for r in got:
                print(
                    f"{size:>9,} {r['contender']:<24} {r['status']:<6}"
                    f" median {_fmt(r.get('median_s'))} s  recall {_fmt(r.get('recall'))}"
                    f"  peak {_fmt(r.get('peak_rss_mib'), '{:.0f}')} MiB"
                    f"  {r.get('error', '')[:80]}",
                    flush=True,
                )
    meta["total_wall_s"] = time.perf_counter() - start
    targets = check_targets(rows, args.sizes)
    stem = "mining" + (".quick" if args.quick else "") + (".iso" if args.data == "iso" else "")
    stem += f".{args.tag}" if args.tag else ""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "targets": targets}, indent=1) + "\n"
    )
    md = markdown(rows, meta) + "\n" + "\n".join(f"- {t}" for t in targets) + "\n"
    (args.out / f"{stem}.md").write_text(md)
    print(md)
    print(f"wrote {args.out / stem}.json and .md in {meta['total_wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
