"""Super-resolution x2 on CPU: bicubic vs L1-only vs L1 + GAN vs L1 + MvM, same networks and budget.

One command::

    .venv/bin/python benchmarks/sr/bench_sr.py            # the table in benchmarks/sr/RESULTS.md
    .venv/bin/python benchmarks/sr/bench_sr.py --quick    # a smoke test (seconds, not a result)

Every method is `mvm train --preset sr` (SRResNet-style generator, patch metric network, the
scikit-image photos) with one switch: ``--method none`` (L1 only), ``--method gan`` (L1 +
non-saturating GAN: a linear logit head on the same metric network) or ``--method mvm`` (L1 +
manifold matching in the learned metric). Same seed, steps, batch, learning rates and L1 weight.
Evaluation: PSNR/SSIM on Y with a border of ``scale`` px over the whole held-out images (camera,
chelsea, rocket), the SR protocol (mvm_core_sr.metrics). Writes ``results/sr.json`` (or
``sr.quick.json``), ``RESULTS.md`` and ``crops.png`` (side-by-side crops, like the paper's figure).
Single-threaded (``torch.set_num_threads(1)``): times are per CPU core, on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

torch.set_num_threads(1)

from mvm_core_sr.ops import bicubic_resize, quantize  # noqa: E402

from mvm_core.build import build_trainer  # noqa: E402
from mvm_core.runconfig import build_run_config  # noqa: E402

HERE = Path(__file__).resolve().parent
METHODS = {"l1": "none", "l1+gan": "gan", "l1+mvm": "mvm"}
LABELS = {"bicubic": "bicubic", "l1": "L1 only", "l1+gan": "L1 + GAN", "l1+mvm": "L1 + MvM"}
# (test image index in SKIMAGE_TEST order, top, left, side) of the high-res crops in the figure
CROPS = [(0, 180, 190, 96), (1, 60, 150, 96)]  # camera: tripod and coat; chelsea: eye and whiskers


def run_method(name: str, args: argparse.Namespace) -> tuple[dict, object]:
    overrides = {"preset": "sr", "method": METHODS[name], "steps": args.steps, "seed": args.seed,
                 "device": "cpu", "log_every": max(1, args.steps // 10),
                 "regularizers": {"mvm:ContentLoss": args.l1_weight}}
    if args.quick:
        overrides.update({"data_kwargs": {"scale": 2, "patch_size": 16, "test_crop": 96},
                          "generator_kwargs": {"width": 8, "blocks": 1},
                          "metric_net_kwargs": {"width": 8, "stages": 2}, "batch_size": 4})
    config = build_run_config(overrides=overrides)
    trainer = build_trainer(config)
    start = time.time()
    history = trainer.fit()
    seconds = time.time() - start
    metrics = trainer.dataset.evaluate(trainer, metrics=("psnr", "ssim"))
    row = {"method": name, "train_seconds": round(seconds, 1), "steps": config.steps,
           "final_log": history[-1] if history else {}, **metrics}
    print(f"{name:8s} psnr@y {metrics['psnr@y']:.3f}  ssim@y {metrics['ssim@y']:.4f}"
          f"  ({seconds:.0f} s)", flush=True)
    return row, trainer


def crops_figure(trainers: dict, path: Path) -> None:
    """Rows: crops of test images; columns: high-res, bicubic and each method (PSNR on Y of the crop)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mvm_core_sr.metrics import y_metrics

    dataset = next(iter(trainers.values())).dataset
    columns = ["HR (target)", "bicubic"] + [LABELS[n] for n in trainers]
    rows = [c for c in CROPS if c[0] < len(dataset.test_hr)]
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(2.2 * len(columns), 2.4 * len(rows)),
                             squeeze=False)
    s = dataset.scale
    for r, (k, top, left, side) in enumerate(rows):
        hr_full, lr_full = dataset.test_hr[k], dataset.test_lr[k]
        top, left = min(top, hr_full.shape[-2] - side) // s * s, min(left, hr_full.shape[-1] - side) // s * s
        # super-resolve a low-res window with a margin, then cut the crop (no border effects)
        m = 8
        t0, l0 = max(0, top // s - m), max(0, left // s - m)
        lr = lr_full[None, :, t0 : (top + side) // s + m, l0 : (left + side) // s + m]
        hr = hr_full[None, :, top : top + side, left : left + side]
        outs = {"bicubic": bicubic_resize(lr, scale=s)}
        outs.update({n: t.predict(lr, batch_size=1) for n, t in trainers.items()})
        cut = {n: quantize(o[..., top - t0 * s : top - t0 * s + side, left - l0 * s : left - l0 * s + side])
               for n, o in outs.items()}
        images = [("HR (target)", hr, None)] + [(LABELS[n], c, y_metrics(c, hr, 0)["psnr"].item())
                                               for n, c in cut.items()]
        for ax, (label, img, value) in zip(axes[r], images):
            arr = ((img[0].clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
            ax.imshow(arr if arr.shape[2] == 3 else arr[..., 0], cmap=None if arr.shape[2] == 3 else "gray",
                      interpolation="nearest")
            ax.set_title(label if value is None else f"{label}\n{value:.2f} dB", fontsize=9)
            ax.axis("off")
    fig.suptitle(f"x{s} super-resolution, held-out crops (PSNR on Y of each crop)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_table(result: dict, path: Path) -> None:
    rows = result["rows"]
    bic = rows[0]
    lines = [
        "| method | PSNR on Y (dB) | SSIM on Y | train time (s, 1 thread) |",
        "|---|---|---|---|",
        f"| bicubic | {bic['bicubic_psnr@y']:.3f} | {bic['bicubic_ssim@y']:.4f} | - |",
    ]
    for row in rows:
        lines.append(f"| {LABELS[row['method']]} | {row['psnr@y']:.3f} | {row['ssim@y']:.4f} |"
                     f" {row['train_seconds']:.0f} |")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None, help="training steps per method (default: the sr preset's)")
    parser.add_argument("--l1-weight", type=float, default=None, help="weight of the L1 term (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default="l1,l1+gan,l1+mvm", help=f"comma-separated of {list(METHODS)}")
    parser.add_argument("--quick", action="store_true", help="tiny nets, 3 steps: checks that it runs")
    parser.add_argument("--out", default=str(HERE), help="folder for results/, RESULTS table and crops.png")
    args = parser.parse_args(argv)
    preset = build_run_config(overrides={"preset": "sr"})
    args.steps = args.steps or (3 if args.quick else preset.steps)
    args.l1_weight = args.l1_weight or preset.regularizers["mvm:ContentLoss"]
    names = [n.strip() for n in args.methods.split(",") if n.strip()]
    unknown = set(names) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; choose from {list(METHODS)}.")
    rows, trainers = [], {}
    for name in names:
        row, trainer = run_method(name, args)
        rows.append(row)
        trainers[name] = trainer
    out = Path(args.out)
    suffix = ".quick" if args.quick else ""
    result = {"steps": args.steps, "seed": args.seed, "l1_weight": args.l1_weight, "quick": args.quick,
              "config": {k: v for k, v in preset.to_dict().items() if k not in ("steps", "seed")},
              "machine": {"python": platform.python_version(), "torch": torch.__version__,
                          "cpu": platform.processor() or platform.machine(), "threads": 1},
              "rows": rows}
    (out / "results").mkdir(parents=True, exist_ok=True)
    (out / "results" / f"sr{suffix}.json").write_text(json.dumps(result, indent=2, default=float))
    write_table(result, out / "results" / f"sr{suffix}.md")
    crops_figure(trainers, out / f"crops{suffix}.png")
    print((out / "results" / f"sr{suffix}.md").read_text())
    print(f"figure: {out / f'crops{suffix}.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
