"""Memorization check: how close generated samples come to their nearest training sample.

A generator that copies its training set puts every sample (almost) on a training point. The
distance from each generated feature vector to its nearest training feature vector (FAISS k-NN)
is compared with the same distance for *held-out* real samples, which were never trained on: a
ratio ``mean_fake / mean_heldout`` well below 1 means the generated samples sit closer to the
training set than new real data does, the signature of memorization. Without a held-out set only
the raw distance is available, whose scale depends on the feature space.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .neighbours import Backend, knn


@torch.no_grad()
def nearest_train_distances(
    features: torch.Tensor, train_features: torch.Tensor, *, backend: Backend = "auto"
) -> torch.Tensor:
    """(N,) Euclidean distance from each row of ``features`` to its nearest training row."""
    distances, _ = knn(features, train_features, 1, backend=backend)
    return distances[:, 0]


@dataclass(frozen=True)
class Memorization:
    """``nn_distance``: mean fake-to-train distance; ``heldout_nn_distance``: the same for held-out
    real samples (``nan`` without them); ``ratio`` of the two (< 1: closer than new real data);
    ``copy_fraction``: share of fakes closer to the training set than the closest held-out sample
    (``nan`` without held-out samples).
    """

    nn_distance: float
    heldout_nn_distance: float
    ratio: float
    copy_fraction: float


@torch.no_grad()
def memorization(
    fake_features: torch.Tensor,
    train_features: torch.Tensor,
    heldout_features: torch.Tensor | None = None,
    *,
    backend: Backend = "auto",
) -> Memorization:
    """Nearest-training-neighbour distances of fakes, relative to held-out real samples if given."""
    fake_d = nearest_train_distances(fake_features, train_features, backend=backend).double()
    nan = float("nan")
    if heldout_features is None:
        return Memorization(float(fake_d.mean()), nan, nan, nan)
    held_d = nearest_train_distances(heldout_features, train_features, backend=backend).double()
    held_mean = float(held_d.mean())
    ratio = float(fake_d.mean()) / held_mean if held_mean > 0 else nan
    copy_fraction = float((fake_d < held_d.min()).double().mean())
    return Memorization(float(fake_d.mean()), held_mean, ratio, copy_fraction)


__all__ = ["Memorization", "memorization", "nearest_train_distances"]
