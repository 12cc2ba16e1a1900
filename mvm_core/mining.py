"""Hard-negative mining for the metric network with FAISS and a memory bank of generated embeddings.

MvM's metric network learns from *hard negatives*: generated samples whose embeddings lie close to
real ones. Mining them only inside the batch bounds how hard they can be; a memory bank of recent
generated embeddings, searched with FAISS, gives much harder ones at little cost.

:class:`FaissHardNegativeMiner` is a pytorch-metric-learning ``BaseMiner``: for every real anchor
(label :data:`~mvm_core.metric.REAL`) it returns the ``k`` nearest generated embeddings (label
:data:`~mvm_core.metric.FAKE`) as negatives, from the reference set (the batch), the memory bank or
both, each paired with a real positive (random or hardest). The output is bounded: at most ``k``
triplets per anchor, and at most ``max_triplets`` in all when given.

:class:`FakeEmbeddingBank` is the memory: a fixed-size ring buffer of detached generated embeddings
with the step at which each was embedded, kept on the embeddings' device, with a policy for stale
entries (``"drop"`` entries older than ``max_age`` steps, the default with ``max_age=100``, or
``"reembed"`` them with the current metric network).

Bank negatives are not in the batch, so a loss can only see them as ``ref_emb``: call
:meth:`FaissHardNegativeMiner.mine_with_reference`, which returns the tuples together with the
reference set they index (the batch plus the bank rows actually used, never the whole bank), and
pass both to any pml loss. :class:`~mvm_core.metric.MetricObjective` does this and fills the bank
with each step's generated embeddings after mining. Under DDP (``docs/distributed.md``) the trainer
passes the embeddings of the whole global batch, gathered from all ranks: every rank mines the same
tuples on its own device and keeps an identical bank.

Search:

* the index follows the pml distance: inner product for ``DotProductSimilarity`` and
  ``CosineSimilarity`` (on L2-normalized vectors for the latter), L2 for ``LpDistance(p=2)`` (on
  normalized vectors when the distance normalizes). FAISS ranks by *squared* L2; the distances the
  miner compares and reports are recomputed with the pml distance on the selected pairs. Other pml
  distances are searched with the chunked torch search, which calls the distance itself;
* ``index="flat"`` (default) is exact; ``"ivf"`` and ``"hnsw"`` are approximate indexes over the
  bank, kept in sync incrementally; ``"auto"`` switches from exact to IVF above
  ``approximate_above`` bank rows. See ``docs/mining.md`` for the measured recall/speed trade-off;
* on CUDA tensors, exact search uses FAISS's GPU brute force (``faiss.knn_gpu``) on the tensors'
  own GPU (the local rank's under DDP) when faiss-gpu is installed, and the chunked torch search
  on that GPU otherwise. Approximate indexes live on the CPU: FAISS GPU indexes ignore the ID
  selectors the bank needs to hide overwritten and stale rows (faiss issues #3114, #3924);
* without FAISS, a chunked torch search gives the same results as the exact FAISS search and never
  materializes a full ``n x N`` distance matrix. FAISS is imported lazily; asking for a FAISS-only
  feature without it fails at construction with the install command.

pml's ``utils.inference.FaissKNN`` is not used for the per-step search: it copies the reference
set into a new index on every call, moves CUDA tensors to the host and back, and takes no search
parameters (ID selectors, ``nprobe``); ``faiss.knn`` searches the bank's memory without a copy.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_metric_learning.distances import (
    BaseDistance,
    CosineSimilarity,
    DotProductSimilarity,
    LpDistance,
)
from pytorch_metric_learning.miners import BaseMiner
from pytorch_metric_learning.utils import common_functions as c_f

from .matching import rowwise_distances, squared_euclidean
from .metric import FAKE, REAL

Source = Literal["batch", "bank", "both"]
IndexKind = Literal["flat", "ivf", "hnsw", "auto"]
PositiveSelection = Literal["random", "hardest"]
StalePolicy = Literal["drop", "reembed"]
Backend = Literal["auto", "faiss", "torch"]

FAISS_INSTALL = ('pip install faiss-cpu (or faiss-gpu on a CUDA machine; with mvm-core: '
                 'pip install "mvm-core[faiss]" or "mvm-core[faiss-gpu]")')
DEFAULT_CHUNK_ELEMENTS = 1 << 22  # 4M distances (16 MiB in float32) per block in the torch search


# ------------------------------------------------------------------------------------------------
# FAISS, imported lazily


def faiss_available() -> bool:
    """Whether FAISS can be imported."""
    try:
        _import_faiss()
    except ImportError:
        return False
    return True


def _import_faiss():
    import faiss

    return faiss


def require_faiss(feature: str):
    """Import FAISS or fail with the install command, naming the feature that needs it."""
    try:
        return _import_faiss()
    except ImportError as err:
        raise ImportError(
            f"{feature} needs FAISS, which is not installed. Install it with {FAISS_INSTALL},"
            " or use the exact torch search (index='flat', backend='torch')."
        ) from err


_GPU_RESOURCES: dict[int, Any] = {}


def _faiss_gpu_ok(faiss, device: torch.device) -> bool:
    return (
        device.type == "cuda"
        and hasattr(faiss, "StandardGpuResources")
        and faiss.get_num_gpus() > 0
    )


def _gpu_resources(faiss, device_index: int):
    """One ``StandardGpuResources`` per GPU, created on first use (it reserves scratch memory)."""
    if device_index not in _GPU_RESOURCES:
        _GPU_RESOURCES[device_index] = faiss.StandardGpuResources()
    return _GPU_RESOURCES[device_index]


@contextlib.contextmanager
def _blas_kernels(faiss):
    """Make FAISS's brute-force k-NN use its BLAS kernel for any number of queries.

    FAISS switches to BLAS only when ``n_queries * d >= distance_compute_blas_threshold``
    (128,000 in FAISS 1.15: 1,000 queries at d = 128); below it, a per-pair SIMD loop is up to 10x
    slower against a large bank (measured: 256 queries x 10^5 rows x d 128, one thread: 4.0 s
    vs 0.33 s). Mining batches are often smaller than the threshold, so it is lowered for the
    call and restored after (a process-wide FAISS setting: a concurrent FAISS call in another
    thread may take the BLAS path too, which changes its speed, not its results).
    """
    cvar = getattr(faiss, "cvar", None)
    if cvar is None or not hasattr(cvar, "distance_compute_blas_threshold"):
        yield
        return
    saved = cvar.distance_compute_blas_threshold
    cvar.distance_compute_blas_threshold = 0
    try:
        yield
    finally:
        cvar.distance_compute_blas_threshold = saved


def faiss_metric(distance: BaseDistance) -> tuple[str, bool] | None:
    """``(metric, normalize)`` of the FAISS search that ranks like ``distance``, or None.

    ``metric`` is ``"l2"`` (FAISS squared L2: same order as any positive power of the L2 distance)
    or ``"ip"`` (inner product); ``normalize`` says whether vectors are L2-normalized first.
    """
    normalize = bool(distance.normalize_embeddings)
    if type(distance) is LpDistance and distance.p == 2 and distance.power > 0:
        return "l2", normalize
    if type(distance) in (DotProductSimilarity, CosineSimilarity) and distance.power == 1:
        if normalize and distance.p != 2:
            return None  # normalized with another norm: no FAISS equivalent
        return "ip", normalize
    return None


def _as_faiss_array(x: torch.Tensor, normalize: bool) -> np.ndarray:
    """Contiguous float32 CPU array, L2-normalized rows if asked (no copy when already fine)."""
    x = x.detach()
    if normalize:
        x = F.normalize(x.float(), dim=1)
    return np.ascontiguousarray(x.to("cpu", torch.float32).numpy())


# ------------------------------------------------------------------------------------------------
# exact search without FAISS


def _cost(distance: BaseDistance, values: torch.Tensor) -> torch.Tensor:
    """Lower-is-nearer cost from pml distance values (similarities are negated)."""
    return -values if distance.is_inverted else values


@torch.no_grad()
def chunked_knn(
    query: torch.Tensor,
    base: torch.Tensor,
    k: int,
    distance: BaseDistance | None = None,
    *,
    farthest: bool = False,
    exclude: torch.Tensor | None = None,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest (or farthest) rows of ``base`` for each row of ``query``, block by block.

    Distances come from the pml ``distance`` (default squared Euclidean), computed on blocks of at
    most ``chunk_elements`` query x base pairs, keeping a running top-k: memory is
    ``O(chunk_elements + len(query) * k)``, never ``len(query) x len(base)``.

    Args:
        query: (n, d) queries.
        base: (N, d) candidates.
        k: neighbours per query; ``min(k, N)`` are returned.
        farthest: return the k farthest instead (hardest positives).
        exclude: optional (n,) long tensor: base row never returned for each query (-1: none);
            e.g. the query itself when ``base`` contains the queries.
    Returns:
        ``(values, indices)``, both (n, min(k, N)): the pml distance values, sorted nearest first
        (farthest first with ``farthest=True``), and the base row indices. Rows with fewer valid
        candidates than k (because of ``exclude``) end with index -1 and value ``nan``.
    """
    distance = squared_euclidean() if distance is None else distance
    n, N = query.shape[0], base.shape[0]
    k = min(k, N)
    device = query.device
    values = torch.full((n, k), float("nan"), dtype=query.dtype, device=device)
    indices = torch.full((n, k), -1, dtype=torch.long, device=device)
    if n == 0 or k == 0:
        return values, indices
    # "largest" in pml units: nearest = largest similarity; farthest = largest distance
    largest = distance.is_inverted != farthest
    worst = float("-inf") if largest else float("inf")
    q_chunk = max(1, min(n, chunk_elements // max(1, min(N, 4096))))
    b_chunk = max(k, chunk_elements // q_chunk)
    for qs in range(0, n, q_chunk):
        q = query[qs : qs + q_chunk]
        best_v = torch.full((q.shape[0], k), worst, dtype=query.dtype, device=device)
        best_i = torch.full((q.shape[0], k), -1, dtype=torch.long, device=device)
        ex = None if exclude is None else exclude[qs : qs + q_chunk]
        for bs in range(0, N, b_chunk):
            block = distance(q, base[bs : bs + b_chunk]).to(query.dtype)
            if ex is not None:
                rows = torch.nonzero((ex >= bs) & (ex < bs + block.shape[1]), as_tuple=True)[0]
                block[rows, ex[rows] - bs] = worst
            kb = min(k, block.shape[1])
            v, i = block.topk(kb, dim=1, largest=largest)
            all_v = torch.cat([best_v, v], dim=1)
            all_i = torch.cat([best_i, i + bs], dim=1)
            top = all_v.topk(k, dim=1, largest=largest)
            best_v, best_i = top.values, all_i.gather(1, top.indices)
        missing = best_v == worst
        best_i[missing] = -1
        best_v[missing] = float("nan")
        values[qs : qs + q_chunk], indices[qs : qs + q_chunk] = best_v, best_i
    return values, indices


# ------------------------------------------------------------------------------------------------
# the memory bank


class FakeEmbeddingBank(torch.nn.Module):
    """Fixed-size ring buffer of detached generated embeddings and the step each was embedded at.

    ``enqueue`` writes over the oldest rows once the bank is full. The bank lives on the device of
    the embeddings it receives (allocated on the first ``enqueue``, moved if a later one comes from
    another device); rows are stored in float32 (float64 stays float64).

    Steps: ``bank.step`` is the current training step. ``enqueue(emb)`` stamps the rows with it and
    advances it by one, so mining at the next step sees them with age 1; pass ``step=`` to
    ``enqueue`` (or call :meth:`set_step`) when the trainer counts steps itself.

    Stale entries: an entry embedded ``age = bank.step - entry_step`` steps ago is *stale* when
    ``age > max_age``. With ``stale="drop"`` (default, ``max_age=100``) stale entries are never
    searched; with ``stale="reembed"`` they are embedded again by ``reembed_fn`` (the current
    metric network) from the stored samples before each search, which keeps every entry usable at
    the cost of one no-grad forward pass per stale sample. ``max_age=None`` keeps entries until
    they are overwritten (their age is then bounded by ``capacity / batch`` steps). The default is
    a short window because the metric network is trained against the generator: embeddings of old
    steps drift (XBM, Wang et al. CVPR 2020, relies on a slow drift that an adversarial metric need
    not have).

    The buffers are not part of the ``state_dict``: the bank is a cache that refills in
    ``capacity / batch`` steps.

    Args:
        capacity: number of rows.
        max_age: steps after which an entry is stale (None: never).
        stale: ``"drop"`` or ``"reembed"``.
        reembed_fn: callable ``samples (m, ...) -> embeddings (m, d)``, required by
            ``stale="reembed"`` before the first stale entry appears (can be set later:
            ``bank.reembed_fn = metric_net``); called under ``torch.no_grad()``.
        reembed_batch_size: samples per ``reembed_fn`` call.
    """

    def __init__(
        self,
        capacity: int,
        max_age: int | None = 100,
        stale: StalePolicy = "drop",
        reembed_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        reembed_batch_size: int = 1024,
    ):
        super().__init__()
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(
                f"capacity must be a positive int (rows in the bank); got {capacity!r}."
            )
        if max_age is not None and (not isinstance(max_age, int) or max_age < 1):
            raise ValueError(
                f"max_age must be a positive int (steps) or None (never stale); got {max_age!r}."
            )
        if stale not in ("drop", "reembed"):
            raise ValueError(f"stale must be 'drop' or 'reembed'; got {stale!r}.")
        if stale == "reembed" and max_age is None:
            raise ValueError(
                "stale='reembed' needs max_age (the age at which entries are embedded again); got"
                " max_age=None. Pass e.g. max_age=100."
            )
        if reembed_batch_size < 1:
            raise ValueError(f"reembed_batch_size must be >= 1; got {reembed_batch_size}.")
        self.capacity = capacity
        self.max_age = max_age
        self.stale = stale
        self.reembed_fn = reembed_fn
        self.reembed_batch_size = reembed_batch_size
        self.step = 0
        self.generation = 0  # bumped when the storage is re-created (reset, new dim/device)
        # an empty buffer that follows .to(): where a bank restored from a checkpoint lives
        self.register_buffer("_device_anchor", torch.empty(0), persistent=False)
        self.reset()

    _STATE = ("embeddings", "steps", "seqs", "samples")

    def get_extra_state(self) -> dict:
        """The bank's rows and counters, saved with the module's ``state_dict`` (exact resume)."""
        state = {k: getattr(self, k) for k in self._STATE if getattr(self, k) is not None}
        state.update(step=self.step, head=self.head, size=self.size, written=self.written)
        return state

    def set_extra_state(self, state: dict) -> None:
        """Restore :meth:`get_extra_state`'s rows on this bank's device; an approximate index
        over the bank is rebuilt from them (``generation`` changes)."""
        self.reset()
        device = self._device_anchor.device
        for k in self._STATE:
            if state.get(k) is not None:
                setattr(self, k, state[k].to(device))
        if self.embeddings is not None and len(self.embeddings) != self.capacity:
            raise ValueError(f"the saved bank holds {len(self.embeddings)} rows; this one has"
                             f" capacity {self.capacity}. Resume with the same bank size.")
        self.step, self.head = int(state["step"]), int(state["head"])
        self.size, self.written = int(state["size"]), int(state["written"])

    def reset(self) -> None:
        """Empty the bank (keeps ``step``)."""
        self.register_buffer("embeddings", None, persistent=False)
        self.register_buffer("steps", None, persistent=False)
        self.register_buffer("seqs", None, persistent=False)
        self.register_buffer("samples", None, persistent=False)
        self.head = 0  # next row to write
        self.size = 0  # rows filled
        self.written = 0  # rows written so far (enqueued + re-embedded): write sequence numbers
        self.generation += 1

    def __len__(self) -> int:
        return self.size

    @property
    def device(self) -> torch.device | None:
        return None if self.embeddings is None else self.embeddings.device

    def extra_repr(self) -> str:
        return (
            f"capacity={self.capacity}, size={self.size}, step={self.step},"
            f" max_age={self.max_age}, stale={self.stale!r}"
        )

    def set_step(self, step: int) -> None:
        """Set the current step (ages are measured from it); steps never go back."""
        step = int(step)
        if self.steps is not None and self.size and step < int(self.steps[: self.size].max()):
            raise ValueError(
                f"step={step} is before entries already in the bank (latest"
                f" {int(self.steps[: self.size].max())}); steps must not decrease. Call"
                " bank.reset() when restarting the step count."
            )
        self.step = step

    @torch.no_grad()
    def enqueue(
        self, embeddings: torch.Tensor, step: int | None = None, samples: torch.Tensor | None = None
    ) -> None:
        """Store (detached) ``embeddings`` (B, d) stamped with ``step`` (default ``self.step``).

        ``samples`` (B, ...) are the generated samples, kept for ``stale="reembed"`` (required
        then). Advances ``self.step`` to ``step + 1``. Keeps the last ``capacity`` rows when
        ``B > capacity``.
        """
        if not isinstance(embeddings, torch.Tensor) or embeddings.ndim != 2:
            raise ValueError(
                "embeddings must be a (B, d) tensor of generated embeddings; got"
                f" {getattr(embeddings, 'shape', type(embeddings).__name__)}."
            )
        if not torch.is_floating_point(embeddings):
            raise TypeError(f"embeddings must be floating point; got dtype {embeddings.dtype}.")
        if self.stale == "reembed":
            if samples is None:
                raise ValueError(
                    "this bank re-embeds stale entries (stale='reembed') and needs the generated"
                    " samples: pass enqueue(emb, samples=fake) (MetricObjective: fake_samples=)."
                )
            if samples.shape[0] != embeddings.shape[0]:
                raise ValueError(
                    f"samples must have one row per embedding; got {samples.shape[0]} samples for"
                    f" {embeddings.shape[0]} embeddings."
                )
        if step is not None:
            self.set_step(step)
        n, d = embeddings.shape
        if n == 0:
            self.step += 1
            return
        self._allocate(embeddings, samples)
        if n > self.capacity:
            embeddings = embeddings[-self.capacity :]
            samples = None if samples is None else samples[-self.capacity :]
            n = self.capacity
        rows = (self.head + torch.arange(n, device=self.embeddings.device)) % self.capacity
        self.embeddings[rows] = embeddings.detach().to(self.embeddings)
        self.steps[rows] = self.step
        self.seqs[rows] = self.written + torch.arange(n, device=rows.device)
        if self.samples is not None:
            self.samples[rows] = samples.detach().to(self.samples)
        self.written += n
        self.head = (self.head + n) % self.capacity
        self.size = min(self.capacity, self.size + n)
        self.step += 1

    def _allocate(self, embeddings: torch.Tensor, samples: torch.Tensor | None) -> None:
        d = embeddings.shape[1]
        dtype = torch.float64 if embeddings.dtype == torch.float64 else torch.float32
        if self.embeddings is not None:
            if self.embeddings.shape[1] != d:
                raise ValueError(
                    f"embeddings have size {d} but the bank holds size {self.embeddings.shape[1]};"
                    " call bank.reset() when the metric network's output size changes."
                )
            if self.embeddings.device != embeddings.device:
                self.to(embeddings.device)  # same rows: an approximate index stays valid
            return
        device = embeddings.device
        self.embeddings = torch.zeros(self.capacity, d, dtype=dtype, device=device)
        self.steps = torch.full((self.capacity,), -1, dtype=torch.long, device=device)
        self.seqs = torch.full((self.capacity,), -1, dtype=torch.long, device=device)
        if self.stale == "reembed":
            self.samples = torch.zeros(
                (self.capacity, *samples.shape[1:]), dtype=samples.dtype, device=device
            )
        self.generation += 1

    def ages(self) -> torch.Tensor:
        """(size,) age in steps of the filled rows (``step - entry_step``)."""
        if self.steps is None:
            return torch.empty(0, dtype=torch.long)
        return self.step - self.steps[: self.size]

    def valid_mask(self) -> torch.Tensor:
        """(capacity,) bool: filled rows that are not stale (the rows a search may return)."""
        if self.steps is None:
            return torch.zeros(self.capacity, dtype=torch.bool)
        valid = self.seqs >= 0
        if self.max_age is not None:
            valid &= (self.step - self.steps) <= self.max_age
        return valid

    @torch.no_grad()
    def refresh(self) -> int:
        """Re-embed stale entries with ``reembed_fn`` (``stale="reembed"``); returns how many."""
        if self.stale != "reembed" or self.steps is None:
            return 0
        stale = torch.nonzero((self.seqs >= 0) & ((self.step - self.steps) > self.max_age))[:, 0]
        if len(stale) == 0:
            return 0
        if self.reembed_fn is None:
            raise RuntimeError(
                f"{len(stale)} bank entries are older than max_age={self.max_age} steps and the"
                " bank re-embeds them (stale='reembed'), but reembed_fn is not set. Set"
                " bank.reembed_fn = metric_net (a callable samples -> embeddings)."
            )
        for s in range(0, len(stale), self.reembed_batch_size):
            rows = stale[s : s + self.reembed_batch_size]
            emb = self.reembed_fn(self.samples[rows])
            if not isinstance(emb, torch.Tensor) or emb.shape != (
                len(rows),
                self.embeddings.shape[1],
            ):
                raise ValueError(
                    f"reembed_fn must return a ({len(rows)}, {self.embeddings.shape[1]}) tensor;"
                    f" got {getattr(emb, 'shape', type(emb).__name__)}."
                )
            self.embeddings[rows] = emb.detach().to(self.embeddings)
            self.steps[rows] = self.step
            self.seqs[rows] = self.written + torch.arange(len(rows), device=rows.device)
            self.written += len(rows)
        return len(stale)


# ------------------------------------------------------------------------------------------------
# approximate index over the bank


class _ApproximateBankIndex:
    """An IVF or HNSW index mirroring the bank, updated incrementally (CPU, FAISS).

    The index is append-only: rows written since the last sync are added with fresh internal ids
    (``seq`` numbers tell which), and rows overwritten, re-embedded or stale are hidden at search
    time by an ID-selector bitmap of the live ids. It is rebuilt from the live rows (IVF: its
    coarse quantizer retrained on them, which follows the metric network's drift) when dead ids
    reach ``rebuild_factor - 1`` times the live ones (the bank has turned over once by default),
    when the live rows have doubled since the last build (so IVF's ``nlist`` grows with the bank),
    or when the bank was reset.
    """

    def __init__(
        self,
        kind: str,
        metric: str,
        normalize: bool,
        nlist: int | None,
        hnsw_m: int,
        ef_construction: int,
        rebuild_factor: float,
        seed: int,
    ):
        self.faiss = require_faiss(f"index={kind!r}")
        self.kind, self.metric, self.normalize = kind, metric, normalize
        self.nlist = nlist
        self.hnsw_m, self.ef_construction = hnsw_m, ef_construction
        self.rebuild_factor = rebuild_factor
        self.seed = seed
        self.index = None
        self.builds = 0
        self.last_build_seconds = 0.0

    def _faiss_metric(self):
        f = self.faiss
        return f.METRIC_L2 if self.metric == "l2" else f.METRIC_INNER_PRODUCT

    def auto_nlist(self, n: int) -> int:
        """``4 sqrt(n)`` lists (FAISS guideline), at least 39 training points per list."""
        return max(1, min(int(4 * math.sqrt(n)), n // 39))

    def _build(self, bank: FakeEmbeddingBank, live_slots: torch.Tensor) -> bool:
        faiss = self.faiss
        start = time.perf_counter()
        n = len(live_slots)
        nlist = self.nlist or self.auto_nlist(n)
        if self.kind == "ivf" and n < 39 * nlist:
            self.index = None  # too few rows to train: the miner searches exactly meanwhile
            return False
        data = _as_faiss_array(bank.embeddings[live_slots.to(bank.device)], self.normalize)
        d = data.shape[1]
        if self.kind == "ivf":
            quantizer = (faiss.IndexFlatL2 if self.metric == "l2" else faiss.IndexFlatIP)(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, self._faiss_metric())
            index.cp.seed = self.seed
            n_train = min(n, 64 * nlist)
            pick = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))[:n_train]
            index.train(np.ascontiguousarray(data[pick.numpy()]))
            self._quantizer = quantizer  # the IVF index points to it: keep it alive
        else:
            index = faiss.IndexHNSWFlat(d, self.hnsw_m, self._faiss_metric())
            index.hnsw.efConstruction = self.ef_construction
        index.add(data)
        self.index = index
        self.slot_of_id = live_slots.cpu().numpy().astype(np.int64)
        self.id_of_slot = np.full(bank.capacity, -1, dtype=np.int64)
        self.id_of_slot[self.slot_of_id] = np.arange(n, dtype=np.int64)
        self.n_built = n
        self.synced = bank.written
        self.generation = bank.generation
        self.builds += 1
        self.last_build_seconds = time.perf_counter() - start
        return True

    def _sync(self, bank: FakeEmbeddingBank, live_slots: torch.Tensor) -> bool:
        """Bring the index up to date with the bank; False when it cannot be built yet."""
        n_live = len(live_slots)
        if self.index is None or self.generation != bank.generation or n_live >= 2 * self.n_built:
            return self._build(bank, live_slots)
        seqs = bank.seqs[live_slots.to(bank.device)].cpu()
        new_slots = live_slots[seqs >= self.synced]
        if self.index.ntotal + len(new_slots) > self.rebuild_factor * max(n_live, 1):
            return self._build(bank, live_slots)
        if len(new_slots):
            self.index.add(
                _as_faiss_array(bank.embeddings[new_slots.to(bank.device)], self.normalize)
            )
            first = len(self.slot_of_id)
            new_ids = np.arange(first, first + len(new_slots), dtype=np.int64)
            self.slot_of_id = np.concatenate([self.slot_of_id, new_slots.numpy()])
            self.id_of_slot[new_slots.numpy()] = new_ids
        self.synced = bank.written
        return True

    def search(
        self,
        bank: FakeEmbeddingBank,
        live_slots: torch.Tensor,
        query: torch.Tensor,
        k: int,
        nprobe: int,
        ef_search: int,
    ):
        """(n, k) bank rows nearest to ``query`` (-1 where fewer found), or None if not built."""
        faiss = self.faiss
        live_slots = live_slots.cpu()
        if not self._sync(bank, live_slots):
            return None
        live_ids = self.id_of_slot[live_slots.numpy()]
        ntotal = self.index.ntotal
        selector = bitmap = None
        if len(live_ids) < ntotal:
            mask = np.zeros(ntotal, dtype=bool)
            mask[live_ids] = True
            bitmap = np.packbits(mask, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        if self.kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=min(nprobe, self.index.nlist))
        else:
            params = faiss.SearchParametersHNSW(efSearch=max(ef_search, k))
        if selector is not None:
            params.sel = selector
        x = _as_faiss_array(query, self.normalize)
        n = x.shape[0]
        D = np.empty((n, k), dtype=np.float32)
        ids = np.empty((n, k), dtype=np.int64)
        # search_c: the C++ search, whichever Python wrapper (numpy or faiss.contrib.torch_utils)
        # is installed on the class; neither forwards `params` in every FAISS version.
        self.index.search_c(n, faiss.swig_ptr(x), k, faiss.swig_ptr(D), faiss.swig_ptr(ids), params)
        del bitmap, selector  # kept alive until the search returned
        slots = np.where(ids >= 0, self.slot_of_id[np.maximum(ids, 0)], -1)
        return torch.from_numpy(slots)


# ------------------------------------------------------------------------------------------------
# the miner


@runtime_checkable
class ReferenceMiner(Protocol):
    """A miner whose tuples index a reference set it builds (batch + memory), used by
    :class:`~mvm_core.metric.MetricObjective` as
    ``loss(emb, labels, indices, ref_emb, ref_labels)``.
    """

    def mine_with_reference(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        ref_emb=None,
        ref_labels=None,
        step: int | None = None,
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]: ...

    def enqueue(self, fake_emb: torch.Tensor, step: int | None = None, samples=None) -> None: ...


class FaissHardNegativeMiner(BaseMiner):
    """For each real anchor, the ``k`` nearest generated embeddings as negatives (FAISS).

    Triplets ``(a, p, n)``: ``a`` a ``REAL`` row of ``embeddings``; ``n`` one of its ``k`` nearest
    ``FAKE`` rows under the miner's distance, searched in ``source``: ``"batch"`` (the reference
    set given to the miner: the batch itself by default, ``CrossBatchMemory``'s memory when wrapped
    by it), ``"bank"`` (the memory bank) or ``"both"``; ``p`` a ``REAL`` row of the reference set
    other than the anchor, ``"random"`` or ``"hardest"`` (the farthest; the i-th nearest negative
    is paired with the i-th farthest positive, cycling when there are fewer positives than ``k``).
    At most ``k`` triplets per anchor; at most ``max_triplets`` in all (a random subset).

    With a bank, call :meth:`mine_with_reference` (``MetricObjective`` does): the bank rows used
    as negatives are appended to the reference set it returns. The plain pml call
    ``miner(emb, labels[, ref_emb, ref_labels])`` works with ``source="batch"``.

    Args:
        k: negatives per anchor.
        positives: ``"random"`` (the MvM reference) or ``"hardest"``.
        source: where negatives come from (default ``"both"`` with a bank, ``"batch"`` without).
        bank: a :class:`FakeEmbeddingBank`, an int (its capacity, default settings) or None.
        max_triplets: cap on the number of triplets (None: ``k`` per anchor).
        index: ``"flat"`` (exact, default), ``"ivf"``, ``"hnsw"`` or ``"auto"`` (IVF once the bank
            holds ``approximate_above`` live rows): the bank's search structure; the batch is
            always searched exactly.
        approximate_above: bank size at which ``index="auto"`` switches to IVF.
        nlist: IVF lists (None: ``4 sqrt(n)`` for n live rows, recomputed at each rebuild).
        nprobe: IVF lists visited per query (recall/speed knob; see docs/mining.md). Read at
            each search: ``miner.nprobe = 64`` takes effect without a rebuild.
        hnsw_m, ef_construction, ef_search: HNSW graph degree and beam widths (``ef_search``,
            like ``nprobe``, can be changed at any time).
        rebuild_factor: rebuild the approximate index when it holds this many times the live rows.
        backend: ``"auto"`` (FAISS when installed and the distance maps to it, else torch),
            ``"faiss"`` (required: fails at construction without it) or ``"torch"``.
        chunk_elements: block size (distances) of the torch search.
        distance: a pml distance (default squared Euclidean, as the MvM objective).
        seed: seed of the IVF training sample and k-means.
    """

    def __init__(
        self,
        k: int = 8,
        positives: PositiveSelection = "random",
        source: Source | None = None,
        bank: FakeEmbeddingBank | int | None = None,
        max_triplets: int | None = None,
        index: IndexKind = "flat",
        approximate_above: int = 250_000,
        nlist: int | None = None,
        nprobe: int = 32,
        hnsw_m: int = 32,
        ef_construction: int = 64,
        ef_search: int = 64,
        rebuild_factor: float = 2.0,
        backend: Backend = "auto",
        chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
        distance: BaseDistance | None = None,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(distance=squared_euclidean() if distance is None else distance, **kwargs)
        _check_positive_int("k", k, "negatives per anchor")
        if positives not in ("random", "hardest"):
            raise ValueError(f"positives must be 'random' or 'hardest'; got {positives!r}.")
        if isinstance(bank, int) and not isinstance(bank, bool):
            bank = FakeEmbeddingBank(bank)
        elif bank is not None and not isinstance(bank, FakeEmbeddingBank):
            raise TypeError(
                "bank must be a FakeEmbeddingBank, an int (its capacity) or None; got"
                f" {type(bank).__name__}."
            )
        source = source or ("both" if bank is not None else "batch")
        if source not in ("batch", "bank", "both"):
            raise ValueError(f"source must be 'batch', 'bank' or 'both'; got {source!r}.")
        if source != "batch" and bank is None:
            raise ValueError(
                f"source={source!r} draws negatives from a memory bank, but bank is None. Pass"
                " bank=FakeEmbeddingBank(capacity) (or bank=capacity)."
            )
        if max_triplets is not None:
            _check_positive_int("max_triplets", max_triplets, "cap on the number of triplets")
        if index not in ("flat", "ivf", "hnsw", "auto"):
            raise ValueError(f"index must be 'flat', 'ivf', 'hnsw' or 'auto'; got {index!r}.")
        if index != "flat" and bank is None:
            raise ValueError(
                f"index={index!r} is an approximate index over the memory bank, but bank is None;"
                " the batch is always searched exactly. Use index='flat' or pass a bank."
            )
        if backend not in ("auto", "faiss", "torch"):
            raise ValueError(f"backend must be 'auto', 'faiss' or 'torch'; got {backend!r}.")
        for name, value in (
            ("nprobe", nprobe),
            ("hnsw_m", hnsw_m),
            ("ef_construction", ef_construction),
            ("ef_search", ef_search),
            ("approximate_above", approximate_above),
            ("chunk_elements", chunk_elements),
        ):
            _check_positive_int(name, value, "search parameter")
        if nlist is not None:
            _check_positive_int("nlist", nlist, "IVF lists")
        if not rebuild_factor > 1:
            raise ValueError(f"rebuild_factor must be > 1; got {rebuild_factor}.")
        mapped = faiss_metric(self.distance)
        if backend == "faiss" or index != "flat":
            feature = f"index={index!r}" if index != "flat" else "backend='faiss'"
            require_faiss(f"FaissHardNegativeMiner({feature})")
            if mapped is None:
                raise ValueError(
                    f"{feature} needs a distance FAISS can search: LpDistance(p=2),"
                    f" DotProductSimilarity or CosineSimilarity; got {type(self.distance).__name__}"
                    f"(p={self.distance.p}, power={self.distance.power}). Use index='flat' with"
                    " backend='torch', which searches any pml distance."
                )
            if backend == "torch":
                raise ValueError(
                    f"index={index!r} is a FAISS index; backend='torch' searches exactly only."
                    " Use backend='auto' or index='flat'."
                )
        use_faiss = backend == "faiss" or (
            backend == "auto" and mapped is not None and faiss_available()
        )
        self.k = k
        self.positives = positives
        self.source = source
        self.bank = bank
        self.max_triplets = max_triplets
        self.index = index
        self.approximate_above = approximate_above
        self.nprobe = nprobe  # read at each search: tune recall/speed without a rebuild
        self.ef_search = ef_search
        self.backend = "faiss" if use_faiss else "torch"
        self.chunk_elements = chunk_elements
        self._metric = mapped
        self._approx = None
        if index != "flat":
            self._approx = _ApproximateBankIndex(
                "hnsw" if index == "hnsw" else "ivf",
                mapped[0],
                mapped[1],
                nlist,
                hnsw_m,
                ef_construction,
                rebuild_factor,
                seed,
            )
        self.add_to_recordable_attributes(
            list_of_names=[
                "num_bank_negatives",
                "mean_negative_distance",
                "mean_positive_distance",
                "approximate_search",
            ],
            is_stat=True,
        )

    def extra_repr(self) -> str:
        return (
            f"k={self.k}, positives={self.positives!r}, source={self.source!r},"
            f" index={self.index!r}, backend={self.backend!r}, max_triplets={self.max_triplets}"
        )

    # -------------------------------------------------------------------- pml / bank entry points

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        if self.source != "batch":
            raise RuntimeError(
                f"this miner takes negatives from its memory bank (source={self.source!r}); bank"
                " rows are not in ref_emb, so the loss must see them as a reference set. Call"
                " `indices, ref_emb, ref_labels = miner.mine_with_reference(emb, labels)` and"
                " `loss(emb, labels, indices, ref_emb, ref_labels)` (MetricObjective does this), or"
                " use source='batch'."
            )
        indices, _ = self._mine(
            embeddings,
            labels,
            ref_emb,
            ref_labels,
            _starts_with(ref_emb, ref_labels, embeddings, labels),
        )
        return indices

    def mine_with_reference(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        ref_emb: torch.Tensor | None = None,
        ref_labels: torch.Tensor | None = None,
        step: int | None = None,
    ) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Mine against the reference set (default: the batch) and the bank.

        Returns ``(indices_tuple, ref_emb_out, ref_labels_out)``: ``ref_emb_out`` is ``ref_emb``
        followed by the bank rows used as negatives (detached, each once), labelled ``FAKE``; the
        triplets index anchors in ``embeddings`` and positives/negatives in ``ref_emb_out``. Pass
        all of it to a pml loss: ``loss(embeddings, labels, *out)`` with ``out`` the return value's
        last two items after ``indices``. ``step`` sets the bank's current step before searching.
        """
        self.reset_stats()
        c_f.check_shapes(embeddings, labels)
        labels = c_f.to_device(labels, embeddings)
        ref_emb, ref_labels = c_f.set_ref_emb(embeddings, labels, ref_emb, ref_labels)
        same = _starts_with(ref_emb, ref_labels, embeddings, labels)
        if self.bank is not None and step is not None:
            self.bank.set_step(step)
        with torch.no_grad():
            indices, bank_rows = self._mine(embeddings, labels, ref_emb, ref_labels, same)
        self.output_assertion(indices)
        if bank_rows is None or len(bank_rows) == 0:
            return indices, ref_emb, ref_labels
        extra = self.bank.embeddings[bank_rows].to(device=ref_emb.device, dtype=ref_emb.dtype)
        extra_labels = torch.full(
            (len(bank_rows),), FAKE, dtype=ref_labels.dtype, device=ref_labels.device
        )
        return indices, torch.cat([ref_emb, extra]), torch.cat([ref_labels, extra_labels])

    def enqueue(
        self, fake_emb: torch.Tensor, step: int | None = None, samples: torch.Tensor | None = None
    ) -> None:
        """Add a step's generated embeddings to the bank (after mining that step); no-op without
        a bank, so callers such as ``MetricObjective`` need not check."""
        if self.bank is not None:
            self.bank.enqueue(fake_emb, step=step, samples=samples)

    # -------------------------------------------------------------------- mining

    def _mine(self, embeddings, labels, ref_emb, ref_labels, same_batch: bool):
        device = embeddings.device
        _check_labels("labels", labels)
        _check_labels("ref_labels", ref_labels)
        empty = torch.empty(0, dtype=torch.long, device=device)
        anchors = torch.nonzero(labels == REAL, as_tuple=True)[0]
        real_ref = torch.nonzero(ref_labels == REAL, as_tuple=True)[0]
        n_pos = len(real_ref) - (1 if same_batch else 0)
        if len(anchors) == 0 or n_pos < 1:
            return (empty, empty, empty), None
        query = embeddings[anchors]

        # candidates per source, nearest first: (reference row or -1, bank row or -1)
        found = []
        if self.source in ("batch", "both"):
            fake_ref = torch.nonzero(ref_labels == FAKE, as_tuple=True)[0]
            if len(fake_ref):
                hit = self._exact_search(query, ref_emb[fake_ref], self.k)
                cand = torch.where(hit >= 0, fake_ref[hit.clamp_min(0)], -1)
                found.append((cand, torch.full_like(cand, -1), ref_emb))
        if self.source in ("bank", "both"):
            rows = self._search_bank(query, self.k)
            if rows is not None:
                rows = rows.to(device)
                found.append((torch.full_like(rows, -1), rows, self.bank.embeddings))
        if not found:
            return (empty, empty, empty), None
        if len(found) == 1:  # already sorted by the search
            ref_idx, bank_idx, _ = found[0]
            k = ref_idx.shape[1]
            valid = (ref_idx >= 0) | (bank_idx >= 0)
        else:  # merge the sources on the pml distance (FAISS and torch searches may differ)
            cost = torch.cat(
                [self._pair_cost(query, base, torch.maximum(r, b)) for r, b, base in found], dim=1
            )
            ref_idx = torch.cat([r for r, _, _ in found], dim=1)
            bank_idx = torch.cat([b for _, b, _ in found], dim=1)
            k = min(self.k, cost.shape[1])
            top = cost.topk(k, dim=1, largest=False)
            valid = torch.isfinite(top.values)
            ref_idx, bank_idx = ref_idx.gather(1, top.indices), bank_idx.gather(1, top.indices)

        # bank rows used, each once, appended after the reference set
        from_bank = (bank_idx >= 0) & valid
        bank_rows = None
        negatives = ref_idx
        if bool(from_bank.any()):
            bank_rows, position = torch.unique(bank_idx[from_bank], return_inverse=True)
            negatives = ref_idx.clone()
            negatives[from_bank] = len(ref_emb) + position

        positives = self._positives(embeddings, anchors, ref_emb, real_ref, same_batch, k)
        a = anchors[:, None].expand(-1, k)[valid]
        p, n = positives[valid], negatives[valid]
        if self.max_triplets is not None and len(a) > self.max_triplets:
            pick = torch.randperm(len(a), device=device)[: self.max_triplets]
            a, p, n = a[pick], p[pick], n[pick]
            if bank_rows is not None:  # drop bank rows no longer used, renumber
                used = torch.zeros(len(bank_rows), dtype=torch.bool, device=device)
                is_bank = n >= len(ref_emb)
                used[n[is_bank] - len(ref_emb)] = True
                renumber = torch.cumsum(used.long(), 0) - 1
                n = torch.where(
                    is_bank, len(ref_emb) + renumber[(n - len(ref_emb)).clamp_min(0)], n
                )
                bank_rows = bank_rows[used]
        self.num_bank_negatives = 0 if bank_rows is None else int((n >= len(ref_emb)).sum())
        if self.collect_stats:
            self._record(embeddings, ref_emb, bank_rows, a, p, n)
        return (a, p, n), bank_rows

    def _positives(self, embeddings, anchors, ref_emb, real_ref, same_batch, k) -> torch.Tensor:
        """(A, k) reference indices of real positives, never the anchor itself."""
        n_anchor = len(anchors)
        n_pos = len(real_ref) - (1 if same_batch else 0)
        device = embeddings.device
        # in the same batch, anchors and real_ref are the same rows: anchor i is real_ref[i]
        own = torch.arange(n_anchor, device=device)
        if self.positives == "random":
            pick = torch.randint(0, n_pos, (n_anchor, k), device=device)
            if same_batch:
                pick += (pick >= own[:, None]).long()
            return real_ref[pick]
        _, far = chunked_knn(
            embeddings[anchors],
            ref_emb[real_ref],
            min(k, n_pos),
            self.distance,
            farthest=True,
            exclude=own if same_batch else None,
            chunk_elements=self.chunk_elements,
        )
        cycle = torch.arange(k, device=device) % far.shape[1]
        return real_ref[far[:, cycle]]

    def _pair_cost(self, query, base, cand) -> torch.Tensor:
        """pml distance of each (query row, candidate) as a lower-is-nearer cost; inf if none."""
        flat = cand.clamp_min(0).reshape(-1)
        q = query[:, None, :].expand(-1, cand.shape[1], -1).reshape(-1, query.shape[1])
        values = rowwise_distances(q, base[flat].to(query.dtype), self.distance)
        cost = _cost(self.distance, values.reshape(cand.shape))
        return cost.masked_fill(cand < 0, float("inf"))

    def _exact_search(self, query: torch.Tensor, base: torch.Tensor, k: int) -> torch.Tensor:
        """(n, min(k, N)) indices of the exact nearest rows of ``base`` (-1 where none)."""
        if self.backend == "faiss":
            faiss = _import_faiss()
            metric, normalize = self._metric
            k = min(k, base.shape[0])
            code = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
            if _faiss_gpu_ok(faiss, query.device) and k <= 2048:  # FAISS GPU k-selection limit
                import faiss.contrib.torch_utils  # noqa: F401  (torch tensors in knn_gpu)

                q, b = query.float(), base.float()
                if normalize:
                    q, b = F.normalize(q, dim=1), F.normalize(b, dim=1)
                device = query.device.index
                device = torch.cuda.current_device() if device is None else device
                _, found = faiss.knn_gpu(
                    _gpu_resources(faiss, device),
                    q.contiguous(),
                    b.contiguous(),
                    k,
                    metric=code,
                    device=device,
                )
                return found.to(query.device)
            if query.device.type == "cpu":
                with _blas_kernels(faiss):
                    _, found = faiss.knn(
                        _as_faiss_array(query, normalize),
                        _as_faiss_array(base, normalize),
                        k,
                        metric=code,
                    )
                return torch.from_numpy(found)
            # CUDA tensors without faiss-gpu: the torch search on their GPU beats a host round trip
        _, found = chunked_knn(query, base, k, self.distance, chunk_elements=self.chunk_elements)
        return found

    def _search_bank(self, query: torch.Tensor, k: int) -> torch.Tensor | None:
        """(n, <=k) bank rows nearest to ``query`` (-1 where none), or None if the bank is empty."""
        bank = self.bank
        if bank.size and bank.device != query.device:
            bank.to(query.device)  # follow the embeddings (e.g. after model.to("cuda"))
        bank.refresh()
        if bank.size == 0:
            self.approximate_search = 0
            return None
        valid = bank.valid_mask()
        live = torch.nonzero(valid, as_tuple=True)[0]
        if len(live) == 0:
            self.approximate_search = 0
            return None
        use_approx = self._approx is not None and (
            self.index != "auto" or len(live) >= self.approximate_above
        )
        if use_approx:
            rows = self._approx.search(bank, live, query, k, self.nprobe, self.ef_search)
            if rows is not None:
                self.approximate_search = 1
                return rows
        self.approximate_search = 0
        if len(live) == bank.capacity:
            return self._exact_search(query, bank.embeddings, k)
        found = self._exact_search(query, bank.embeddings[live], k)
        return torch.where(found >= 0, live[found.clamp_min(0)], -1)

    @torch.no_grad()
    def bank_recall(self, query: torch.Tensor) -> float:
        """Recall@k of the bank search for ``query`` (n, d) against exact search, in [0, 1].

        The share of each query's exact ``k`` nearest live bank rows that the configured index
        returns, averaged; 1.0 for ``index="flat"``. Approximate recall depends on the embeddings
        (high on clustered, low-dimensional ones, low on isotropic noise: docs/mining.md): log it
        now and then on a batch of real embeddings.
        """
        if self.bank is None:
            raise RuntimeError("bank_recall measures the bank search; this miner has no bank.")
        found = self._search_bank(query, self.k)
        if found is None:
            return float("nan")
        live = torch.nonzero(self.bank.valid_mask(), as_tuple=True)[0]
        exact = self._exact_search(query, self.bank.embeddings[live], self.k)
        exact = torch.where(exact >= 0, live.to(exact.device)[exact.clamp_min(0)], -1).cpu()
        found = found.cpu()
        hits = ((found[:, :, None] == exact[:, None, :]) & (exact[:, None, :] >= 0)).any(1)
        return float(hits.sum() / (exact >= 0).sum().clamp_min(1))

    def _record(self, embeddings, ref_emb, bank_rows, a, p, n) -> None:
        n_ref = len(ref_emb)
        is_bank = n >= n_ref
        if len(a) == 0:
            return
        neg = torch.empty(
            len(n), ref_emb.shape[1], dtype=embeddings.dtype, device=embeddings.device
        )
        neg[~is_bank] = ref_emb[n[~is_bank]].to(embeddings.dtype)
        if bank_rows is not None:
            neg[is_bank] = self.bank.embeddings[bank_rows[n[is_bank] - n_ref]].to(embeddings.dtype)
        d_an = rowwise_distances(embeddings[a], neg, self.distance)
        d_ap = rowwise_distances(embeddings[a], ref_emb[p].to(embeddings.dtype), self.distance)
        self.mean_negative_distance = float(d_an.mean())
        self.mean_positive_distance = float(d_ap.mean())


def _starts_with(ref_emb, ref_labels, embeddings, labels) -> bool:
    """Whether the reference set begins with the batch itself (the batch as reference, or pml's
    distributed wrappers with ``efficient=True``, which put the local batch first): then an
    anchor's own row is never its positive."""
    if ref_emb is embeddings:
        return True
    n = len(embeddings)
    return (
        len(ref_emb) >= n
        and torch.equal(ref_labels[:n], labels)
        and torch.equal(ref_emb[:n].to(embeddings.dtype), embeddings)
    )


def _check_positive_int(name: str, value: object, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int ({what}); got {value!r}.")


def _check_labels(name: str, labels: torch.Tensor) -> None:
    if labels is None:
        raise ValueError(
            f"{name} are required: REAL ({REAL}) for real samples, FAKE ({FAKE}) for generated ones"
            " (mvm_core.metric.real_fake_labels builds them)."
        )
    bad = (labels != REAL) & (labels != FAKE)
    if bool(bad.any()):
        raise ValueError(
            f"{name} must be REAL ({REAL}) or FAKE ({FAKE}); got other values"
            f" {sorted(set(labels[bad].tolist()))[:5]}. Build them with"
            " mvm_core.metric.real_fake_labels(n_real, n_fake)."
        )


__all__ = [
    "FAISS_INSTALL",
    "FaissHardNegativeMiner",
    "FakeEmbeddingBank",
    "ReferenceMiner",
    "chunked_knn",
    "faiss_available",
    "faiss_metric",
    "require_faiss",
]
