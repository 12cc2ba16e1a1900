"""Input checks shared by the losses: errors that name the argument, the expectation and the fix."""

from __future__ import annotations

import torch


def check_embeddings(name: str, x: object, *, check_finite: bool = True) -> torch.Tensor:
    """Check that ``x`` is a non-empty floating (N, D) tensor with finite values."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, D); got {type(x).__name__}.")
    if x.ndim != 2:
        raise ValueError(
            f"{name} must have shape (N, D) (one row per sample); got shape {tuple(x.shape)}."
            " Flatten extra dimensions with x.flatten(1) or add a batch dimension with x[None]."
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); pass at least one sample.")
    if not torch.is_floating_point(x):
        raise TypeError(
            f"{name} must be a floating-point tensor; got dtype {x.dtype}. Convert with x.float()."
        )
    if check_finite and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise ValueError(
            f"{name} contains NaN or inf in {bad} of {x.shape[0]} rows; check the network"
            " producing it (learning rate, normalization, input data)."
        )
    return x


def check_same_dim(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Both sets must live in the same embedding space."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same embedding size; got {a.shape[1]} and"
            f" {b.shape[1]}. Embed both with the same metric network."
        )
    if a.device != b.device:
        raise ValueError(f"{name_a} is on {a.device} but {name_b} is on {b.device}; move both to one device.")
