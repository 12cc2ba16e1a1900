"""Draw new samples from a trained run: a PNG grid (images) or scatter (2D), or a tensor file."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder (or its checkpoint.safetensors)")
    parser.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    parser.add_argument("--out", help="output file: .png (picture), .safetensors or .npy (tensor)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--class", dest="cls", type=int, help="class id for a conditional generator")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from safetensors.torch import save_file

    from ..plotting import save_image_grid, save_scatter
    from ..runs import load_run

    if args.n < 1:
        raise SystemExit(f"-n must be >= 1; got {args.n}.")
    trainer = load_run(args.run)
    cond = None if args.cls is None else torch.full((args.n,), args.cls, dtype=torch.long)
    samples = trainer.sample(args.n, cond=cond, seed=args.seed).cpu()
    run_dir = Path(args.run) if Path(args.run).is_dir() else Path(args.run).parent
    out = Path(args.out or run_dir / f"samples_n{args.n}_seed{args.seed}.png")
    if out.suffix == ".png":
        if samples.ndim == 4:
            save_image_grid(samples, out)
        else:
            mixture = getattr(trainer.dataset, "mixture", None)
            save_scatter(samples, out, means=None if mixture is None else mixture.means,
                         extent=None if mixture is None else mixture.extent())
    elif out.suffix == ".safetensors":
        save_file({"samples": samples.contiguous()}, str(out))
    elif out.suffix == ".npy":
        np.save(out, samples.numpy())
    else:
        raise SystemExit(f"--out must end in .png, .safetensors or .npy; got {out.name!r}.")
    print(f"wrote {args.n} samples to {out}")
    return 0
