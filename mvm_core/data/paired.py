"""Paired data for supervised generation tasks: each item is ``(input, target)``.

Super-resolution (low-res input, high-res target), denoising or image-to-image translation train
the generator on ``fake = G(input)`` against ``real = target`` (``TrainConfig.task = "paired"``):
the metric or adversarial objective compares the set of outputs with the set of targets, and
content terms (:class:`mvm_core.content.ContentLoss`) compare each output with its own target.

A paired dataset also holds held-out pairs, never trained on: the trainer samples from their
inputs (``trainer.sample``) and :meth:`PairedDataset.evaluate` scores the generator on them.
Subclasses with a task-specific protocol (the SR plugin's PSNR/SSIM on the Y channel) override
:meth:`PairedDataset.evaluate`.
"""

from __future__ import annotations

from typing import Any

import torch


class PairedDataset(torch.utils.data.Dataset):
    """Base of ``(input, target)`` datasets: training pairs by index, plus held-out pairs.

    Subclasses implement ``__len__``, ``__getitem__`` (one training pair, images in [-1, 1]) and
    :meth:`heldout`; ``name`` labels runs and reports.
    """

    paired = True  # what the trainer and BatchSource look for
    name = "paired"

    def heldout(self, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` (default all) held-out pairs as ``(inputs, targets)`` batches."""
        raise NotImplementedError(f"{type(self).__name__} must implement heldout(n).")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input (e.g. ``(C, h, w)``)."""
        return tuple(self[0][0].shape)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one target, i.e. of one generated sample."""
        return tuple(self[0][1].shape)

    @property
    def is_image(self) -> bool:
        return len(self.sample_shape) == 3

    @property
    def num_classes(self) -> None:
        return None

    @torch.no_grad()
    def evaluate(self, trainer: Any, n: int = 2000,
                 metrics: tuple[str, ...] | None = None) -> dict[str, float]:
        """Mean ``l1`` and ``psnr`` (targets and outputs mapped from [-1, 1] to [0, 1]) over at
        most ``n`` held-out pairs: a task-agnostic score; subclasses give their field's protocol."""
        inputs, targets = self.heldout(n)
        outputs = trainer.predict(inputs).float().cpu().clamp(-1, 1)
        targets = targets.float().cpu()
        values = {
            "l1": float((outputs - targets).abs().mean()),
            "psnr": float(psnr((outputs + 1) / 2, (targets + 1) / 2).mean()),
        }
        chosen = metrics or tuple(values)
        unknown = set(chosen) - set(values)
        if unknown:
            raise ValueError(
                f"{type(self).__name__} evaluates {sorted(values)}; got unknown metrics {sorted(unknown)}."
            )
        return {k: values[k] for k in chosen}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, n={len(self)})"


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per sample (``(N, ...)`` -> ``(N,)``), in dB; inf when equal."""
    if x.shape != y.shape:
        raise ValueError(f"psnr needs two tensors of one shape; got {tuple(x.shape)} and {tuple(y.shape)}.")
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse)


class PairedTensorDataset(PairedDataset):
    """In-memory pairs: ``inputs`` (N, ...) and ``targets`` (N, ...), plus held-out pairs.

    Args:
        inputs, targets: training pairs (row ``i`` of each is one pair).
        heldout_inputs, heldout_targets: pairs kept out of training (for samples and evaluation).
        name: labels runs and reports.
    """

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, heldout_inputs: torch.Tensor,
                 heldout_targets: torch.Tensor, *, name: str = "paired"):
        for label, a, b in (("training", inputs, targets), ("held-out", heldout_inputs, heldout_targets)):
            if a.shape[0] != b.shape[0] or a.shape[0] == 0:
                raise ValueError(
                    f"{label} inputs and targets must hold the same non-zero number of pairs; got"
                    f" {a.shape[0]} inputs and {b.shape[0]} targets."
                )
        if inputs.shape[1:] != heldout_inputs.shape[1:] or targets.shape[1:] != heldout_targets.shape[1:]:
            raise ValueError("held-out pairs must have the shapes of the training pairs.")
        for label, t in (("inputs", inputs), ("targets", targets)):
            if not torch.is_floating_point(t) or not bool(torch.isfinite(t).all()):
                raise ValueError(f"{label} must be finite floating-point tensors (images in [-1, 1]).")
        self.inputs, self.targets = inputs, targets
        self.heldout_inputs, self.heldout_targets = heldout_inputs, heldout_targets
        self.name = name

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, index) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.targets[index]

    def heldout(self, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.heldout_inputs) if n is None else min(int(n), len(self.heldout_inputs))
        return self.heldout_inputs[:n], self.heldout_targets[:n]


def is_paired(dataset: object) -> bool:
    """Whether ``dataset`` yields ``(input, target)`` pairs (see :class:`PairedDataset`)."""
    return bool(getattr(dataset, "paired", False))


__all__ = ["PairedDataset", "PairedTensorDataset", "is_paired", "psnr"]
