"""Research script: manifold matching on the 2D mode-collapse benchmarks.

One self-contained loop (generator step, then metric step, as in the MvM reference) with every
design choice behind a flag, the PacGAN evaluation protocol, training diagnostics and plots.

Examples::

    # the reference formulation (MvM paper code, 2D MLPs)
    python benchmarks/twod/research.py --preset reference --mixture grid --seeds 0 1 2
    # best measured variant (precise on covered modes, collapses: see ABLATION.md)
    python benchmarks/twod/research.py --preset separating_metric --mixture ring --seeds 0 1 2 \
        --out benchmarks/twod/results/sep_ring.json --plot benchmarks/twod/sep_ring.png

Evaluation (PacGAN, Lin et al. 2018, Sec. 5, after VEEGAN): 2,500 samples, each assigned to its
nearest mode; high quality (HQ) if its distance to that mode divided by the std is < 3; a mode
is captured if it has >= 1 HQ sample; KL(histogram of HQ samples over modes || mixture prior)
(the prior is uniform for the benchmarks, so this is PacGAN's KL to uniform).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import losses as pml_losses
from torch import nn

from mvm_core.data.toy import GaussianMixture2D, grid, ring
from mvm_core.matching import (
    centroid_matching,
    diameter_matching_paired,
    diameter_matching_sorted,
    p_diameter,
)
from mvm_core.metric import MetricObjective, MvMTripletLoss, RealFakeTripletMiner
from mvm_core.nets.encodings import FourierFeatures
from mvm_core.set_matching import chamfer_distance, cross_diameter_matching, energy_distance

# --------------------------------------------------------------------------- mixtures


def make_mixture(name: str) -> GaussianMixture2D:
    """The two benchmarks plus held-out mixtures (never used for tuning)."""
    if name == "ring":
        return ring()
    if name == "grid":
        return grid()
    if name == "ring5":
        return ring(5, radius=1.0, std=0.02)
    if name == "ring12":
        return ring(12, radius=2.0, std=0.02)
    if name == "grid16":  # 4x4, other spacing and std
        return grid(4, spacing=1.5, std=0.03)
    if name == "ring8_unequal":  # unequal priors 1..8
        m = ring()
        w = torch.arange(1, 9, dtype=torch.float32)
        return GaussianMixture2D(m.means, m.std, w, name="ring8_unequal")
    if name == "grid9_unequal":  # 3x3 grid, spacing 3, std 0.1, priors 1..9
        m = grid(3, spacing=3.0, std=0.1)
        w = torch.arange(1, 10, dtype=torch.float32)
        return GaussianMixture2D(m.means, m.std, w, name="grid9_unequal")
    raise ValueError(f"unknown mixture {name!r}")


MIXTURE_NAMES = ("ring", "grid", "ring5", "ring12", "grid16", "ring8_unequal", "grid9_unequal")

# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(samples: torch.Tensor, mixture: GaussianMixture2D) -> dict:
    """PacGAN protocol on ``samples`` (N, 2): modes captured, HQ share, KL(HQ hist || prior)."""
    x = samples.double()
    means = mixture.means.double()
    d = torch.cdist(x, means)
    dist, idx = d.min(dim=1)
    hq = dist / mixture.std < 3.0
    counts = torch.bincount(idx[hq], minlength=mixture.num_modes).double()
    modes = int((counts > 0).sum())
    hq_share = float(hq.double().mean())
    prior = mixture.probs.double()
    if counts.sum() > 0:
        p = counts / counts.sum()
        nz = p > 0
        kl = float((p[nz] * (p[nz] / prior[nz]).log()).sum())
    else:
        kl = float("nan")
    return {"modes": modes, "hq": hq_share, "kl": kl, "max_abs": float(x.abs().max())}


# --------------------------------------------------------------------------- networks


def mlp(sizes: list[int], act: str, sn: bool = False) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        if sn:
            lin = nn.utils.parametrizations.spectral_norm(lin)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2))
    return layers


class Generator(nn.Module):
    def __init__(self, zdim: int, hidden: int, layers: int, act: str):
        super().__init__()
        self.net = nn.Sequential(*mlp([zdim] + [hidden] * layers + [2], act))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MetricNet(nn.Module):
    """MLP metric network: [input encoding] -> hidden layers -> embedding -> [head]."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.encoding: nn.Module | None = None
        in_dim = 2
        if cfg.rff > 0:
            scales = [float(s) for s in cfg.rff_scales.split(",")]
            self.encoding = FourierFeatures(
                2, cfg.rff // len(scales), scales, include_input=True, trainable=cfg.rff_train
            )
            in_dim = self.encoding.out_features
        self.body = nn.Sequential(
            *mlp([in_dim] + [cfg.m_hidden] * cfg.m_layers + [cfg.emb], cfg.m_act, cfg.sn)
        )
        self.head = cfg.head
        self.scale = cfg.head_scale
        self.skip = cfg.skip
        self.skip_in_metric = cfg.skip_in_metric
        self.learned = cfg.learned

    def forward(self, x: torch.Tensor, for_matching: bool = False) -> torch.Tensor:
        h = x if self.encoding is None else self.encoding(x)
        e = self.body(h)
        if self.head == "tanh":
            e = self.scale * torch.tanh(e)
        elif self.head == "l2":
            e = self.scale * nn.functional.normalize(e, dim=1)
        if not self.learned:
            return self.skip * x
        if self.skip > 0 and (self.skip_in_metric or for_matching):
            e = torch.cat([e, self.skip * x], dim=1)
        return e


# --------------------------------------------------------------------------- config


@dataclass
class Config:
    mixture: str = "grid"
    steps: int = 3000
    batch: int = 100
    zdim: int = 2
    g_hidden: int = 128
    g_layers: int = 3
    g_act: str = "relu"
    m_hidden: int = 128
    m_layers: int = 3
    m_act: str = "lrelu"
    emb: int = 10
    head: str = "linear"  # linear | tanh | l2
    head_scale: float = 1.0
    sn: bool = False
    skip: float = 0.0  # append skip * x to the embedding (input skip connection), 0: off
    skip_in_metric: bool = True  # False: the skip branch is used by the matching terms only
    learned: bool = True  # False: embedding is the skip branch only (no learned metric)
    rff: int = 0  # number of random Fourier frequencies (0: raw input)
    rff_scales: str = "1"
    rff_train: bool = False
    # generator matching terms "name:weight,..." over
    # centroid, paired, sorted (p-diameter forms), energy, chamfer, cross
    match: str = "centroid:1,paired:1"
    match_power: float = 1.0  # Euclidean power for energy/chamfer/cross
    # metric objective
    metric_loss: str = "mvm"  # mvm | triplet | contrastive | ms | circle | ntxent | none
    margin: float = 1.0
    alpha: float = 1e-2
    pos: str = "random"
    neg: str = "random"
    tpa: int = 1  # triplets per anchor
    metric_power: int = 2  # distance power in the metric loss (mvm/triplet/contrastive)
    # optimisation
    lr_g: float = 1e-4
    lr_m: float = 1e-4
    betas_g: str = "0,0.9"
    betas_m: str = "0.5,0.999"
    eps_g: float = 1e-6
    eps_m: float = 1e-3
    n_metric: int = 1  # metric steps per generator step
    ema: float = 0.0  # EMA decay of generator weights (0: off)
    lr_decay: float = 1.0  # final lr as a fraction of the initial (linear decay), 1: constant
    # monitoring
    eval_every: int = 500
    log_every: int = 100
    snapshots: str = ""  # comma-separated steps at which to keep 1000 samples for plots
    tag: str = ""
    extra: dict = field(default_factory=dict)


PRESETS: dict[str, dict] = {
    # The MvM reference code's formulation on 2D MLPs (docs/method.md).
    "reference": {},
    # Best measured combination (ABLATION.md, A7): a metric that separates reals from fakes
    # (no direction guidance, Fourier-feature input, lr 1e-3) and energy-distance matching.
    # Precise on the modes it covers, but it does NOT meet the coverage targets.
    "separating_metric": {
        "alpha": 0.0,
        "rff": 128,
        "rff_scales": "0.5,2",
        "lr_g": 1e-3,
        "lr_m": 1e-3,
        "eps_g": 1e-8,
        "eps_m": 1e-8,
        "match": "energy:1",
    },
}


def parse_match(spec: str) -> dict[str, float]:
    out = {}
    for part in spec.split(","):
        name, w = part.split(":")
        if name not in ("centroid", "paired", "sorted", "energy", "chamfer", "cross"):
            raise ValueError(f"unknown matching term {name!r}")
        out[name] = float(w)
    return out


def generator_loss(real: torch.Tensor, fake: torch.Tensor, cfg: Config) -> torch.Tensor:
    terms = parse_match(cfg.match)
    total = real.new_zeros(())
    for name, w in terms.items():
        if w == 0:
            continue
        if name == "centroid":
            v = centroid_matching(real, fake)
        elif name == "paired":
            v = diameter_matching_paired(real, fake)
        elif name == "sorted":
            v = diameter_matching_sorted(real, fake)
        elif name == "energy":
            v = energy_distance(real, fake, cfg.match_power, 1e-8, include_real=False)
        elif name == "chamfer":
            v = chamfer_distance(real, fake, cfg.match_power, 1e-8)
        else:
            v = cross_diameter_matching(real, fake, cfg.match_power, eps=1e-8)
        total = total + w * v
    return total


def make_metric_objective(cfg: Config) -> MetricObjective | None:
    if cfg.metric_loss == "none":
        return None
    dist = pml_distances.LpDistance(p=2, power=cfg.metric_power, normalize_embeddings=False)
    if cfg.metric_loss == "mvm":
        loss = MvMTripletLoss(margin=cfg.margin, alpha=cfg.alpha, distance=dist)
    elif cfg.metric_loss == "triplet":
        loss = pml_losses.TripletMarginLoss(margin=cfg.margin, distance=dist)
    elif cfg.metric_loss == "contrastive":
        loss = pml_losses.ContrastiveLoss(pos_margin=0.0, neg_margin=cfg.margin, distance=dist)
    elif cfg.metric_loss == "ms":
        loss = pml_losses.MultiSimilarityLoss()
    elif cfg.metric_loss == "circle":
        loss = pml_losses.CircleLoss()
    elif cfg.metric_loss == "ntxent":
        loss = pml_losses.NTXentLoss(temperature=0.1)
    else:
        raise ValueError(f"unknown metric loss {cfg.metric_loss!r}")
    miner = RealFakeTripletMiner(
        triplets_per_anchor=cfg.tpa, positives=cfg.pos, negatives=cfg.neg, distance=dist
    )
    return MetricObjective(loss, miner)


def betas(s: str) -> tuple[float, float]:
    a, b = s.split(",")
    return float(a), float(b)


def grad_norm(module: nn.Module) -> float:
    sq = [p.grad.detach().pow(2).sum() for p in module.parameters() if p.grad is not None]
    return float(torch.stack(sq).sum().sqrt()) if sq else 0.0


# --------------------------------------------------------------------------- training


def train(cfg: Config, seed: int) -> dict:
    torch.manual_seed(seed)
    mixture = make_mixture(cfg.mixture)
    data_gen = torch.Generator().manual_seed(10_000 + seed)
    G = Generator(cfg.zdim, cfg.g_hidden, cfg.g_layers, cfg.g_act)
    M = MetricNet(cfg)
    G_ema = copy.deepcopy(G).requires_grad_(False) if cfg.ema > 0 else G
    opt_g = torch.optim.Adam(G.parameters(), cfg.lr_g, betas=betas(cfg.betas_g), eps=cfg.eps_g)
    opt_m = torch.optim.Adam(M.parameters(), cfg.lr_m, betas=betas(cfg.betas_m), eps=cfg.eps_m)
    sched = []
    if cfg.lr_decay != 1.0:
        lam = lambda s: 1.0 - (1.0 - cfg.lr_decay) * s / cfg.steps  # noqa: E731
        sched = [torch.optim.lr_scheduler.LambdaLR(o, lam) for o in (opt_g, opt_m)]
    objective = make_metric_objective(cfg)
    eval_z = torch.randn(2500, cfg.zdim, generator=torch.Generator().manual_seed(99 + seed))
    snap_steps = {int(s) for s in cfg.snapshots.split(",") if s}
    history, logs, snapshots = [], [], {}
    t0 = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        # generator step: match the sets in M's embedding (M not updated)
        real = mixture.sample(cfg.batch, data_gen)
        z = torch.randn(cfg.batch, cfg.zdim)
        M.requires_grad_(False)
        fake = G(z)
        r_emb, f_emb = M(real, for_matching=True), M(fake, for_matching=True)
        loss_g = generator_loss(r_emb, f_emb, cfg)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        g_gn = grad_norm(G)
        opt_g.step()
        M.requires_grad_(True)
        if cfg.ema > 0:
            with torch.no_grad():
                for pe, p in zip(G_ema.parameters(), G.parameters()):
                    pe.lerp_(p, 1.0 - cfg.ema)
        # metric step(s): real anchors/positives, generated negatives
        loss_m = torch.zeros(())
        m_gn = 0.0
        if objective is not None:
            for k in range(cfg.n_metric):
                if k > 0:
                    real = mixture.sample(cfg.batch, data_gen)
                with torch.no_grad():
                    fake_d = G(torch.randn(cfg.batch, cfg.zdim))
                loss_m = objective(M(real), M(fake_d))
                opt_m.zero_grad(set_to_none=True)
                loss_m.backward()
                m_gn = grad_norm(M)
                opt_m.step()
        for s in sched:
            s.step()
        if step % cfg.log_every == 0 or step == 1:
            with torch.no_grad():
                rd = float(p_diameter(r_emb.detach(), p=1.0))
                fd = float(p_diameter(f_emb.detach(), p=1.0))
                cd = float(torch.cdist(r_emb, f_emb).pow(2).mean())
            stats = objective.last_stats if objective is not None else {}
            logs.append(
                {
                    "step": step,
                    "loss_g": float(loss_g.detach()),
                    "loss_m": float(loss_m.detach()),
                    "satisfied": float(stats.get("satisfied", float("nan"))),
                    "real_diam": rd,
                    "fake_diam": fd,
                    "cross_diam": cd,
                    "grad_g": g_gn,
                    "grad_m": m_gn,
                    "fake_max_abs": float(fake.detach().abs().max()),
                }
            )
            if not math.isfinite(float(loss_g)):
                break
        if step % cfg.eval_every == 0 or step == cfg.steps or step in snap_steps:
            with torch.no_grad():
                samples = G_ema(eval_z)
            if step % cfg.eval_every == 0 or step == cfg.steps:
                history.append({"step": step, **evaluate(samples, mixture)})
            if step in snap_steps:
                snapshots[step] = samples[:1000].tolist()
    wall = time.perf_counter() - t0
    with torch.no_grad():
        final = evaluate(G_ema(eval_z), mixture)
        raw = evaluate(G(eval_z), mixture) if cfg.ema > 0 else final
    return {
        "seed": seed,
        "final": final,
        "final_raw": raw,
        "wall_s": wall,
        "history": history,
        "logs": logs,
        "snapshots": snapshots,
        "samples": G_ema(eval_z).detach()[:1500].tolist(),
    }


def summarize(runs: list[dict]) -> dict:
    out = {}
    for key in ("modes", "hq", "kl"):
        vals = torch.tensor([r["final"][key] for r in runs], dtype=torch.float64)
        out[key] = {
            "mean": float(vals.mean()),
            "std": float(vals.std()) if len(vals) > 1 else 0.0,
            "min": float(vals.min()),
            "max": float(vals.max()),
        }
    out["wall_s"] = float(sum(r["wall_s"] for r in runs) / len(runs))
    return out


# --------------------------------------------------------------------------- plots


def plot_runs(runs: list[dict], mixture: GaussianMixture2D, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snaps = runs[0]["snapshots"]
    panels = [(f"step {s}", pts) for s, pts in sorted(snaps.items(), key=lambda kv: int(kv[0]))]
    panels += [(f"final, seed {r['seed']}", r["samples"]) for r in runs]
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(2.4 * n, 2.6), squeeze=False)
    lim = mixture.extent() * 1.25
    for ax, (name, pts) in zip(axes[0], panels):
        p = torch.tensor(pts)
        ax.scatter(p[:, 0], p[:, 1], s=1.5, alpha=0.5, c="tab:blue", rasterized=True)
        ax.scatter(mixture.means[:, 0], mixture.means[:, 1], s=8, c="tab:red", marker="x")
        far = p.abs().max().item()
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_title(f"{name}\nmax|x|={far:.1f}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal")
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_curve(runs: list[dict], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(9, 2.6))
    for r in runs:
        steps = [h["step"] for h in r["history"]]
        for ax, key in zip(axes, ("modes", "hq", "kl")):
            ax.plot(steps, [h[key] for h in r["history"]], label=f"seed {r['seed']}")
    for ax, key in zip(axes, ("modes captured", "HQ share", "KL")):
        ax.set_title(key, fontsize=8)
        ax.set_xlabel("generator steps", fontsize=7)
        ax.tick_params(labelsize=7)
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=6)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="reference")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", help="JSON results path")
    ap.add_argument("--plot", help="PNG of sample snapshots and final samples")
    ap.add_argument("--curve", help="PNG of quality vs steps")
    ap.add_argument("--keep-logs", action="store_true", help="keep per-step logs in the JSON")
    ap.add_argument("--threads", type=int, default=1)
    for f in fields(Config):
        if f.name == "extra":
            continue
        kind = type(f.default)
        if kind is bool:
            ap.add_argument(f"--{f.name.replace('_', '-')}", type=lambda s: s.lower() in ("1", "true", "yes"))
        else:
            ap.add_argument(f"--{f.name.replace('_', '-')}", type=kind)
    return ap


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    values = dict(PRESETS[args.preset])
    for f in fields(Config):
        v = getattr(args, f.name, None)
        if v is not None:
            values[f.name] = v
    cfg = Config(**values)
    runs = []
    for seed in args.seeds:
        r = train(cfg, seed)
        fin = r["final"]
        print(
            f"[{cfg.tag or args.preset}] {cfg.mixture} seed {seed}: modes {fin['modes']}"
            f" hq {fin['hq']:.3f} kl {fin['kl']:.4f} max|x| {fin['max_abs']:.1f}"
            f" (raw G: {r['final_raw']['modes']} / {r['final_raw']['hq']:.3f})"
            f" wall {r['wall_s']:.1f}s",
            flush=True,
        )
        runs.append(r)
    summary = summarize(runs)
    print(
        f"[{cfg.tag or args.preset}] {cfg.mixture} summary: modes {summary['modes']['mean']:.2f}"
        f" (min {summary['modes']['min']:.0f}) hq {summary['hq']['mean']:.3f}"
        f"±{summary['hq']['std']:.3f} (min {summary['hq']['min']:.3f})"
        f" kl {summary['kl']['mean']:.4f} (max {summary['kl']['max']:.4f})"
        f" wall {summary['wall_s']:.1f}s",
        flush=True,
    )
    mixture = make_mixture(cfg.mixture)
    if args.plot:
        plot_runs(runs, mixture, args.plot, f"{cfg.tag or args.preset} on {cfg.mixture}")
    if args.curve:
        plot_curve(runs, args.curve, f"{cfg.tag or args.preset} on {cfg.mixture}")
    result = {
        "config": asdict(cfg),
        "preset": args.preset,
        "argv": sys.argv[1:] if argv is None else argv,
        "summary": summary,
        "runs": [
            {k: v for k, v in r.items() if k not in ("samples", "snapshots")}
            | ({} if args.keep_logs else {"logs": r["logs"][-1:]})
            for r in runs
        ],
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
