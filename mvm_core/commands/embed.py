"""Embed data with a trained run's metric network (the learned metric, kept as a representation).

DATA is any `mvm train --data` value (digits, mnist, stacked-mnist, ring, grid, folder:PATH, a .npy / .pt tensor file),
read at the run's image size. Writes the embeddings (and labels when the data has them) to
--out; --neighbours K adds each row's K nearest other rows (FAISS exact search when installed);
--evaluate scores retrieval on labelled data (precision@1, R-precision, MAP@R with
pytorch-metric-learning's AccuracyCalculator). Embeddings are L2-normalized when the run's metric
loss measures distances on normalized embeddings (--normalize auto).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder written by `mvm train` (or its checkpoint file)")
    parser.add_argument("data", help="digits | mnist | stacked-mnist | ring | grid | folder:PATH | PATH.npy | PATH.pt")
    parser.add_argument("--out", help="output: .safetensors (default RUN/embeddings.safetensors), .npz or .npy")
    parser.add_argument("--n", type=int, help="embed only the first N samples")
    parser.add_argument("--neighbours", type=int, default=0, metavar="K",
                        help="also write each row's K nearest other rows (indices and distances)")
    parser.add_argument("--evaluate", action="store_true",
                        help="print retrieval scores (needs labelled data)")
    parser.add_argument("--normalize", choices=("auto", "yes", "no"), default="auto",
                        help="L2-normalize embeddings (auto: as the run's metric loss does)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--device", help="device for the metric network (default: the run's)")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    import numpy as np
    from safetensors.torch import save_file

    from ..build import build_dataset
    from ..representation import (
        embed_run,
        nearest_neighbours,
        resolve_normalize,
        retrieval_accuracy,
    )
    from ..runconfig import build_run_config
    from ..runs import load_run

    trainer = load_run(args.run, device=args.device)
    config = dataclasses.replace(build_run_config(trainer.extra_state["run_config"]), data=args.data)
    dataset = build_dataset(config)
    x, labels = dataset.data, dataset.labels
    if args.n is not None:
        if args.n < 2:
            raise SystemExit(f"--n must be >= 2; got {args.n}.")
        x = x[: args.n]
        labels = None if labels is None else labels[: args.n]
    expected = _input_shape(trainer)
    if expected is not None and tuple(x.shape[1:]) != expected:
        raise SystemExit(
            f"{args.data} gives samples of shape {tuple(x.shape[1:])} but the run's metric network"
            f" takes {expected}; embed data of the kind the run was trained on."
        )
    normalize = resolve_normalize(args.normalize, trainer.metric_objective)
    emb = embed_run(trainer, x, normalize=normalize, batch_size=args.batch_size)
    tensors = {"embeddings": emb.contiguous()}
    if labels is not None:
        tensors["labels"] = labels.contiguous()
    if args.neighbours:
        if not 1 <= args.neighbours < len(emb):
            raise SystemExit(f"--neighbours must be in [1, {len(emb) - 1}]; got {args.neighbours}.")
        distances, indices = nearest_neighbours(emb, k=args.neighbours)
        tensors["neighbours"], tensors["distances"] = indices.contiguous(), distances.contiguous()

    run_dir = Path(args.run) if Path(args.run).is_dir() else Path(args.run).parent
    out = Path(args.out) if args.out else run_dir / "embeddings.safetensors"
    if out.suffix == ".safetensors":
        save_file(tensors, str(out))
    elif out.suffix == ".npz":
        np.savez(out, **{k: v.numpy() for k, v in tensors.items()})
    elif out.suffix == ".npy":
        if args.neighbours:
            raise SystemExit("--neighbours needs --out ending in .safetensors or .npz (.npy holds one array).")
        np.save(out, emb.numpy())
    else:
        raise SystemExit(f"--out must end in .safetensors, .npz or .npy; got {out.name!r}.")
    print(f"embedded {len(emb)} samples of {args.data} into {emb.shape[1]} dimensions"
          f" ({'L2-normalized' if normalize else 'raw'}) -> {out}")
    if args.neighbours:
        print(f"  {args.neighbours} nearest neighbours per row; mean distance to the nearest:"
              f" {float(tensors['distances'][:, 0].mean()):.4g}")
    if args.evaluate:
        if labels is None:
            raise SystemExit(f"--evaluate needs labelled data; {args.data} has no labels (use digits, or"
                             " folder:PATH with one sub-folder per class).")
        scores = retrieval_accuracy(emb, labels)
        for key, value in scores.items():
            print(f"  {key:28s} {value:.4f}")
    return 0


def _input_shape(trainer) -> tuple[int, ...] | None:
    """The sample shape the run was trained on (its dataset's), or None when unknown."""
    shape = getattr(trainer.dataset, "sample_shape", None)
    return tuple(shape) if shape is not None else None


__all__ = ["add_arguments", "run"]
