"""The metric network as a representation of the digits: is what MvM learns worth keeping?

Retrieval on the classifier's fixed split (360 test digits query the 1,437 training digits; labels
are used only to score, never to train the embeddings), with pytorch-metric-learning's
AccuracyCalculator through ``mvm_core.representation.retrieval_accuracy`` (precision@1,
R-precision, MAP@R). Compared, per seed of the `default` preset (emb_dim 32, 2000 steps):

* the trained metric network (L2-normalized, as its contrastive loss measures distances; and raw);
* the same network at its random initialization (same seed, before training);
* raw pixels (64 values), and their first 32 principal components (same size as the embedding);
* the shipped digits classifier's 64-d features: supervised (trained with these labels on the
  reference digits), an upper bound, not a competitor.

Results: ``results/representation.json`` and the table printed by ``--table`` (quoted in
RESULTS.md and docs/reading-a-run.md). Single-threaded.

    .venv/bin/python benchmarks/digits/representation.py --seeds 0 1 2
    .venv/bin/python benchmarks/digits/representation.py --variant all-pairs --seeds 0 1
    .venv/bin/python benchmarks/digits/representation.py --variant reference --seeds 0 1
    .venv/bin/python benchmarks/digits/representation.py --table
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

torch.set_num_threads(1)

from mvm_core.build import build_trainer  # noqa: E402
from mvm_core.evaluation import evaluate_trainer  # noqa: E402
from mvm_core.metrics import digits_split, load_digits_classifier  # noqa: E402
from mvm_core.representation import RETRIEVAL_METRICS, embed, retrieval_accuracy  # noqa: E402
from mvm_core.runconfig import build_run_config  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "representation.json"


def score(train: torch.Tensor, y_train, test: torch.Tensor, y_test, normalize: bool = False) -> dict:
    """Retrieval of test queries among the training digits."""
    return retrieval_accuracy(test, y_test, reference=train, reference_labels=y_train, normalize=normalize)


def baselines() -> dict[str, dict]:
    x_tr, y_tr, x_te, y_te = digits_split()
    px_tr, px_te = x_tr.flatten(1), x_te.flatten(1)
    mean = px_tr.mean(0)
    _, _, v = torch.linalg.svd(px_tr - mean, full_matrices=False)
    pca = v[:32].T
    classifier = load_digits_classifier()
    f_tr, f_te = classifier.embed(x_tr)[0], classifier.embed(x_te)[0]
    return {
        "raw pixels (64-d)": score(px_tr, y_tr, px_te, y_te),
        "pixels, PCA to 32-d": score((px_tr - mean) @ pca, y_tr, (px_te - mean) @ pca, y_te),
        "digits classifier features (64-d, supervised: upper bound)": score(f_tr, y_tr, f_te, y_te),
    }


# name -> RunConfig values on top of the digits `default` preset
VARIANTS = {
    "default": {},
    "all-pairs": {"miner": "none"},  # the contrastive loss over all batch pairs, no hard negatives
    "reference": {"preset": "reference", "steps": 1500},  # the published MvM formulation
}


def run_seed(seed: int, steps: int, variant: str = "default") -> dict:
    x_tr, y_tr, x_te, y_te = digits_split()
    values = {"data": "digits", "seed": seed, "steps": steps, "device": "cpu", **VARIANTS[variant]}
    config = build_run_config(values)
    trainer = build_trainer(config)
    net = trainer.metric_net
    out = {"seed": seed, "steps": config.steps, "emb_dim": config.emb_dim, "variant": variant}
    out["random init (normalized)"] = score(embed(net, x_tr), y_tr, embed(net, x_te), y_te, normalize=True)
    out["random init (raw)"] = score(embed(net, x_tr), y_tr, embed(net, x_te), y_te)
    start = time.time()
    trainer.fit()
    out["train_s"] = round(time.time() - start, 1)
    out["trained (normalized)"] = score(embed(net, x_tr), y_tr, embed(net, x_te), y_te, normalize=True)
    out["trained (raw)"] = score(embed(net, x_tr), y_tr, embed(net, x_te), y_te)
    out["fid@digits-classifier"] = evaluate_trainer(trainer, metrics=("fid",))["fid@digits-classifier"]
    print(f"{variant} seed {seed}: trained {out['trained (normalized)']}, random {out['random init (normalized)']}",
          flush=True)
    return out


ROWS = ("trained (normalized)", "trained (raw)", "random init (normalized)", "random init (raw)")


def _cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def table(results: dict) -> str:
    lines = ["| representation | precision@1 | R-precision | MAP@R | generator FID |", "|---|---|---|---|---|"]
    for variant, runs in results["variants"].items():
        first = runs[0]
        for row in ROWS:
            if row.startswith("random") and variant != "default":
                continue  # the same architecture's random init: shown once
            budget = "before training" if row.startswith("random") else f"{first['steps']} steps"
            label = (f"MvM metric network, `{variant}`, {row} (emb {first['emb_dim']}, {budget},"
                     f" {len(runs)} seed{'s' if len(runs) > 1 else ''})")
            fid = _cell([r["fid@digits-classifier"] for r in runs]) if row.startswith("trained") else "-"
            lines.append(f"| {label} | " + " | ".join(_cell([r[row][m] for r in runs]) for m in RETRIEVAL_METRICS)
                         + f" | {fid} |")
    for name, scores in results["baselines"].items():
        lines.append(f"| {name} | " + " | ".join(f"{scores[m]:.3f}" for m in RETRIEVAL_METRICS) + " | - |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="default")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--table", action="store_true", help="print the table of the saved results")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(OUT.read_text())))
        return
    results = json.loads(OUT.read_text()) if OUT.exists() else {"variants": {}}
    results["baselines"] = baselines()
    results["variants"][args.variant] = [run_seed(s, args.steps, args.variant) for s in args.seeds]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
