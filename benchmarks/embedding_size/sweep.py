"""How large should the metric network's embedding be? A sweep of emb_dim at a fixed budget.

For each dataset, the `default` preset with only ``emb_dim`` changed (same steps, seeds, nets):
quality (2D: PacGAN modes / high-quality share / reverse KL; digits: FID@digits-classifier,
precision, recall, worst class share), time per step, what the health monitor sees at the end
(effective dimension of the real embeddings, ``emb_dim_used``, verdict), and on digits the
retrieval quality of the trained metric network (precision@1, MAP@R: the representation).
One JSON per run in ``results/``; ``--table`` writes ``RESULTS.md`` from them.

Examples::

    .venv/bin/python benchmarks/embedding_size/sweep.py --quick          # smoke test, ~1 min
    .venv/bin/python benchmarks/embedding_size/sweep.py --data grid digits
    .venv/bin/python benchmarks/embedding_size/sweep.py --table

Single-threaded (``torch.set_num_threads(1)``); wall times are per CPU core on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

torch.set_num_threads(1)

from mvm_core.build import build_dataset, build_trainer  # noqa: E402
from mvm_core.evaluation import evaluate_trainer  # noqa: E402
from mvm_core.health import diagnose  # noqa: E402
from mvm_core.representation import embed_run, retrieval_accuracy  # noqa: E402
from mvm_core.runconfig import build_run_config  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SIZES = (2, 4, 10, 32, 128)  # digits also ran 16 and 64 (--data digits --sizes 16 64): its rule's boundary
# data -> (steps, seeds): grid and ring at the default 2D preset's 3000 steps; digits at half its
# 2000 steps (the cores are shared; the default's FID at 1000 steps is within 10% of 2000's)
PLAN = {"grid": (3000, (0, 1, 2)), "digits": (1000, (0, 1)), "ring": (3000, (0, 1))}
QUICK = {"grid": (100, (0,)), "digits": (60, (0,)), "ring": (100, (0,))}


def data_dimension(data: str) -> dict[str, float]:
    """Measurable properties of the data: its width and the number of principal components that
    hold 90% / 99% of its variance (the linear dimension a metric must at least represent)."""
    config = build_run_config({"data": data, "device": "cpu"})
    x = build_dataset(config).data.flatten(1).double()
    x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:5000]]
    eig = torch.linalg.eigvalsh(torch.cov(x.T)).flip(0).clamp_min(0)
    share = eig.cumsum(0) / eig.sum()
    return {"width": x.shape[1], "pca90": int((share < 0.90).sum()) + 1,
            "pca99": int((share < 0.99).sum()) + 1}


def run(data: str, emb_dim: int, seed: int, steps: int, tag: str) -> dict:
    config = build_run_config({"data": data, "emb_dim": emb_dim, "seed": seed, "steps": steps,
                               "device": "cpu", "log_every": 10})
    trainer = build_trainer(config)
    start = time.time()
    trainer.fit()
    seconds = time.time() - start
    quality = evaluate_trainer(trainer)
    report = diagnose(trainer.state.history, total_steps=steps, quality=quality)
    result = {
        "data": data, "emb_dim": emb_dim, "seed": seed, "steps": steps, "train_s": round(seconds, 1),
        "ms_per_step": round(1000 * seconds / steps, 2), "quality": quality,
        "verdict": report["verdict"], "failures": [f["mode"] for f in report["failures"]],
        "warnings": [w["kind"] for w in report["warnings"]],
        "emb_dim_eff": report["evidence"].get("emb_dim_eff"),
        "emb_dim_used": report["evidence"].get("emb_dim_used"),
    }
    if trainer.dataset.labels is not None:  # the metric network as a representation
        emb = embed_run(trainer, trainer.dataset.data)
        result["retrieval"] = retrieval_accuracy(emb, trainer.dataset.labels)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{tag}{data}_d{emb_dim}_s{seed}.json").write_text(json.dumps(result, indent=2))
    # the logged history: --table re-reads the run with the current health rules
    (RESULTS / f"{tag}{data}_d{emb_dim}_s{seed}.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in trainer.state.history))
    print(f"{data} emb {emb_dim} seed {seed}: {seconds:.0f} s, {result['verdict']},"
          f" used {result['emb_dim_used']}, {_headline(result)}", flush=True)
    return result


def _headline(r: dict) -> str:
    q = r["quality"]
    if "high_quality@data" in q:
        return f"modes {q['modes@data']:.0f}, HQ {q['high_quality@data']:.3f}, KL {q['reverse_kl@data']:.3f}"
    return f"FID {q['fid@digits-classifier']:.1f}, min share {q['min_class_share@digits-classifier']:.2f}"


def _ms(values: list[float], fmt: str = "{:.3g}") -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.fmean(values))} ± {fmt.format(statistics.stdev(values))}"


def table(tag: str = "") -> str:
    """Markdown tables (one per dataset) from the results, mean ± std over seeds."""
    rows: dict[tuple[str, int], list[dict]] = {}
    for path in sorted(RESULTS.glob(f"{tag}*_d*_s*.json")):
        if not tag and path.name.startswith("quick_"):
            continue
        r = json.loads(path.read_text())
        log = path.with_name(path.stem + ".jsonl")
        if log.exists():  # verdicts and embedding statistics under the current rules
            history = [json.loads(line) for line in log.read_text().splitlines() if line]
            report = diagnose(history, total_steps=r["steps"], quality=r["quality"])
            r.update(verdict=report["verdict"], warnings=[w["kind"] for w in report["warnings"]],
                     emb_dim_eff=report["evidence"].get("emb_dim_eff"),
                     emb_dim_used=report["evidence"].get("emb_dim_used"))
        rows.setdefault((r["data"], r["emb_dim"]), []).append(r)
    out = []
    for data in ("grid", "ring", "digits"):
        sizes = sorted(d for (name, d) in rows if name == data)
        if not sizes:
            continue
        dims = data_dimension(data)
        first = rows[data, sizes[0]][0]
        out.append(f"### {data} ({first['steps']} steps, seeds"
                   f" {', '.join(str(r['seed']) for r in rows[data, sizes[0]])}; data width"
                   f" {dims['width']}, {dims['pca90']} principal components hold 90% of the variance,"
                   f" {dims['pca99']} hold 99%)\n")
        if data in ("grid", "ring"):
            out.append("| emb_dim | modes | high quality | reverse KL | ms / step | effective dims |"
                       " emb_dim_used | verdicts |")
            out.append("|---|---|---|---|---|---|---|---|")
        else:
            out.append("| emb_dim | FID@digits-classifier | precision | recall | worst class share |"
                       " precision@1 | MAP@R | ms / step | effective dims | emb_dim_used | verdicts |")
            out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for d in sizes:
            rs = rows[data, d]
            q = [r["quality"] for r in rs]
            verdicts = ", ".join(sorted({r["verdict"] + ("+" + "+".join(r["warnings"]) if r["warnings"] else "")
                                         for r in rs}))
            common = (f"{_ms([r['ms_per_step'] for r in rs], '{:.1f}')} |"
                      f" {_ms([r['emb_dim_eff'] for r in rs], '{:.2f}')} |"
                      f" {_ms([r['emb_dim_used'] for r in rs], '{:.2f}')} | {verdicts} |")
            if data in ("grid", "ring"):
                out.append(f"| {d} | {_ms([x['modes@data'] for x in q], '{:.1f}')} |"
                           f" {_ms([x['high_quality@data'] for x in q])} |"
                           f" {_ms([x['reverse_kl@data'] for x in q])} | {common}")
            else:
                ret = [r.get("retrieval", {}) for r in rs]
                out.append(f"| {d} | {_ms([x['fid@digits-classifier'] for x in q], '{:.1f}')} |"
                           f" {_ms([x['precision@digits-classifier'] for x in q], '{:.2f}')} |"
                           f" {_ms([x['recall@digits-classifier'] for x in q], '{:.2f}')} |"
                           f" {_ms([x['min_class_share@digits-classifier'] for x in q], '{:.2f}')} |"
                           f" {_ms([x.get('precision_at_1') for x in ret])} |"
                           f" {_ms([x.get('mean_average_precision_at_r') for x in ret])} | {common}")
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", choices=sorted(PLAN), default=["grid", "digits"])
    ap.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    ap.add_argument("--quick", action="store_true", help="a few steps, one seed (checks the script)")
    ap.add_argument("--skip-done", action="store_true", help="skip runs whose result file exists")
    ap.add_argument("--table", action="store_true", help="print the tables (and write RESULTS.md)")
    args = ap.parse_args()
    tag = "quick_" if args.quick else ""
    if args.table:
        text = table(tag)
        print(text)
        if not args.quick:
            (HERE / "RESULTS.md").write_text(_RESULTS_HEADER + text)
        return
    plan = QUICK if args.quick else PLAN
    for data in args.data:
        steps, seeds = plan[data]
        for emb_dim in args.sizes:
            for seed in seeds:
                if args.skip_done and (RESULTS / f"{tag}{data}_d{emb_dim}_s{seed}.json").exists():
                    continue
                run(data, emb_dim, seed, steps, tag)
    if args.quick:
        print(table(tag))


_RESULTS_HEADER = """# Embedding size: quality, speed and what the health monitor sees, against emb_dim

Generated by `benchmarks/embedding_size/sweep.py --table` from `results/*.json` (mean ± std over
seeds; the `default` preset with only `emb_dim` changed; one CPU thread on a shared 2-core machine,
so ms / step carries the machine's load). `effective dims` is the participation ratio of the real
embeddings' covariance at the end of training, `emb_dim_used` the same over its value for
isotropic embeddings of the batch size (1 = every dimension used fully); both are logged by the
trainer at every log step. The reading and the rule drawn from these tables are in
`docs/reading-a-run.md` ("Choosing the embedding size").

"""


if __name__ == "__main__":
    main()
