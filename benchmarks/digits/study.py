"""Find the default `mvm train` recipe on the built-in 8x8 digits, measured.

One command: a named config (or ad-hoc overrides), several seeds, one JSON per (config, seed) in
benchmarks/digits/results/, evaluated with the project's digits classifier.

Examples::

    .venv/bin/python benchmarks/digits/study.py --config base --seeds 0 1 2
    .venv/bin/python benchmarks/digits/study.py --config base --set metric=ms steps=3000 --name ms3k
    .venv/bin/python benchmarks/digits/study.py --summary          # table of all results

Every knob is a key of ``BASE`` (overridable with ``--set key=value``); ``CONFIGS`` holds the named
rows of the study. Single-threaded (``torch.set_num_threads(1)``): the wall time is per CPU core.
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)

from pytorch_metric_learning import losses as pml_losses  # noqa: E402

from mvm_core.data import digits_dataset  # noqa: E402
from mvm_core.evaluation import evaluate_trainer  # noqa: E402
from mvm_core.matching import ManifoldMatchingLoss  # noqa: E402
from mvm_core.metric import MetricObjective, MvMTripletLoss  # noqa: E402
from mvm_core.nets import DCGANGenerator, DCGANMetricNet  # noqa: E402
from mvm_core.plotting import save_image_grid  # noqa: E402
from mvm_core.set_matching import EnergyMatchingLoss  # noqa: E402
from mvm_core.trainer import TrainConfig, Trainer  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# The lead's best so far: energy matching, MvM triplet with alpha 0, M eps 1e-8.
BASE = dict(
    steps=2000, batch_size=64, z_dim=64, g_width=64, m_width=64, emb_dim=10, spectral_norm=False,
    g_lr=5e-4, g_betas=(0.0, 0.9), g_eps=1e-6, m_lr=5e-4, m_betas=(0.5, 0.999), m_eps=1e-8,
    metric_steps=1, lr_schedule="constant", ema_decay=0.99, grad_clip=None, conditional=False,
    # generator objective
    matching="energy",  # energy | sorted | paired  (sorted/paired: centroid + p-diameter)
    energy_power=1.0, chamfer_weight=0.0, cross_weight=0.0,
    diameter_weight=0.0,  # extra sorted p-diameter term added to the energy loss (weight)
    # metric objective
    metric="mvm",  # mvm | mvm_soft | ms | contrastive | triplet
    margin=1.0, alpha=0.0, miner="default",  # default | none (all pairs/triplets of the batch)
    ms_alpha=2.0, ms_beta=50.0, ms_base=0.5,
    pos_margin=0.0, neg_margin=1.0,
    log_every=50, eval_at=(),  # extra evaluations at these steps (besides the end)
)

CONFIGS: dict[str, dict] = {
    "base": {},
    "ms": {"metric": "ms", "miner": "none"},
    "contrastive": {"metric": "contrastive", "miner": "none"},
    "mvm_soft": {"metric": "mvm_soft"},
    "cosine": {"lr_schedule": "cosine"},
    "sn": {"spectral_norm": True},
    "emb32": {"emb_dim": 32},
    "chamfer": {"chamfer_weight": 1.0},
    "power05": {"energy_power": 0.5},
    "sorted_ref": {"matching": "sorted", "alpha": 1e-2, "m_eps": 1e-3},
    # round 2: on top of the contrastive metric loss (all pairs of the batch)
    "c_cos": {"metric": "contrastive", "miner": "none", "lr_schedule": "cosine"},
    "c_sn": {"metric": "contrastive", "miner": "none", "spectral_norm": True},
    "c_emb32": {"metric": "contrastive", "miner": "none", "emb_dim": 32},
    "c_chamfer": {"metric": "contrastive", "miner": "none", "chamfer_weight": 1.0},
    "c_cos4k": {"metric": "contrastive", "miner": "none", "lr_schedule": "cosine", "steps": 4000,
                "eval_at": (2000,)},
    "c_neg05": {"metric": "contrastive", "miner": "none", "neg_margin": 0.5},
    # round 3
    "c_emb32_cos": {"metric": "contrastive", "miner": "none", "emb_dim": 32, "lr_schedule": "cosine"},
    "c_b128": {"metric": "contrastive", "miner": "none", "batch_size": 128},
    "c_cond": {"metric": "contrastive", "miner": "none", "conditional": True},
}


def parse_sets(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, raw = item.partition("=")
        if key not in BASE:
            sys.exit(f"unknown key {key!r}; valid: {sorted(BASE)}")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        out[key] = value
    return out


def build(cfg: dict, seed: int) -> Trainer:
    torch.manual_seed(seed)
    data = digits_dataset(8)
    g = DCGANGenerator(cfg["z_dim"], 8, 1, width=cfg["g_width"], num_classes=10 if cfg["conditional"] else None)
    m = DCGANMetricNet(8, 1, cfg["emb_dim"], width=cfg["m_width"], spectral_norm=cfg["spectral_norm"])
    if cfg["matching"] == "energy":
        energy = EnergyMatchingLoss(1.0, cfg["chamfer_weight"], cfg["cross_weight"], power=cfg["energy_power"])
        if cfg["diameter_weight"] > 0:
            diam = ManifoldMatchingLoss(centroid_weight=0.0, diameter_weight=cfg["diameter_weight"],
                                        diameter_form="sorted")

            class Sum(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.a, self.b, self.last_terms = energy, diam, {}

                def forward(self, real, ref_emb):
                    e = self.a(real, ref_emb=ref_emb)
                    d = self.b(real, ref_emb=ref_emb)
                    self.last_terms = {"energy": e.detach(), "diameter": d.detach()}
                    return e + d

            matching = Sum()
        else:
            matching = energy
    else:
        matching = ManifoldMatchingLoss(diameter_form=cfg["matching"])
    kind = cfg["metric"]
    if kind in ("mvm", "mvm_soft"):
        loss = MvMTripletLoss(margin=cfg["margin"], alpha=cfg["alpha"], smooth=kind == "mvm_soft")
    elif kind == "ms":
        loss = pml_losses.MultiSimilarityLoss(alpha=cfg["ms_alpha"], beta=cfg["ms_beta"], base=cfg["ms_base"])
    elif kind == "contrastive":
        loss = pml_losses.ContrastiveLoss(pos_margin=cfg["pos_margin"], neg_margin=cfg["neg_margin"])
    elif kind == "triplet":
        loss = pml_losses.TripletMarginLoss(margin=cfg["margin"])
    else:
        raise ValueError(kind)
    objective = MetricObjective(loss, miner="default" if cfg["miner"] == "default" else None)
    tc = TrainConfig(
        steps=cfg["steps"], batch_size=cfg["batch_size"], metric_steps=cfg["metric_steps"],
        g_lr=cfg["g_lr"], g_betas=tuple(cfg["g_betas"]), g_eps=cfg["g_eps"], m_lr=cfg["m_lr"],
        m_betas=tuple(cfg["m_betas"]), m_eps=cfg["m_eps"], lr_schedule=cfg["lr_schedule"],
        ema_decay=cfg["ema_decay"], grad_clip=cfg["grad_clip"], conditional=cfg["conditional"],
        seed=seed, device="cpu", log_every=cfg["log_every"],
    )
    return Trainer(g, m, data, tc, matching=matching, metric_objective=objective)


def evaluate(tr: Trainer) -> dict:
    ev = evaluate_trainer(tr, n=2000, metrics=("fid", "precision", "recall", "class_coverage"))
    return {k.replace("@digits-classifier", ""): float(v) for k, v in ev.items()}


def trend(values: list[float]) -> dict:
    """Matching loss at 10%, 50%, end (window means) and the share of windows that decreased."""
    n = len(values)
    if n < 10:
        return {}
    w = max(1, n // 10)
    win = [statistics.fmean(values[i : i + w]) for i in range(0, n - w + 1, w)]
    falls = sum(b < a for a, b in zip(win, win[1:])) / max(1, len(win) - 1)
    return {"match_first": win[0], "match_mid": win[len(win) // 2], "match_last": win[-1],
            "match_windows": win, "match_fall_share": falls}


def run(name: str, cfg: dict, seed: int, grid: Path | None = None) -> dict:
    tr = build(cfg, seed)
    t0 = time.time()
    evals = {}
    for target in sorted(set(int(s) for s in cfg["eval_at"]) | {cfg["steps"]}):
        tr.fit(target)
        if target != cfg["steps"]:
            pause = time.time()
            evals[target] = evaluate(tr)
            t0 += time.time() - pause  # evaluation time is not training time
    train_s = time.time() - t0
    final = evaluate(tr)
    hist = tr.state.history
    out = {"name": name, "seed": seed, "config": cfg, "train_s": train_s, "final": final,
           "intermediate": evals, **trend([h["matching"] for h in hist]),
           "loss_m_last": statistics.fmean(h["loss_m"] for h in hist[-5:]),
           "satisfied_last": statistics.fmean(h.get("satisfied", float("nan")) for h in hist[-5:])}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.s{seed}.json").write_text(json.dumps(out, indent=1, default=float))
    if grid is not None:
        x = tr.sample(100, seed=7)
        if cfg["conditional"]:  # rows = classes
            x = x.view(10, 10, *x.shape[1:]).transpose(0, 1).reshape(100, *x.shape[1:])
        save_image_grid(x, grid, nrow=10, scale=3)
    f = final
    print(f"{name} s{seed}: fid {f['fid']:.1f} minshare {f.get('min_class_share', float('nan')):.3f} "
          f"P {f['precision']:.3f} R {f['recall']:.3f} match {out.get('match_first', 0):.3f}->"
          f"{out.get('match_last', 0):.3f} fall {out.get('match_fall_share', 0):.2f} {train_s:.0f}s", flush=True)
    return out


def summary() -> None:
    rows: dict[str, list[dict]] = {}
    for p in sorted(RESULTS.glob("*.json")):
        r = json.loads(p.read_text())
        rows.setdefault(r["name"], []).append(r)
    print("| config | seeds | FID | min class share (min) | classes | precision | recall | match 10%->end | fall share | train s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, rs in rows.items():
        def ms(key, src="final", fmt="{:.1f}", rs=rs):
            vals = [r[src][key] if src else r[key] for r in rs]
            if len(vals) == 1:
                return fmt.format(vals[0])
            return f"{fmt.format(statistics.fmean(vals))}±{fmt.format(statistics.stdev(vals))}"
        mins = [r["final"]["min_class_share"] for r in rs]
        print(f"| {name} | {','.join(str(r['seed']) for r in rs)} | {ms('fid')} | "
              f"{statistics.fmean(mins):.2f} ({min(mins):.2f}) | "
              f"{min(r['final']['class_coverage'] for r in rs):.1f} | {ms('precision', fmt='{:.2f}')} | "
              f"{ms('recall', fmt='{:.2f}')} | "
              f"{statistics.fmean(r['match_first'] for r in rs):.3f}->{statistics.fmean(r['match_last'] for r in rs):.3f} | "
              f"{statistics.fmean(r['match_fall_share'] for r in rs):.2f} | {ms('train_s', None, '{:.0f}')} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="base", choices=sorted(CONFIGS))
    ap.add_argument("--set", nargs="*", default=[], help="overrides key=value (python literals)")
    ap.add_argument("--name", help="result name (default: the config name)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--grid", help="save a 10x10 sample grid PNG of the first seed here")
    ap.add_argument("--summary", action="store_true", help="print the table of all results and exit")
    args = ap.parse_args()
    if args.summary:
        summary()
        return
    cfg = {**BASE, **CONFIGS[args.config], **parse_sets(args.set)}
    name = args.name or args.config
    for i, seed in enumerate(args.seeds):
        run(name, cfg, seed, Path(args.grid) if (args.grid and i == 0) else None)


if __name__ == "__main__":
    main()
