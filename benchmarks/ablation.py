"""Does the learned metric earn its place? The ablation every default must pass.

For each dataset, the same generator, data, step budget and learning-rate schedule, four ways to
train it (plus optional extra rows):

* ``learned``: the library's ``default`` preset for the data, as shipped (metric network trained);
* ``frozen``: the same, with the metric network frozen at its random initialization
  (``metric_steps=0``): what the *learning* of the metric adds;
* ``data-space``: the same matching loss applied directly to the samples (pixels / 2D
  coordinates, flattened), no metric network: what the *embedding* adds;
* ``gan``: a strong GAN baseline on the same generator with its own discriminator, each data kind
  at its authors' recipe (``GAN_RECIPES``): on 2D points PacGAN's (an unnormalized 200-unit MLP
  discriminator, non-saturating loss; lr 1e-3, the best of 1e-4 / 3e-4 / 1e-3 at this budget),
  on images SN-GAN's (spectral norm on every layer of a 512-unit MLP discriminator, hinge loss;
  lr 5e-4, the best of 2e-4 / 5e-4 / 1e-3 at this budget); Adam betas (0.5, 0.999), constant
  lr, one discriminator step per generator step. ``gan@LR`` rows tune the lr;
* ``learned-sum`` (2D only): the learned metric with the published batch-summed guidance term,
  which leaves the metric idle (its loss is 0 on most steps).

Quality: 2D mixtures by the PacGAN protocol (modes, high-quality share, reverse KL on 2,500
samples); digits and MNIST by FID in their shipped classifier's features on 2,000 samples
against held-out images; Stacked MNIST by modes covered of 1,000 and KL to uniform on 26,000
samples (``mvm_core.evaluation``). Each run
also records its wall time, steps/s and, for learned rows, the share of logged steps where the
metric loss was exactly 0.

    .venv/bin/python benchmarks/ablation.py --data ring grid digits --seeds 0 1 2 --jobs 2
    .venv/bin/python benchmarks/ablation.py --data mnist stacked-mnist --steps 1500 --jobs 2
    .venv/bin/python benchmarks/ablation.py --quick        # smoke test (seconds)

Results: ``<out>/ablation.{json,md}`` (``ablation.quick.*`` with ``--quick``) and the first seed's
samples, ``<out>/ablation_<data>_<variant>_seed<seed>.png``. A finished run from a clean tree is
kept by a rerun while its resolved recipe (run config, GAN recipe) is unchanged, and records the
commit it trained at (a crash loses only the runs in flight).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fmt_mean_sd, machine, read_json, table, write_results  # noqa: E402

VARIANTS = ("learned", "frozen", "data-space", "gan")
EXTRA = {"learned-sum": "points"}  # extra rows and the data kind they apply to
DESCRIPTIONS = {
    "learned": "learned metric (`default` preset)",
    "frozen": "same metric network frozen at init",
    "data-space": "same matching loss in data space",
    "gan": "GAN, own discriminator (recipe in the notes)",
    "learned-sum": "learned metric, batch-summed guidance (published)",
}
# The GAN baseline, each kind at its authors' recipe (Adam betas (0.5, 0.999), constant lr, one D
# step per G step). Points: PacGAN's 2D mixtures set-up (Lin et al. 2018: an MLP discriminator,
# 200 units, no normalization, the non-saturating loss) with the lr tuned for this budget (ring,
# 3,000 steps, seed 0: lr 1e-4 0/8 modes, 3e-4 0/8, 1e-3 6/8 at 1.2% high quality); spectral norm
# on a 2D input keeps the logits of a fresh discriminator near 0 and the generator never leaves
# its initial blob (0/8 modes at lr 1e-4 and 2e-4, hinge and non-saturating). Images: SN-GAN
# (Miyato et al. 2018) with an MLP discriminator: spectral norm on every layer, hinge, with the lr
# tuned for this budget (digits, 3,000 steps, seed 0: FID 49.9 at SN-GAN's 2e-4, 38.6 at 5e-4,
# 46.8 at 1e-3).
GAN_RECIPES = {
    "points": {"d_width": 200, "d_emb": 200, "spectral_norm": False, "loss": "non-saturating", "lr": 1e-3},
    "images": {"d_width": 512, "d_emb": 256, "spectral_norm": True, "loss": "hinge", "lr": 5e-4},
}


def _config(data: str, seed: int, steps: int, variant: str, batch_size: int | None):
    from mvm_core.runconfig import build_run_config

    overrides = {"data": data, "seed": seed, "steps": steps, "checkpoint_every": 0}
    if batch_size:
        overrides["batch_size"] = batch_size
    config = build_run_config({}, overrides)
    if variant == "frozen":
        config.metric_steps = 0
    if variant == "learned-sum":
        config.metric_loss_kwargs = {**config.metric_loss_kwargs, "guidance_reduction": "sum"}
    return config


class DataSpaceMatching(torch.nn.Module):
    """A generator term: the run's matching loss on the flattened samples themselves."""

    def __init__(self, matching: torch.nn.Module):
        super().__init__()
        self.matching = matching

    def forward(self, ctx) -> torch.Tensor:
        return self.matching(ctx.real.flatten(1).float(), ref_emb=ctx.fake.flatten(1))


def build(data: str, seed: int, steps: int, variant: str, batch_size: int | None = None):
    """A ready-to-fit trainer for one row (same generator init for every variant of a seed)."""
    from torch.nn.utils.parametrizations import spectral_norm

    from mvm_core.adversarial import gan_objectives
    from mvm_core.build import build_dataset, build_matching, build_networks, build_trainer
    from mvm_core.nets import MLPMetricNet
    from mvm_core.trainer import Trainer

    config = _config(data, seed, steps, variant, batch_size)
    if variant.partition("@")[0] not in ("data-space", "gan"):
        return build_trainer(config), config
    torch.manual_seed(config.seed)
    dataset = build_dataset(config)
    generator, _ = build_networks(config, dataset)  # the same generator init as build_trainer's
    points = len(dataset.sample_shape) == 1
    train = config.train_config()
    if variant == "data-space":
        term = DataSpaceMatching(build_matching(config))
        return Trainer(generator, None, dataset, train, generator_terms={"matching": (1.0, term)}), config
    # gan: its own discriminator, by the recipe its authors use on this kind of data
    recipe = gan_recipe(points, variant)
    in_dim = int(torch.tensor(dataset.sample_shape).prod())
    body = MLPMetricNet(in_dim, emb_dim=recipe["d_emb"], hidden=recipe["d_width"], depth=2,
                        spectral_norm=recipe["spectral_norm"])
    matching, objective = gan_objectives(recipe["d_emb"], recipe["loss"])
    if recipe["spectral_norm"]:
        spectral_norm(objective.head)
    train.m_betas = train.g_betas = (0.5, 0.999)
    train.g_eps = train.m_eps = 1e-8
    train.ema_decay = None
    train.g_lr = train.m_lr = recipe["lr"]
    train.lr_schedule = "constant"
    trainer = Trainer(generator, body, dataset, train, matching=matching, metric_objective=objective)
    return trainer, config


def run_one(data: str, seed: int, steps: int, variant: str, batch_size: int | None = None,
            samples_dir: Path | None = None) -> dict:
    """Train and evaluate one row; with ``samples_dir``, also save its samples as a PNG."""
    torch.set_num_threads(1)
    from mvm_core.evaluation import evaluate_trainer
    from mvm_core.plotting import save_image_grid, save_scatter

    trainer, config = build(data, seed, steps, variant, batch_size)
    start = time.perf_counter()
    history = trainer.fit()
    wall = time.perf_counter() - start
    metrics = evaluate_trainer(trainer)
    samples = None
    if samples_dir is not None:
        path = Path(samples_dir) / f"ablation_{data}_{variant}_seed{seed}.png"
        dataset = trainer.dataset
        if not dataset.is_image:
            save_scatter(trainer.sample(2500, seed=1), path, real=dataset.data[:2500],
                         title=f"{data} {variant}")
        else:
            save_image_grid(trainer.sample(64, seed=1), path, nrow=8)
        samples = path.name
    idle = [r["loss_m"] == 0.0 for r in history if "loss_m" in r]
    return {
        "data": data, "seed": seed, "steps": steps, "variant": variant,
        "batch_size": config.batch_size, "metrics": metrics, "train_s": wall,
        "steps_per_s": steps / wall if wall > 0 else None,
        "metric_zero_share": sum(idle) / len(idle) if idle and not variant.startswith("gan") else None,
        "final_matching": history[-1].get("matching") if history else None,
        "samples": samples,
    }


def recipe(data: str, seed: int, steps: int, variant: str, batch_size: int | None = None) -> dict:
    """What a row trains, resolved: the run config, and for a GAN row its recipe and lr."""
    config = _config(data, seed, steps, variant, batch_size).to_dict()
    if variant.startswith("gan"):
        config["gan"] = gan_recipe(data in ("ring", "grid"), variant)
    return config


def gan_recipe(points: bool, variant: str) -> dict:
    """The GAN row's recipe for the data kind, with the lr a ``gan@LR`` row asks for."""
    recipe = GAN_RECIPES["points" if points else "images"]
    return {**recipe, "lr": float(variant.partition("@")[2] or recipe["lr"])}


def _key(variant: str, resolved: dict) -> str:
    return json.dumps([variant, resolved], sort_keys=True, default=str)


def run_key(data: str, seed: int, steps: int, variant: str, batch_size: int | None = None) -> str:
    """Identifies what a row trains now (compared with the recipe a finished run recorded)."""
    return _key(variant, recipe(data, seed, steps, variant, batch_size))


def describe(variant: str) -> str:
    """A row's label; ``gan@LR`` is a tuning row: the GAN baseline at learning rate LR."""
    base, _, lr = variant.partition("@")
    return DESCRIPTIONS[base] + (f", lr {lr}" if lr else "")


def _order(variant: str) -> tuple[int, str]:
    base = variant.partition("@")[0]
    return [*VARIANTS, *EXTRA].index(base), variant


def headline(data: str) -> list[str]:
    """The metrics a dataset's table shows (the first is the one to beat)."""
    if data in ("ring", "grid"):
        return ["modes@data", "high_quality@data", "reverse_kl@data"]
    if data == "stacked-mnist":
        return ["modes@mnist-classifier", "reverse_kl@mnist-classifier"]
    space = {"digits": "digits-classifier", "mnist": "mnist-classifier"}.get(data, "metric-net")
    return [f"fid@{space}"]


def markdown(result: dict) -> str:
    lines = ["# Ablation: learned metric vs frozen metric vs data space vs a strong GAN", "",
             f"Written at commit {result['machine']['commit'][:10]}"
             f"{' (uncommitted changes)' if result['machine']['dirty'] else ' (clean tree)'}; each"
             " section names the commits its runs trained at (a run is kept while its resolved recipe"
             " is unchanged);"
             f" {result['machine']['cpu']}, one torch thread per run (steps/s: medians under the"
             " machine's load at the time)."
             " Mean ± sd over the seeds; `zero loss_m`: share of logged steps with the metric loss"
             " exactly 0.", "",
             "GAN recipes (Adam betas (0.5, 0.999), constant lr, one discriminator step per generator"
             " step): " + "; ".join(f"{kind}: {r['loss']} loss, {r['d_width']}-unit MLP discriminator"
                                    f"{' with spectral norm' if r['spectral_norm'] else ''}, lr {r['lr']:g}"
                                    for kind, r in GAN_RECIPES.items()) + ".", ""]
    for data in result["data"]:
        runs = [r for r in result["runs"] if r["data"] == data]
        if not runs:
            continue
        keys = headline(data)
        seeds = sorted({r["seed"] for r in runs})
        commits = sorted({r.get("commit", result["machine"]["commit"])[:10] for r in runs})
        lines += [f"### {data} ({runs[0]['steps']} steps, batch {runs[0]['batch_size']}, seeds"
                  f" {', '.join(map(str, seeds))}; commit {', '.join(commits)})", ""]
        rows = []
        for variant in sorted({r["variant"] for r in runs}, key=_order):
            mine = [r for r in runs if r["variant"] == variant]
            if not mine:
                continue
            cells = [describe(variant)]
            for key in keys:
                values = [r["metrics"][key] for r in mine if key in r["metrics"]]
                cells.append(fmt_mean_sd(values, "{:.3g}") if values else "-")
            zero = [r["metric_zero_share"] for r in mine if r["metric_zero_share"] is not None]
            cells.append(f"{statistics.mean(zero):.0%}" if zero else "-")
            cells.append(f"{statistics.median(r['steps_per_s'] for r in mine):.0f}")
            rows.append(cells)
        lines += [table(["variant", *[k.split("@")[0] for k in keys], "zero loss_m", "steps/s"], rows), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["ring", "grid", "digits"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, nargs="+", default=None,
                        help="step budget per dataset (one value for all, or one per --data)")
    parser.add_argument("--variants", nargs="+", default=[*VARIANTS, *EXTRA],
                        help=f"rows: {', '.join([*VARIANTS, *EXTRA])}; gan@LR tunes the GAN's lr")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny budgets: a smoke test")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, steps, args.batch_size = args.seeds[:1], [20], 32
    else:
        steps = args.steps or [3000]
    if len(steps) not in (1, len(args.data)):
        parser.error("--steps takes one value or one per --data")
    budget = dict(zip(args.data, steps * len(args.data) if len(steps) == 1 else steps))
    name = "ablation.quick" if args.quick else "ablation"
    result = {"machine": machine(threads=1), "jobs": args.jobs, "data": args.data, "runs": []}
    previous = read_json(args.out / f"{name}.json") or {}
    # a finished run is kept while what it trains is unchanged (its resolved recipe), from a
    # clean tree; each run records the commit it ran at
    done = {}
    for r in previous.get("runs", []):
        if r.get("recipe") and r.get("commit") and not r.get("dirty", True):
            key = _key(r["variant"], r["recipe"])
            if key == run_key(r["data"], r["seed"], r["steps"], r["variant"], r["batch_size"]):
                done[key] = r  # what it trained is what this row trains now
    jobs = []
    for data in args.data:
        kind = "points" if data in ("ring", "grid") else "images"
        for variant in args.variants:
            if variant.partition("@")[0] not in DESCRIPTIONS:
                parser.error(f"unknown variant {variant!r}: choose from {', '.join(DESCRIPTIONS)} (or gan@LR)")
            if variant in EXTRA and EXTRA[variant] != kind:
                continue
            for seed in args.seeds:
                jobs.append((data, seed, budget[data], variant, args.batch_size))
    # every kept run stays in the results, also those of data or seeds not asked for this time
    todo = [job for job in jobs if run_key(*job) not in done]
    result["runs"] = list(done.values())
    result["data"] = list(dict.fromkeys([*previous.get("data", []), *args.data]))

    def save() -> None:
        write_results(args.out, name, result, markdown(result))

    def record(run: dict) -> None:
        run.update(commit=result["machine"]["commit"], dirty=result["machine"]["dirty"],
                   recipe=json.loads(json.dumps(recipe(run["data"], run["seed"], run["steps"], run["variant"],
                                                       run["batch_size"]), default=str)))
        result["runs"].append(run)
        print(run["data"], run["variant"], run["seed"], {k: round(v, 4) for k, v in
              run["metrics"].items() if k in headline(run["data"])}, f"{run['train_s']:.0f} s",
              flush=True)
        save()

    calls = [(*job, args.out if job[1] == args.seeds[0] else None) for job in todo]
    if args.jobs <= 1:  # in this process (also what lets a test load this file by path)
        for call in calls:
            record(run_one(*call))
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for future in as_completed([pool.submit(run_one, *call) for call in calls]):
                record(future.result())
    save()
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
