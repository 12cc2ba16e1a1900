"""GFMN estimators on digits: minibatch vs moving average (MA) vs ADAM moving average (AMA).

A small MLP generator is trained by GFMN feature matching only, with a fixed extractor: the hidden
layers of mvm-core's shipped digits classifier (``gfmn:digits-classifier``: relu1, relu2, relu3,
features; 4,160 features in all), on scikit-learn's digits (1,797 images (1, 8, 8) in [-1, 1] =
pixel / 16 * 2 - 1), with a small batch (16) where minibatch estimates of the generated
statistics are noisy. For each estimator and seed it reports:

* ``fm``: the exact matching loss at the end, sum over layers of ||mu_r - mu_g||^2 +
  ||var_r - var_g||^2 with the full-data real statistics and the statistics of 4,000 generated
  images (what GFMN minimizes, without minibatch noise);
* ``fm_tail_std``: the standard deviation of that loss (1,000 generated images) measured every
  ``eval_every`` steps over the last quarter of training (stability);
* ``fid``: Fréchet distance in the classifier's 64-d ``features`` space (``fid@digits-classifier``,
  4,000 generated vs the 1,797 real images). The same network is the training extractor, so this
  is not an independent judge; ``classes`` (fraction of the 10 digit classes predicted at least
  once) and ``min_share`` (smallest class share times 10; 1 = perfectly balanced) read mode
  coverage from its logits.

Usage::

    python plugins/mvm-core-gfmn/benchmarks/bench_estimators.py --quick   # < 60 s on one core
    python plugins/mvm-core-gfmn/benchmarks/bench_estimators.py --steps 3000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from mvm_core.metrics.classifier_scores import class_coverage
from mvm_core.metrics.digits_classifier import load_digits_classifier, pixels_to_images
from mvm_core.metrics.frechet import fid

from mvm_core_gfmn import (
    DigitsClassifierFeatures,
    GFMNTerm,
    compute_real_statistics,
    statistics_distance,
)

VARIANTS = {
    "minibatch": ("minibatch", {}),
    "ma(alpha=0.1)": ("ma", {"alpha": 0.1}),
    "ama(lr=1e-5)": ("ama", {"lr": 1e-5}),  # the authors' default
    "ama(lr=1e-2)": ("ama", {"lr": 1e-2}),
    "ama(lr=1e-1)": ("ama", {"lr": 1e-1}),
}


def digits_images() -> torch.Tensor:
    from sklearn.datasets import load_digits

    return pixels_to_images(torch.as_tensor(load_digits().data))


class MLPGenerator(torch.nn.Module):
    def __init__(self, z_dim: int = 32, hidden: int = 256):
        super().__init__()
        self.z_dim = z_dim
        self.net = torch.nn.Sequential(
            torch.nn.Linear(z_dim, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, 64), torch.nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, 1, 8, 8)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator, batch: int = 1000) -> list[torch.Tensor]:
        return [self(torch.randn(min(batch, n - s), self.z_dim, generator=generator))
                for s in range(0, n, batch)]


def exact_fm(extractor, real_stats, batches) -> float:
    fake_stats = compute_real_statistics(extractor, batches)
    return sum(statistics_distance(real_stats, fake_stats).values())


def run(variant: str, seed: int, args, extractor, real_stats, real_feats, classifier) -> dict:
    kind, options = VARIANTS[variant]
    torch.manual_seed(seed)
    generator = MLPGenerator()
    optimizer = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(0.5, 0.999))
    term = GFMNTerm(extractor, real_stats, estimator=kind, estimator_options=options)
    eval_rng = torch.Generator().manual_seed(10_000 + seed)
    tail_start = args.steps - args.steps // 4
    tail = []
    start = time.perf_counter()
    for step in range(args.steps):
        fake = generator(torch.randn(args.batch_size, generator.z_dim))
        loss = term.loss(fake)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= tail_start and (args.steps - 1 - step) % args.eval_every == 0:
            tail.append(exact_fm(extractor, real_stats, generator.sample(1000, eval_rng)))
    seconds = time.perf_counter() - start
    final = generator.sample(4000, eval_rng)
    with torch.no_grad():
        fake_feats, logits = classifier.embed(torch.cat(final))
    classes, min_share = class_coverage(logits)
    return {
        "variant": variant, "seed": seed, "steps": args.steps, "seconds": seconds,
        "fm": exact_fm(extractor, real_stats, final),
        "fm_tail_std": statistics.pstdev(tail) if len(tail) > 1 else 0.0,
        "fid": fid(real_feats, fake_feats), "classes": classes, "min_share": min_share,
    }


def summarize(results: list[dict]) -> str:
    def cell(values, fmt):
        mean = statistics.fmean(values)
        std = statistics.pstdev(values) if len(values) > 1 else 0.0
        return f"{mean:{fmt}} ± {std:{fmt}}"

    lines = ["| estimator | fm (end) | fm tail std | fid@digits-classifier | classes | min share |",
             "|---|---|---|---|---|---|"]
    for variant in VARIANTS:
        rows = [r for r in results if r["variant"] == variant]
        if not rows:
            continue
        lines.append(
            f"| {variant} | {cell([r['fm'] for r in rows], '.3g')} |"
            f" {cell([r['fm_tail_std'] for r in rows], '.2g')} |"
            f" {cell([r['fid'] for r in rows], '.3g')} |"
            f" {cell([r['classes'] for r in rows], '.2f')} |"
            f" {cell([r['min_share'] for r in rows], '.2f')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 100 steps, seeds 0 1, 3 estimators (< 60 s)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3, help="generator Adam lr")
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--json", help="write every run's numbers to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.eval_every, args.seeds = 100, 10, [0, 1]
        args.variants = ["minibatch", "ma(alpha=0.1)", "ama(lr=1e-5)"]
    torch.set_num_threads(1)

    images = digits_images()
    extractor = DigitsClassifierFeatures()
    classifier = load_digits_classifier()
    real_stats = compute_real_statistics(extractor, images.split(500))
    with torch.no_grad():
        real_feats, _ = classifier.embed(images)
    dims = {layer: int(real_stats.mean[layer].numel()) for layer in real_stats.layers}
    sha = classifier.metadata.get("sha256", "?")[:12]
    print(f"extractor gfmn:digits-classifier (weights sha256 {sha}...) layers {dims};"
          f" {real_stats.count} real images;"
          f" batch {args.batch_size}; {args.steps} steps; generator Adam lr {args.lr},"
          f" betas (0.5, 0.999); seeds {args.seeds}")
    # Noise floor: a bootstrap resample of 4,000 real images scored like a generator.
    boot = images[torch.randint(len(images), (4000,), generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        boot_feats, boot_logits = classifier.embed(boot)
    boot_classes, boot_share = class_coverage(boot_logits)
    print(f"real bootstrap (4000): fm {exact_fm(extractor, real_stats, boot.split(1000)):.4g}"
          f"  fid {fid(real_feats, boot_feats):.4g}  classes {boot_classes:.2f}"
          f"  min share {boot_share:.2f}")
    results = []
    for variant in args.variants:
        for seed in args.seeds:
            result = run(variant, seed, args, extractor, real_stats, real_feats, classifier)
            results.append(result)
            print(f"{variant:>14} seed {seed}: fm {result['fm']:.4g}  tail std"
                  f" {result['fm_tail_std']:.3g}  fid {result['fid']:.4g}  classes"
                  f" {result['classes']:.2f}  min share {result['min_share']:.2f}"
                  f"  ({result['seconds']:.1f} s)", flush=True)
    print()
    print(summarize(results))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"settings": vars(args), "classifier_sha256": classifier.metadata.get(
                "sha256"), "results": results}, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
