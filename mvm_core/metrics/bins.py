"""NDB and JSD over K-means bins (Richardson & Weiss, NeurIPS 2018; used by MSGAN, CVPR 2019).

Protocol (the reference ``ndb.py`` of eitanrich/gans-n-gmms, followed by MSGAN):

1. cluster the *training* samples into K bins with K-means (reference K = 100), optionally after
   whitening every dimension with the training mean and std;
2. the training bin proportions are the shares of training samples per bin; each generated sample
   goes to its nearest bin centre (L2), giving the generated proportions;
3. NDB = number of bins whose two proportions differ significantly under a two-sided
   two-proportion z-test with pooled standard error, at significance 0.05;
4. JSD = Jensen-Shannon divergence (natural log) between the two bin histograms.

A model that drops a region of the data leaves its bins under-populated and others over-populated:
NDB counts them, JSD measures the size of the mismatch. Two samples of one distribution give about
``significance * K`` false positives. Each bin needs enough training samples for the test to have
power (the reference suggests hundreds per bin). Fit the bins once with :func:`fit_bins` and reuse
them for every evaluation during training.

K-means: seeded greedy k-means++ initialisation (as scikit-learn's ``KMeans``, which the reference
uses), then Lloyd iterations with FAISS (``faiss.Kmeans``) or, without FAISS, in torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_embeddings, check_same_dim
from .neighbours import (
    Backend,
    _faiss_gpu_available,
    _resolve_backend,
    chunk_rows,
    knn,
    squared_distances,
)

# The reference adds this to the per-dimension std before whitening.
_WHITEN_EPS = 1e-6


def kmeans(
    features: torch.Tensor,
    num_clusters: int,
    *,
    iterations: int = 25,
    seed: int = 0,
    backend: Backend = "auto",
) -> torch.Tensor:
    """(K, D) K-means centres of (N, D) features (FAISS when available, else torch; seeded)."""
    check_embeddings("features", features)
    n = features.shape[0]
    if not isinstance(num_clusters, int) or not 1 <= num_clusters <= n:
        raise ValueError(
            f"num_clusters must be an int in [1, {n}] (at most one cluster per sample); got"
            f" {num_clusters!r}. Use fewer bins or more training samples."
        )
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1; got {iterations}.")
    if _resolve_backend(backend, torch.device("cpu"), 1) == "faiss":
        return _faiss_kmeans(features, num_clusters, iterations, seed)
    return _torch_kmeans(features, num_clusters, iterations, seed)


def _faiss_kmeans(features: torch.Tensor, k: int, iterations: int, seed: int) -> torch.Tensor:
    import faiss

    seeds = _kmeans_plus_plus(features.detach().float(), k, torch.Generator().manual_seed(seed))
    x = np.ascontiguousarray(features.detach().float().cpu().numpy())
    n, d = x.shape
    clustering = faiss.Kmeans(
        d,
        k,
        niter=iterations,
        seed=seed,
        verbose=False,
        gpu=bool(features.is_cuda and _faiss_gpu_available()),
        # use every sample (no subsampling) and do not warn on small sets: the caller decides
        max_points_per_centroid=max(256, math.ceil(n / k)),
        min_points_per_centroid=1,
    )
    clustering.train(x, init_centroids=np.ascontiguousarray(seeds.cpu().numpy()))
    return torch.from_numpy(clustering.centroids.copy()).to(features.device)


def _nearest_centre(x: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(squared distance, index) of the nearest centre of every row, in bounded memory."""
    rows = chunk_rows(centres.shape[0])
    parts = [
        squared_distances(x[s : s + rows], centres).min(dim=1) for s in range(0, x.shape[0], rows)
    ]
    return torch.cat([p.values for p in parts]), torch.cat([p.indices for p in parts])


def _kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007; 2 + log k trials per centre, as in
    scikit-learn): robust where FAISS's default random seeding merges separated clusters."""
    n = x.shape[0]
    trials = 2 + int(math.log(k))
    centres = x[int(torch.randint(n, (1,), generator=generator))][None, :]
    closest, _ = _nearest_centre(x, centres)
    for _ in range(1, k):
        weights = closest.double().cpu()
        if float(weights.sum()) <= 0:  # fewer distinct points than clusters
            picks = torch.randint(n, (trials,), generator=generator)
        else:
            picks = torch.multinomial(weights, trials, replacement=True, generator=generator)
        candidates = x[picks.to(x.device)]
        # keep the candidate that lowers the total squared distance most
        new_closest = torch.minimum(closest[None, :], squared_distances(candidates, x))
        best = int(new_closest.double().sum(1).argmin())
        centres = torch.cat([centres, candidates[best : best + 1]])
        closest = new_closest[best]
    return centres


def _torch_kmeans(features: torch.Tensor, k: int, iterations: int, seed: int) -> torch.Tensor:
    """Lloyd's algorithm after k-means++ seeding."""
    x = features.detach().float()
    centres = _kmeans_plus_plus(x, k, torch.Generator().manual_seed(seed))
    for _ in range(iterations):
        _, labels = _nearest_centre(x, centres)
        sums = torch.zeros_like(centres).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).to(x.dtype)
        updated = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centres)
        if torch.equal(updated, centres):
            break
        centres = updated
    return centres


def two_proportion_z_test(
    p1: torch.Tensor, n1: int, p2: torch.Tensor, n2: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-sided two-proportion z-test with pooled standard error, per bin.

    ``p1``, ``p2``: proportions (K,) from samples of sizes ``n1``, ``n2``. Returns ``(z, p_values)``
    in float64; a bin empty (or full) in both samples has ``z = 0`` and ``p = 1``.
    """
    p1, p2 = p1.to(torch.float64), p2.to(torch.float64)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = torch.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    z = torch.where(se > 0, (p1 - p2) / torch.where(se > 0, se, 1.0), torch.zeros_like(se))
    p_values = torch.special.erfc(z.abs() / math.sqrt(2.0))  # = 2 * Phi(-|z|)
    return z, p_values


def jensen_shannon(p: torch.Tensor, q: torch.Tensor) -> float:
    """Jensen-Shannon divergence (natural log, in [0, ln 2]) between two histograms (K,)."""
    if p.shape != q.shape or p.ndim != 1:
        raise ValueError(
            f"p and q must be (K,) histograms of one size; got {tuple(p.shape)}, {tuple(q.shape)}."
        )
    p = p.to(torch.float64) / p.sum()
    q = q.to(torch.float64) / q.sum()
    m = (p + q) / 2

    def kl(a: torch.Tensor) -> torch.Tensor:
        pos = a > 0
        return (a[pos] * (a[pos] / m[pos]).log()).sum()

    return float((kl(p) + kl(q)) / 2)


@dataclass(frozen=True)
class Bins:
    """K-means bins fitted on training features (what NDB compares against).

    ``centers`` (K, D) live in the whitened space when ``mean``/``std`` are set; ``proportions``
    (K,) are the training shares per bin, bins sorted by decreasing share; ``num_samples`` is the
    training sample count (the test's ``n1``).
    """

    centers: torch.Tensor
    proportions: torch.Tensor
    num_samples: int
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None

    @property
    def num_bins(self) -> int:
        return self.centers.shape[0]

    def _transform(self, features: torch.Tensor) -> torch.Tensor:
        x = features.detach().float()
        if self.mean is not None:
            x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        return x

    def assign(self, features: torch.Tensor, *, backend: Backend = "auto") -> torch.Tensor:
        """(N,) index of the nearest bin centre of each row."""
        check_embeddings("features", features)
        if features.shape[1] != self.centers.shape[1]:
            raise ValueError(
                f"features have {features.shape[1]} dimensions but the bins were fitted on"
                f" {self.centers.shape[1]}; use features from the same feature space."
            )
        centers = self.centers.to(features.device)
        _, idx = knn(self._transform(features), centers, 1, backend=backend)
        return idx[:, 0]

    def histogram(self, features: torch.Tensor, *, backend: Backend = "auto") -> torch.Tensor:
        """(K,) float64 share of the rows in each bin."""
        labels = self.assign(features, backend=backend).cpu()
        counts = torch.bincount(labels, minlength=self.num_bins).to(torch.float64)
        return counts / features.shape[0]


def fit_bins(
    train_features: torch.Tensor,
    num_bins: int = 100,
    *,
    whiten: bool = False,
    iterations: int = 25,
    seed: int = 0,
    backend: Backend = "auto",
) -> Bins:
    """Cluster (N, D) training features into ``num_bins`` K-means bins (step 1 of NDB)."""
    check_embeddings("train_features", train_features)
    x = train_features.detach().float()
    mean = std = None
    if whiten:
        mean = x.mean(0)
        std = x.std(0, correction=0) + _WHITEN_EPS
        x = (x - mean) / std
    centers = kmeans(x, num_bins, iterations=iterations, seed=seed, backend=backend)
    unsorted = Bins(centers, torch.zeros(num_bins, dtype=torch.float64), x.shape[0])
    proportions = unsorted.histogram(x, backend=backend)
    order = torch.argsort(proportions, descending=True, stable=True)
    return Bins(
        centers=centers[order.to(centers.device)],
        proportions=proportions[order],
        num_samples=x.shape[0],
        mean=mean,
        std=std,
    )


@dataclass(frozen=True)
class NDBResult:
    """NDB/JSD outcome: ``ndb`` significant bins of ``num_bins``, ``jsd``, per-bin detail."""

    ndb: int
    jsd: float
    num_bins: int
    different: torch.Tensor
    p_values: torch.Tensor
    train_proportions: torch.Tensor
    fake_proportions: torch.Tensor

    @property
    def ndb_fraction(self) -> float:
        """NDB / K, comparable across bin counts."""
        return self.ndb / self.num_bins


@torch.no_grad()
def ndb_jsd(
    train: torch.Tensor | Bins,
    fake_features: torch.Tensor,
    num_bins: int = 100,
    *,
    significance: float = 0.05,
    whiten: bool = False,
    seed: int = 0,
    backend: Backend = "auto",
) -> NDBResult:
    """NDB and JSD of (M, D) generated features against training features or fitted :class:`Bins`.

    ``num_bins``, ``whiten`` and ``seed`` are used only when ``train`` is a feature tensor.
    """
    if not 0 < significance < 1:
        raise ValueError(f"significance must be in (0, 1); got {significance}.")
    check_embeddings("fake_features", fake_features)
    if isinstance(train, Bins):
        bins = train
    else:
        check_embeddings("train", train)
        check_same_dim("train", train, "fake_features", fake_features)
        bins = fit_bins(train, num_bins, whiten=whiten, seed=seed, backend=backend)
    fake_props = bins.histogram(fake_features, backend=backend)
    _, p_values = two_proportion_z_test(
        bins.proportions, bins.num_samples, fake_props, fake_features.shape[0]
    )
    different = p_values < significance
    return NDBResult(
        ndb=int(different.sum()),
        jsd=jensen_shannon(bins.proportions, fake_props),
        num_bins=bins.num_bins,
        different=different,
        p_values=p_values,
        train_proportions=bins.proportions,
        fake_proportions=fake_props,
    )


__all__ = [
    "Bins",
    "NDBResult",
    "fit_bins",
    "jensen_shannon",
    "kmeans",
    "ndb_jsd",
    "two_proportion_z_test",
]
