"""Exact Euclidean nearest neighbours for the metrics: FAISS when installed, else chunked torch.

Precision/recall, density/coverage, memorization and NDB all reduce to "distance from each query
row to its k nearest reference rows". :func:`knn` answers that with an exact (flat) FAISS index,
on the GPU when the tensors are on CUDA and faiss-gpu is installed, and falls back to an exact
torch search in bounded memory (query chunks) when FAISS is missing or cannot serve the device.

Why not pytorch-metric-learning's ``FaissKNN``: it imports FAISS in a ``try`` and fails later with a
``NameError`` when FAISS is absent, has no torch fallback, and removes self-matches by index only.
The search itself is the same (``IndexFlatL2``; FAISS computes in float32).

Exact distances: a fast search computes ``|x|^2 + |y|^2 - 2 x.y`` in float32, whose round-off is
relative to the squared norms. The metrics compare distances with radii, so near-ties decide
results (identical sets are all ties). :func:`knn` therefore re-ranks a few extra candidates by
their *exact* float64 distance ``sum((x - y)^2)`` and returns those, and
:func:`refine_squared_distances` recomputes exactly the entries of a fast distance block that lie
within round-off of a threshold. Every decision is then made on float64 differences of the inputs.
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import numpy as np
import torch

from .._checks import check_embeddings, check_same_dim

Backend = Literal["auto", "faiss", "torch"]
BACKENDS: tuple[str, ...] = ("auto", "faiss", "torch")

# Elements of one (query chunk x reference) distance block in the torch search: 2**24 floats is
# 64 MiB in float32, small enough for any GPU and for a shared CPU machine.
DEFAULT_BLOCK_ELEMENTS = 1 << 24
# FAISS GPU flat-index k-selection limit (faiss/gpu/utils/DeviceDefs.cuh).
_FAISS_GPU_MAX_K = 2048


def faiss_available() -> bool:
    """Whether the ``faiss`` module can be imported (faiss-cpu or faiss-gpu)."""
    return importlib.util.find_spec("faiss") is not None


def _faiss_gpu_available() -> bool:
    if not faiss_available():
        return False
    import faiss

    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(len(x), len(y))`` squared Euclidean distances, ``|x|^2 + |y|^2 - 2 x.y`` clamped at 0.

    Computed in the inputs' dtype promoted to at least float32 (one matrix product: fast, and
    accurate to float rounding relative to the squared norms).
    """
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
    x, y = x.to(dtype), y.to(dtype)
    d2 = (x * x).sum(1, keepdim=True) + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
    return d2.clamp_min_(0)


# Relative round-off of the fast squared distances, in units of |x|^2 + |y|^2, by compute dtype;
# generous: entries within it of a threshold are recomputed exactly.
_REL_TOLERANCE = {
    torch.float16: 1e-2,
    torch.bfloat16: 1e-1,
    torch.float32: 1e-4,
    torch.float64: 1e-12,
}
# Extra candidates re-ranked by exact distance after a fast search.
_EXTRA_CANDIDATES = 2


def exact_squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Row-matched exact squared distances ``sum((x - y)^2)`` in float64: (..., D) -> (...).

    Always reduced as one (rows, D) matrix, so a pair gets bit-identical results whichever batch
    shape it is computed in (ties between radii and memberships stay ties).
    """
    shape = torch.broadcast_shapes(x.shape, y.shape)
    x = x.to(torch.float64).expand(shape).reshape(-1, shape[-1])
    y = y.to(torch.float64).expand(shape).reshape(-1, shape[-1])
    diff = x - y
    return (diff * diff).sum(-1).reshape(shape[:-1])


def refine_squared_distances(
    block: torch.Tensor,
    query: torch.Tensor,
    reference: torch.Tensor,
    threshold: torch.Tensor,
) -> torch.Tensor:
    """float64 copy of a fast (n, m) squared-distance ``block`` with the entries that lie within
    round-off of ``threshold`` (broadcastable to (n, m), float64) recomputed exactly."""
    rel = _REL_TOLERANCE.get(block.dtype, 1e-4)
    norms_q = (query.to(block.dtype) ** 2).sum(1)
    norms_r = (reference.to(block.dtype) ** 2).sum(1)
    tolerance = rel * (norms_q[:, None] + norms_r[None, :]).to(torch.float64) + 1e-30
    out = block.to(torch.float64)
    rows, cols = torch.nonzero((out - threshold).abs() <= tolerance, as_tuple=True)
    if rows.numel():
        out[rows, cols] = exact_squared_distances(query[rows], reference[cols])
    return out


def chunk_rows(num_columns: int, block_elements: int = DEFAULT_BLOCK_ELEMENTS) -> int:
    """Rows per chunk so that a ``(rows, num_columns)`` block holds about ``block_elements``."""
    return max(1, block_elements // max(1, num_columns))


def _check_pair(query: torch.Tensor, reference: torch.Tensor) -> None:
    check_embeddings("query", query)
    check_embeddings("reference", reference)
    check_same_dim("query", query, "reference", reference)


def _resolve_backend(backend: str, device: torch.device, k: int) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}.")
    if backend == "torch":
        return "torch"
    if not faiss_available():
        if backend == "faiss":
            raise ModuleNotFoundError(
                "backend='faiss' needs FAISS, which is not installed. Install it with"
                " `pip install faiss-cpu` (or faiss-gpu on CUDA machines), or use backend='torch'."
            )
        return "torch"
    if device.type == "cuda":
        if _faiss_gpu_available() and k <= _FAISS_GPU_MAX_K:
            return "faiss"
        # an exact torch search on the GPU beats copying both sets to a CPU index
        return "faiss" if backend == "faiss" else "torch"
    return "faiss"


def _faiss_search(query: torch.Tensor, reference: torch.Tensor, k: int):
    import faiss

    ref = np.ascontiguousarray(reference.detach().float().cpu().numpy())
    qry = np.ascontiguousarray(query.detach().float().cpu().numpy())
    index = faiss.IndexFlatL2(ref.shape[1])
    if query.is_cuda and _faiss_gpu_available() and k <= _FAISS_GPU_MAX_K:
        resources = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(resources, query.device.index or 0, index)
    index.add(ref)
    d2, idx = index.search(qry, k)
    d2 = torch.from_numpy(d2).to(query.device)
    idx = torch.from_numpy(idx).to(device=query.device, dtype=torch.long)
    return d2.clamp_min_(0), idx


def _torch_search(query: torch.Tensor, reference: torch.Tensor, k: int, block_elements: int):
    rows = chunk_rows(reference.shape[0], block_elements)
    d2_parts, idx_parts = [], []
    for start in range(0, query.shape[0], rows):
        block = squared_distances(query[start : start + rows], reference)
        d2, idx = torch.topk(block, k, dim=1, largest=False, sorted=True)
        d2_parts.append(d2)
        idx_parts.append(idx)
    return torch.cat(d2_parts), torch.cat(idx_parts)


def _exact_candidates(query, reference, idx, block_elements: int) -> torch.Tensor:
    """(N, c) exact float64 squared distances of each query row to its candidate rows."""
    rows = chunk_rows(idx.shape[1] * query.shape[1], block_elements)
    parts = [
        exact_squared_distances(query[s : s + rows, None, :], reference[idx[s : s + rows]])
        for s in range(0, query.shape[0], rows)
    ]
    return torch.cat(parts)


def _drop_self(d2: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Remove each row's own index from its results (its last entry when self is absent).

    Self can be absent, or not first, when duplicates tie with it at distance 0: distances stay
    right either way, and indices never point at the query itself.
    """
    rows = torch.arange(idx.shape[0], device=idx.device)[:, None]
    is_self = idx == rows
    missing = ~is_self.any(dim=1)
    is_self[missing, -1] = True
    keep = ~is_self
    k = idx.shape[1] - 1
    return d2[keep].view(-1, k), idx[keep].view(-1, k)


@torch.no_grad()
def knn_squared(
    query: torch.Tensor,
    reference: torch.Tensor | None = None,
    k: int = 1,
    *,
    exclude_self: bool = False,
    backend: Backend = "auto",
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Like :func:`knn`, with exact *squared* distances (compare these with squared radii: a
    square root and a square do not round-trip exactly).

    The ``k`` nearest ``reference`` rows of every ``query`` row, in Euclidean distance.

    Args:
        query: (N, D) features.
        reference: (M, D) features; ``None`` searches ``query`` within itself.
        k: neighbours per query (1 <= k <= M, or M - 1 with ``exclude_self``).
        exclude_self: the query set *is* the reference set (same rows, same order): a row is not
            its own neighbour (duplicates of it still are, at distance 0).
        backend: ``"auto"`` (FAISS when installed and usable on the tensors' device, else torch),
            ``"faiss"`` or ``"torch"`` (exact, chunked).
        block_elements: memory bound of the torch search (elements of one distance block).

    Returns:
        ``(distances, indices)``, both (N, k): ascending exact Euclidean distances (float64; the
        search itself is float32, ranks are refined among ``k + 2`` candidates), on ``query``'s
        device.
    """
    if reference is None:
        reference = query
    _check_pair(query, reference)
    if exclude_self and reference.shape[0] != query.shape[0]:
        raise ValueError(
            "exclude_self=True needs the query set to be the reference set; got"
            f" {query.shape[0]} query and {reference.shape[0]} reference rows. Pass reference=None."
        )
    available = reference.shape[0] - int(exclude_self)
    if not isinstance(k, int) or not 1 <= k <= available:
        raise ValueError(
            f"k must be an int in [1, {available}] (reference rows"
            f"{' minus self' if exclude_self else ''}); got k={k!r}. Use a smaller k or more"
            " samples."
        )
    kk = k + int(exclude_self)
    candidates = min(kk + _EXTRA_CANDIDATES, reference.shape[0])
    chosen = _resolve_backend(backend, query.device, candidates)
    if chosen == "faiss":
        _, idx = _faiss_search(query, reference, candidates)
    else:
        _, idx = _torch_search(query, reference, candidates, block_elements)
    d2 = _exact_candidates(query, reference, idx, block_elements)
    d2, order = torch.sort(d2, dim=1, stable=True)
    idx = idx.gather(1, order)
    if exclude_self:
        d2, idx = _drop_self(d2, idx)
    return d2[:, :k], idx[:, :k]


@torch.no_grad()
def knn(
    query: torch.Tensor,
    reference: torch.Tensor | None = None,
    k: int = 1,
    *,
    exclude_self: bool = False,
    backend: Backend = "auto",
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest ``reference`` rows of every ``query`` row: ``(distances, indices)``.

    See :func:`knn_squared` for the arguments; distances here are Euclidean (square-rooted).
    """
    d2, idx = knn_squared(
        query,
        reference,
        k,
        exclude_self=exclude_self,
        backend=backend,
        block_elements=block_elements,
    )
    return d2.sqrt(), idx


def kth_neighbour_squared_distance(
    features: torch.Tensor, k: int, *, backend: Backend = "auto"
) -> torch.Tensor:
    """(N,) exact float64 squared distance from each row to its k-th nearest *other* row."""
    d2, _ = knn_squared(features, None, k, exclude_self=True, backend=backend)
    return d2[:, -1]


def kth_neighbour_distance(
    features: torch.Tensor, k: int, *, backend: Backend = "auto"
) -> torch.Tensor:
    """(N,) distance from each row to its k-th nearest *other* row (the k-NN ball radius)."""
    distances, _ = knn(features, None, k, exclude_self=True, backend=backend)
    return distances[:, -1]


__all__ = [
    "BACKENDS",
    "exact_squared_distances",
    "refine_squared_distances",
    "faiss_available",
    "kth_neighbour_distance",
    "kth_neighbour_squared_distance",
    "knn",
    "knn_squared",
    "squared_distances",
]
