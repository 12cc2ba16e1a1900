"""Scores read from a classifier's logits on generated samples: Inception score, class coverage.

* Inception score (Salimans et al., NeurIPS 2016): ``exp(E_x KL(p(y|x) || p(y)))`` with ``p(y)`` the
  mean prediction; computed on ``splits`` consecutive equal parts of the samples (reference: 10),
  mean and standard deviation over parts. It rewards confident (``p(y|x)`` peaked) and varied
  (``p(y)`` flat) predictions; its maximum is the number of classes. With the digits classifier
  (``@digits-classifier``) it is a digits IS, not comparable with ImageNet-Inception IS numbers.
* Class coverage: the share of classes predicted for at least one sample, and the smallest class
  share relative to the fair share ``1 / C`` (1 for perfectly balanced predictions, 0 when a class
  is missing): a direct read-out of mode dropping on labelled data.
"""

from __future__ import annotations

import math

import torch


def _check_logits(logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] == 0:
        raise ValueError(
            "logits must be a non-empty (N, C) tensor (one row of class scores per sample); got"
            f" {getattr(logits, 'shape', type(logits).__name__)}."
        )
    if not torch.is_floating_point(logits) or not bool(torch.isfinite(logits).all()):
        raise ValueError("logits must be finite floating-point class scores (pre-softmax).")


@torch.no_grad()
def inception_score(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """Inception score ``(mean, std)`` over ``splits`` parts of (N, C) logits (float64 inside)."""
    _check_logits(logits)
    n = logits.shape[0]
    if not isinstance(splits, int) or not 1 <= splits <= n:
        raise ValueError(f"splits must be an int in [1, N={n}]; got {splits!r}.")
    log_p = torch.log_softmax(logits.detach().to(torch.float64), dim=1)
    scores = []
    for s in range(splits):
        part = log_p[s * n // splits : (s + 1) * n // splits]
        log_marginal = torch.logsumexp(part, dim=0) - math.log(part.shape[0])
        kl = (part.exp() * (part - log_marginal[None, :])).sum(dim=1)
        scores.append(kl.mean().exp())
    scores = torch.stack(scores)
    std = float(scores.std(correction=0)) if splits > 1 else 0.0
    return float(scores.mean()), std


@torch.no_grad()
def class_coverage(
    predictions: torch.Tensor, num_classes: int | None = None
) -> tuple[float, float]:
    """``(classes_present, min_share_ratio)`` of predicted classes.

    Args:
        predictions: (N, C) logits (argmax taken) or (N,) integer class labels.
        num_classes: C; taken from the logits' width, required with labels.

    Returns:
        The fraction of the C classes predicted at least once, and ``min_c share_c / (1 / C)``.
    """
    if isinstance(predictions, torch.Tensor) and predictions.ndim == 2:
        _check_logits(predictions)
        num_classes = predictions.shape[1] if num_classes is None else num_classes
        labels = predictions.argmax(dim=1)
    elif (
        isinstance(predictions, torch.Tensor)
        and predictions.ndim == 1
        and not torch.is_floating_point(predictions)
    ):
        if num_classes is None:
            raise ValueError("num_classes is required when predictions are (N,) labels.")
        labels = predictions
    else:
        raise ValueError(
            "predictions must be (N, C) logits or (N,) integer labels; got"
            f" {getattr(predictions, 'shape', type(predictions).__name__)}."
        )
    if labels.numel() == 0:
        raise ValueError("predictions is empty; pass at least one sample.")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes - 1}] for num_classes={num_classes}."
        )
    counts = torch.bincount(labels.cpu(), minlength=num_classes).double()
    shares = counts / counts.sum()
    return float((counts > 0).double().mean()), float(shares.min() * num_classes)


__all__ = ["class_coverage", "inception_score"]
