"""The learned metric as a representation: embed data with a run's metric network, retrieve
nearest neighbours with FAISS, and measure retrieval quality on labelled data.

MvM trains a metric network ``M`` to tell real samples from generated ones; once training ends,
``M`` is an embedding of the data that users can keep. This module is the API behind
``mvm embed RUN DATA``:

>>> trainer = load_run("runs/digits")                     # doctest: +SKIP
>>> emb = embed(trainer.metric_net, digits.data)            # (N, d) float32 on the CPU
>>> dist, idx = nearest_neighbours(emb, k=5)                # each row's 5 nearest other rows
>>> retrieval_accuracy(emb, digits.labels)                  # precision@1, R-precision, MAP@R

Distances: a metric loss whose pml distance normalizes embeddings (e.g. the default contrastive
loss, ``LpDistance(normalize_embeddings=True)``) learned a metric on the unit sphere, so
:func:`metric_is_normalized` tells callers to L2-normalize before searching (``normalize="auto"``).

Search: :func:`nearest_neighbours`, FAISS's exact brute-force search (``faiss.knn`` with the BLAS
kernel, the helpers of :mod:`mvm_core.mining`) when FAISS is installed, and the chunked torch search
of the miner otherwise (same neighbours, bounded memory). The same search serves
pytorch-metric-learning's ``AccuracyCalculator`` (its own ``FaissKNN`` has no torch fallback and
fails late without FAISS), so the retrieval scores and the neighbours written by ``mvm embed``
come from one code path. Unlike :func:`mvm_core.metrics.knn`, ranks are not refined in float64:
retrieval needs hundreds of neighbours per row (R-precision on digits: R up to 182), where that
refinement costs 10x the search, and float32 near-ties do not change these scores.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from .mining import _as_faiss_array, _blas_kernels, chunked_knn, faiss_available, require_faiss

Backend = Literal["auto", "faiss", "torch"]

# AccuracyCalculator keys, in the order they are reported
RETRIEVAL_METRICS: tuple[str, ...] = ("precision_at_1", "r_precision", "mean_average_precision_at_r")
Normalize = Literal["auto", "yes", "no"] | bool


@torch.no_grad()
def embed(metric_net: torch.nn.Module, data: torch.Tensor, *, batch_size: int = 512,
          device: torch.device | str | None = None, normalize: bool = False) -> torch.Tensor:
    """``metric_net(data)`` in batches, in eval mode: (N, d) float32 on the CPU.

    Args:
        metric_net: the embedding network (``Trainer.metric_net``).
        data: (N, ...) samples in the training convention (images in [-1, 1], points as floats).
        batch_size: rows per forward pass (bounds memory).
        device: where to run the network (default: where its parameters are).
        normalize: L2-normalize each embedding (for metrics learned on the unit sphere).
    """
    if not isinstance(data, torch.Tensor) or data.ndim < 2 or len(data) == 0:
        shape = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
        raise ValueError(f"data must be a non-empty (N, ...) tensor of samples; got {shape}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
    if device is None:
        param = next(metric_net.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    was_training = metric_net.training
    metric_net.eval()
    try:
        out = torch.cat([metric_net(data[i : i + batch_size].to(device).float()).float().cpu()
                         for i in range(0, len(data), batch_size)])
    finally:
        metric_net.train(was_training)
    if out.ndim != 2:
        raise ValueError(f"the metric network must return (N, d) embeddings; got shape {tuple(out.shape)}.")
    return F.normalize(out, dim=1) if normalize else out


def metric_is_normalized(metric_objective: object) -> bool:
    """Whether the run's metric loss compares L2-normalized embeddings (its pml distance says so)."""
    loss = getattr(metric_objective, "loss", metric_objective)
    distance = getattr(loss, "distance", None)
    return bool(getattr(distance, "normalize_embeddings", False))


def resolve_normalize(normalize: Normalize, metric_objective: object = None) -> bool:
    """``"auto"``: follow the run's metric loss (:func:`metric_is_normalized`); ``"yes"/"no"`` or a bool."""
    if isinstance(normalize, bool):
        return normalize
    if normalize == "auto":
        return metric_is_normalized(metric_objective)
    if normalize in ("yes", "no"):
        return normalize == "yes"
    raise ValueError(f"normalize must be 'auto', 'yes', 'no' or a bool; got {normalize!r}.")


def embed_run(trainer, data: torch.Tensor, *, normalize: Normalize = "auto", batch_size: int = 512) -> torch.Tensor:
    """Embed ``data`` with a trained run's metric network (a :class:`~mvm_core.trainer.Trainer`,
    e.g. from :func:`mvm_core.runs.load_run`), normalized as its metric loss measures distances."""
    if trainer.metric_net is None:
        raise ValueError(
            "this run has no metric network (a feature-matching-only run, e.g. --method gfmn); only"
            " MvM runs learn an embedding to keep."
        )
    norm = resolve_normalize(normalize, trainer.metric_objective)
    return embed(trainer.metric_net, data, batch_size=batch_size, device=trainer.device, normalize=norm)


@torch.no_grad()
def nearest_neighbours(reference: torch.Tensor, query: torch.Tensor | None = None, k: int = 10, *,
                       backend: Backend = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest ``reference`` rows of each ``query`` row (Euclidean, exact search).

    With ``query=None`` the reference set queries itself and a row is never its own neighbour.
    Returns ``(distances, indices)``, both (n_query, k), nearest first, on the CPU.
    ``backend``: ``"auto"`` (FAISS when installed), ``"faiss"`` (fail if missing) or ``"torch"``.
    """
    if backend not in ("auto", "faiss", "torch"):
        raise ValueError(f"backend must be 'auto', 'faiss' or 'torch'; got {backend!r}.")
    reference = reference.detach().float().flatten(1).cpu()
    exclude_self = query is None
    query = reference if query is None else query.detach().float().flatten(1).cpu()
    if query.shape[1] != reference.shape[1]:
        raise ValueError(f"query and reference must have the same width; got {query.shape[1]} and"
                         f" {reference.shape[1]}.")
    available = len(reference) - int(exclude_self)
    if not isinstance(k, int) or not 1 <= k <= available:
        raise ValueError(f"k must be an int in [1, {available}] (reference rows"
                         f"{' other than the query' if exclude_self else ''}); got {k!r}.")
    use_faiss = backend == "faiss" or (backend == "auto" and faiss_available())
    if not use_faiss:
        exclude = torch.arange(len(query)) if exclude_self else None
        d2, idx = chunked_knn(query, reference, k, exclude=exclude)
        return d2.clamp_min(0).sqrt(), idx
    faiss = require_faiss("nearest_neighbours(backend='faiss')")
    kk = k + int(exclude_self)
    with _blas_kernels(faiss):
        d2, idx = faiss.knn(_as_faiss_array(query, False), _as_faiss_array(reference, False), kk)
    d2, idx = torch.from_numpy(d2).clamp_min(0), torch.from_numpy(idx).long()
    if exclude_self:  # drop each row's own index (its last result when a duplicate displaced it)
        is_self = idx == torch.arange(len(idx))[:, None]
        is_self[~is_self.any(1), -1] = True
        d2, idx = d2[~is_self].view(-1, k), idx[~is_self].view(-1, k)
    return d2.sqrt(), idx


def _knn_func(backend: Backend):
    """An ``AccuracyCalculator`` ``knn_func`` over :func:`nearest_neighbours`."""

    def search(query, k, reference, ref_includes_query):
        if ref_includes_query:
            if reference.shape[0] != query.shape[0]:
                raise ValueError("ref_includes_query with extra reference rows is not supported here.")
            out = nearest_neighbours(query, None, min(k, len(query) - 1), backend=backend)
        else:
            out = nearest_neighbours(reference, query, min(k, len(reference)), backend=backend)
        return out[0].to(query.device), out[1].to(query.device)

    return search


def retrieval_accuracy(embeddings: torch.Tensor, labels: torch.Tensor, *,
                       reference: torch.Tensor | None = None, reference_labels: torch.Tensor | None = None,
                       metrics: tuple[str, ...] = RETRIEVAL_METRICS, normalize: bool = False,
                       backend: Backend = "auto") -> dict[str, float]:
    """Retrieval quality of an embedding on labelled data (pytorch-metric-learning's ``AccuracyCalculator``).

    Without ``reference``, every row queries all the *other* rows (leave-one-out). Scores:
    ``precision_at_1`` (the nearest neighbour has the query's label), ``r_precision`` (share of
    same-label rows among the R nearest, R = number of other rows with that label) and
    ``mean_average_precision_at_r`` (MAP@R, which also rewards ranking them first).

    Args:
        embeddings: (N, d) query embeddings (or raw features, e.g. flattened pixels).
        labels: (N,) integer labels.
        reference, reference_labels: a separate reference set (optional).
        metrics: AccuracyCalculator metric names.
        normalize: L2-normalize embeddings (and reference) first.
    """
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    embeddings = embeddings.float().flatten(1)
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or len(labels) != len(embeddings):
        raise ValueError(
            f"labels must be (N,) with one label per embedding; got {tuple(labels.shape)} for"
            f" {len(embeddings)} embeddings."
        )
    if (reference is None) != (reference_labels is None):
        raise ValueError("pass reference and reference_labels together (or neither).")
    if normalize:
        embeddings = F.normalize(embeddings, dim=1)
        if reference is not None:
            reference = F.normalize(reference.float().flatten(1), dim=1)
    calculator = AccuracyCalculator(include=tuple(metrics), knn_func=_knn_func(backend),
                                    device=embeddings.device)
    if reference is None:
        scores = calculator.get_accuracy(embeddings, labels)
    else:
        scores = calculator.get_accuracy(embeddings, labels, reference.float().flatten(1), reference_labels)
    return {name: float(scores[name]) for name in metrics}


__all__ = [
    "RETRIEVAL_METRICS",
    "embed",
    "embed_run",
    "metric_is_normalized",
    "nearest_neighbours",
    "resolve_normalize",
    "retrieval_accuracy",
]
