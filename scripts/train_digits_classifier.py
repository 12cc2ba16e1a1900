"""Train the digits evaluation classifier and write it as package data (reproducible, CPU, offline).

    .venv/bin/python scripts/train_digits_classifier.py            # writes mvm_core/assets/
    .venv/bin/python scripts/train_digits_classifier.py --out /tmp/clf

Data: scikit-learn's bundled digits (1,797 images of 8 x 8), split by
``train_test_split(test_size=0.2, random_state=0, stratify=labels)``: 1,437 train / 360 test.
The test split is used only for the recorded accuracy, never for choices during training.

Training: Adam (lr 3e-3, weight decay 1e-4), cosine schedule, 80 epochs, batch 64, dropout 0.2,
fixed seed, one CPU thread, deterministic algorithms. Augmentation: random +-1 pixel shifts
(background -1 fills the border). No resolution augmentation is needed: the network maps every size
of mvm-core's digits convention (8, 16, 32, 64 px) to the same 8 x 8 input (see
``DigitsNet.canonical_input``); the test accuracy is still measured and recorded at each size.

Model selection used ``--validation`` only (80/20 split of the *training* part, the same at every
size): lr 1e-3 x 60 epochs 0.965, lr 3e-3 x 80 epochs 0.979, the same without dropout 0.976.

Outputs ``digits_classifier.safetensors`` (float32 weights) and ``digits_classifier.json``
(architecture, split, seed, hyperparameters, test accuracy per resolution, sha256 of the weights).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from mvm_core.metrics.assets import write_classifier
from mvm_core.metrics.digits_classifier import DIGITS_SPLIT, DigitsNet, digits_split, upsample

SIZES = (8, 16, 32, 64)


def random_shift(
    images: torch.Tensor, generator: torch.Generator, max_shift: int = 1
) -> torch.Tensor:
    """Shift each image by up to ``max_shift`` pixels in x and y, filling with background (-1)."""
    n, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4, value=-1.0)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, :, None].expand(n, h, w)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, :].expand(n, h, w)
    batch = torch.arange(n)[:, None, None].expand(n, h, w)
    return padded[batch, 0, rows, cols][:, None]


@torch.no_grad()
def accuracy(net: DigitsNet, images: torch.Tensor, labels: torch.Tensor, size: int) -> float:
    net.eval()
    predictions = net(upsample(images, size)).argmax(1)
    return float((predictions == labels).double().mean())


def train(args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    x_train, y_train, x_test, y_test = digits_split()
    if args.validation:
        # model selection: hold out part of the training split; the test split stays untouched
        from sklearn.model_selection import train_test_split

        tr, va = train_test_split(
            torch.arange(x_train.shape[0]).numpy(),
            test_size=0.2,
            random_state=1,
            stratify=y_train.numpy(),
        )
        tr, va = torch.as_tensor(tr), torch.as_tensor(va)
        x_train, y_train, x_test, y_test = x_train[tr], y_train[tr], x_train[va], y_train[va]
    net = DigitsNet(
        channels=tuple(args.channels), feature_dim=args.feature_dim, dropout=args.dropout
    )
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
            images = random_shift(x_train[idx], generator)
            loss = F.cross_entropy(net(images), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * idx.shape[0]
        if (epoch + 1) % 10 == 0 or epoch == 0:
            print(
                f"epoch {epoch + 1:3d}  loss {total / x_train.shape[0]:.4f}"
                f"  train acc {accuracy(net, x_train, y_train, 8):.4f}"
            )
    seconds = time.perf_counter() - start
    net.eval()
    return {
        "net": net,
        "train_accuracy": accuracy(net, x_train, y_train, 8),
        "test_accuracy": {str(s): accuracy(net, x_test, y_test, s) for s in SIZES},
        "train_seconds": round(seconds, 1),
        "num_train": int(x_train.shape[0]),
        "num_test": int(x_test.shape[0]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "mvm_core" / "assets"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--channels", type=int, nargs=3, default=[16, 32, 64])
    parser.add_argument("--feature-dim", type=int, default=64)
    parser.add_argument(
        "--validation",
        action="store_true",
        help="model selection: train on 80%% of the training split, report accuracy on"
        " the other 20%% (the test split is not touched) and write nothing",
    )
    args = parser.parse_args(argv)

    result = train(args)
    if args.validation:
        print(json.dumps({"validation_accuracy": result["test_accuracy"]}, indent=2))
        return 0
    net = result.pop("net")
    metadata = {
        "name": "digits-classifier",
        "architecture": {
            "class": "mvm_core.metrics.digits_classifier.DigitsNet",
            "channels": list(net.channels),
            "feature_dim": net.feature_dim,
            "num_classes": net.num_classes,
            "feature_layer": "relu(fc): penultimate, the @digits-classifier space",
            "num_parameters": sum(p.numel() for p in net.parameters()),
            "input": "(N, 1, H, W) in [-1, 1], H = W in {8, 16, 32, 64}; 8x8 block average of the"
            " bilinear 16x16 (H = 8) or of the input (H > 8): the same for every size",
        },
        "data": {
            "dataset": "sklearn.datasets.load_digits",
            "split": "sklearn.model_selection.train_test_split",
            **DIGITS_SPLIT,
            "num_train": result["num_train"],
            "num_test": result["num_test"],
            "image_convention": "pixel / 16 * 2 - 1; larger sizes: bilinear, align_corners=False",
        },
        "training": {
            "seed": args.seed,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "optimizer": f"Adam(lr={args.lr}, weight_decay={args.weight_decay}), cosine schedule",
            "dropout": args.dropout,
            "augmentation": "random +-1 px shift",
            "torch": torch.__version__,
            "python": platform.python_version(),
            "train_seconds_cpu_1_thread": result["train_seconds"],
        },
        "train_accuracy": result["train_accuracy"],
        "test_accuracy": result["test_accuracy"],
    }
    metadata = write_classifier(net, args.out, "digits_classifier", metadata)
    print(
        json.dumps(
            {k: metadata[k] for k in ("train_accuracy", "test_accuracy", "sha256")}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
