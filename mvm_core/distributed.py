"""Multi-process training with PyTorch DDP, launched by ``torchrun``: ranks, gathers, rank-0 work.

The scheme (``docs/distributed.md``) makes N processes compute exactly what one process computes
on the same global batch:

* ``batch_size`` is the *global* batch. Every rank draws the same global batch indices and the same
  global latents from the shared seeded streams and keeps only its shard (:func:`shard_rows`), so
  the data order, the latents and the checkpoints do not depend on the number of processes.
* Each rank runs the generator and the metric network (both wrapped in DDP) on its shard; the
  embeddings are gathered with :func:`gather_with_grad`, so the manifold-matching statistics, the
  mined tuples and the metric loss see the whole global batch, identically on every rank.
* Gradients: the gather's backward sums the ranks' gradients of their (identical) copies of the
  loss, which gives each rank ``world_size`` times its shard's share; DDP's averaging then yields
  exactly the single-process gradient. Every autograd collective here follows that convention
  (the objective is the sum of the ranks' losses; DDP divides by ``world_size``), so a term
  computed on the local shard alone (a regularizer) is averaged over ranks as in plain DDP.

Everything here is a no-op (no collective, no synchronization) when the world has one process.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")

TIMEOUT_ENV = "MVM_DIST_TIMEOUT"  # seconds a collective may wait before the job fails
BACKEND_ENV = "MVM_DIST_BACKEND"  # force a backend: nccl | gloo
_ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
_initialized_here = False


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: global ``rank``, ``world_size`` and ``local_rank`` (its GPU)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints, logs and samples."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


# ------------------------------------------------------------------------------------------------
# the process group


def is_distributed() -> bool:
    """Whether a process group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_info() -> DistInfo:
    """Rank, world size and local rank of this process (``DistInfo()`` when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank() % max(1, _local_world_size())))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local)


def is_main_process() -> bool:
    """True on rank 0 and in a single process."""
    return get_info().is_main


def _local_world_size() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", torch.cuda.device_count() or 1))


def default_backend() -> str:
    """NCCL for CUDA tensors and gloo for CPU ones (``cpu:gloo,cuda:nccl``) when CUDA is
    available, so a ``--device cpu`` run on a GPU machine works too; gloo otherwise.
    ``MVM_DIST_BACKEND`` overrides it."""
    forced = os.environ.get(BACKEND_ENV)
    if forced:
        return forced
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


def init_distributed(backend: str = "auto") -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment.

    A no-op returning ``DistInfo()`` in a single process (``WORLD_SIZE`` unset or 1) and when a
    process group already exists (its info is returned). ``backend="auto"`` is
    :func:`default_backend`; with NCCL each process is pinned to ``cuda:LOCAL_RANK``. Collectives
    wait ``MVM_DIST_TIMEOUT`` seconds (PyTorch's default when unset) before the job fails.
    """
    global _initialized_here
    if dist.is_available() and dist.is_initialized():
        return get_info()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError(
            f"WORLD_SIZE={world} asks for distributed training, but this PyTorch build has no"
            " torch.distributed. Install a PyTorch build with distributed support or run one process."
        )
    missing = [key for key in _ENV_KEYS if key not in os.environ]
    if missing:
        raise RuntimeError(
            f"WORLD_SIZE={world} but the environment lacks {missing}: launch with torchrun"
            " (`torchrun --nproc_per_node N -m mvm_core.cli train ...`), which sets them."
        )
    backend = default_backend() if backend == "auto" else backend
    local_rank = int(os.environ["LOCAL_RANK"])
    if "nccl" in backend:
        if not torch.cuda.is_available():
            raise RuntimeError(
                "backend 'nccl' needs CUDA GPUs and none is visible; use gloo (the default without"
                f" CUDA, or {BACKEND_ENV}=gloo)."
            )
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK={local_rank} but this machine shows {torch.cuda.device_count()} GPU(s);"
                " start at most one process per GPU (--nproc_per_node)."
            )
        torch.cuda.set_device(local_rank)
    kwargs: dict[str, Any] = {"backend": backend}
    if os.environ.get(TIMEOUT_ENV):
        kwargs["timeout"] = datetime.timedelta(seconds=float(os.environ[TIMEOUT_ENV]))
    dist.init_process_group(**kwargs)
    _initialized_here = True
    return get_info()


def cleanup() -> None:
    """Leave the process group if :func:`init_distributed` created it (call once training ends)."""
    global _initialized_here
    if _initialized_here and dist.is_initialized():
        dist.destroy_process_group()
    _initialized_here = False


def local_device(device: torch.device, info: DistInfo) -> torch.device:
    """The device of this rank: an index-less ``cuda`` becomes ``cuda:LOCAL_RANK`` under DDP."""
    if info.distributed and device.type == "cuda" and device.index is None:
        return torch.device("cuda", info.local_rank)
    return device


# ------------------------------------------------------------------------------------------------
# sharding


def shard_rows(batch_size: int, info: DistInfo, paired: bool = False) -> torch.Tensor | None:
    """Rows of the global batch that this rank computes, or None for the whole batch.

    Contiguous slices (rank r takes rows ``[r n, (r + 1) n)``, ``n = batch_size / world``); a
    ``paired`` batch (two halves whose row i and row ``i + B/2`` form a pair, for mode seeking)
    is cut in each half, so every pair stays on one rank.
    """
    if not info.distributed:
        return None
    w, r = info.world_size, info.rank
    check_batch_size(batch_size, w, paired)
    if paired:
        half, q = batch_size // 2, batch_size // (2 * w)
        return torch.cat([torch.arange(r * q, (r + 1) * q), torch.arange(half + r * q, half + (r + 1) * q)])
    n = batch_size // w
    return torch.arange(r * n, (r + 1) * n)


def check_batch_size(batch_size: int, world_size: int, paired: bool = False) -> None:
    """``batch_size`` is global: it must split evenly over the ranks (into pairs if ``paired``)."""
    unit = 2 * world_size if paired else world_size
    if batch_size % unit:
        what = "pairs of rows (a paired batch, e.g. for mode seeking)" if paired else "rows"
        raise ValueError(
            f"batch_size={batch_size} is the global batch and must split evenly into {what} over"
            f" {world_size} processes; use a multiple of {unit} (e.g. {unit * -(-batch_size // unit)})."
        )


# ------------------------------------------------------------------------------------------------
# collectives

# PyTorch 2.14 renamed all_gather_into_tensor (deprecated there) to all_gather_single
_all_gather_single = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0; the backward sums the ranks' gradients and keeps this rank's rows.

    The backward is an all-reduce followed by a slice rather than a reduce-scatter: every backend
    (gloo included) has it, the stable API does not change between PyTorch versions, and the
    tensors (embedding gradients of one batch) are small.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        world = dist.get_world_size()
        ctx.rank, ctx.rows = dist.get_rank(), x.shape[0]
        out = x.new_empty((world * x.shape[0], *x.shape[1:]))
        _all_gather_single(out, x.contiguous())
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad.narrow(0, ctx.rank * ctx.rows, ctx.rows)


class _AllReduceSumWithGrad(torch.autograd.Function):
    """Sum over ranks; the backward sums the ranks' gradients (the same sum-of-losses convention)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """``cat`` over ranks (rank order) of ``x`` (same shape on every rank), differentiable.

    Gradients flow back to each rank's own rows, summed over the ranks' losses (see the module
    docstring for why that is the single-process gradient after DDP's averaging). Returns ``x``
    itself in a single process.
    """
    if not is_distributed():
        return x
    return _GatherWithGrad.apply(x)


def all_reduce_sum_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Differentiable sum over ranks (``x`` itself in a single process)."""
    if not is_distributed():
        return x
    return _AllReduceSumWithGrad.apply(x)


def all_gather_tensor(x: torch.Tensor) -> torch.Tensor:
    """``cat`` over ranks of ``x`` without gradients (labels, indices)."""
    if not is_distributed():
        return x
    out = x.new_empty((dist.get_world_size() * x.shape[0], *x.shape[1:]))
    _all_gather_single(out, x.detach().contiguous())
    return out


def mean_over_ranks(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Average scalar tensors over ranks in one collective (a NaN on any rank reaches all)."""
    if not is_distributed() or not values:
        return values
    stacked = torch.stack([v.detach().float().reshape(()) for v in values.values()])
    dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
    stacked /= dist.get_world_size()
    return dict(zip(values, stacked.unbind()))


def any_rank(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True on every rank when it is true on any rank (e.g. a stop request made on rank 0)."""
    if not is_distributed():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=_collective_device(device))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def _collective_device(device: torch.device | str) -> torch.device:
    """``device``, or this rank's GPU when the only backend is NCCL (it has no CPU collectives)."""
    device = torch.device(device)
    if dist.get_backend() == "nccl" and device.type != "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return device


def broadcast_object(obj: T, src: int = 0) -> T:
    """``obj`` of rank ``src`` on every rank (pickled between our own processes)."""
    if not is_distributed():
        return obj
    box = [obj if dist.get_rank() == src else None]
    dist.broadcast_object_list(box, src=src, device=_collective_device("cpu"))
    return box[0]


def on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and return its result on every rank.

    An exception on rank 0 is raised on every rank (with rank 0's message), so no rank waits
    for a result that will never come: e.g. a missing checkpoint stops the whole job at once.
    """
    if not is_distributed():
        return fn()
    if dist.get_rank() == 0:
        try:
            payload = ("ok", fn())
        except Exception as error:  # sent to the other ranks, then raised here too
            payload = ("error", f"{type(error).__name__}: {error}")
            broadcast_object(payload)
            raise
        return broadcast_object(payload)[1]
    status, value = broadcast_object(None)
    if status == "error":
        raise RuntimeError(f"rank 0 failed: {value}")
    return value


def check_same_on_all_ranks(name: str, value: Any) -> None:
    """Raise on every rank when ``value`` differs between ranks (e.g. the config or the data size)."""
    if not is_distributed():
        return
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, pickle.dumps(value))
    if any(v != values[0] for v in values):
        differing = [r for r, v in enumerate(values) if v != values[0]]
        raise RuntimeError(
            f"the {name} differs between processes (ranks {differing} differ from rank 0): every"
            " rank must be started with the same command, config and data."
        )


def sync_random_state(device: torch.device) -> None:
    """Give every rank rank 0's global torch random state (CPU and ``device``).

    The trainer's global computations (mining, loss terms that draw random numbers) run on
    every rank from the global batch and must draw the same numbers everywhere.
    """
    if not is_distributed():
        return
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    state = broadcast_object(state)
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


# ------------------------------------------------------------------------------------------------
# per-rank randomness of the forward passes


@contextlib.contextmanager
def rank_local_random(key: tuple[int, ...], device: torch.device) -> Iterator[None]:
    """Run the block with global torch random streams seeded from ``key``, then restore them.

    Under DDP the shared streams must stay identical on every rank (mining draws from them), but
    randomness inside a forward pass on the local shard (dropout, noise inputs) must differ
    between ranks, else shards get the same noise. The trainer runs its forward passes in this
    context with ``key = (seed, rank, step, call)``: a pure function of the step, so a resumed
    run draws the same numbers without saving any per-rank state.
    """
    seed = int(np.random.SeedSequence(list(key)).generate_state(1, dtype=np.uint64)[0] >> 1)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        if devices:
            torch.cuda.default_generators[device.index or 0].manual_seed(seed)
        yield


@contextlib.contextmanager
def preserve_random_state(device: torch.device, *generators: torch.Generator) -> Iterator[None]:
    """Restore the global torch streams (CPU and ``device``) and ``generators`` after the block.

    Under DDP, callbacks run on rank 0 only: whatever they draw (samples, evaluation) must not
    move the streams every rank shares, or the ranks would mine different tuples afterwards.
    """
    saved = [g.get_state() for g in generators]
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        try:
            yield
        finally:
            for g, state in zip(generators, saved):
                g.set_state(state)


class RankLocalForward:
    """Calls ``module`` (e.g. a DDP wrapper) inside :func:`rank_local_random`.

    The stream of a call is keyed by ``key`` (e.g. ``(seed, rank, network)``), the training step
    ``step_fn()`` and the number of calls made so far in that step.
    """

    def __init__(self, module: nn.Module, key: tuple[int, ...], device: torch.device,
                 step_fn: Callable[[], int]):
        self.module, self.key, self.device, self.step_fn = module, tuple(key), device, step_fn
        self._step, self._calls = -1, 0

    def __call__(self, *args, **kwargs):
        step = self.step_fn()
        if step != self._step:
            self._step, self._calls = step, 0
        key = (*self.key, step, self._calls)
        self._calls += 1
        with rank_local_random(key, self.device):
            return self.module(*args, **kwargs)


# ------------------------------------------------------------------------------------------------
# BatchNorm over the global batch


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics cover every rank's rows, for CPU tensors (gloo).

    ``torch.nn.SyncBatchNorm`` runs on GPUs only (and DDP refuses it on CPU modules); this is its
    CPU counterpart, used by :func:`convert_sync_batchnorm` on CPU runs and in the CPU tests. In
    training mode under a process group the batch mean and (biased) variance come from two
    differentiable all-reduces (the sum, then the sum of squared deviations: as accurate as
    single-process BatchNorm); the running statistics take the unbiased variance of the global
    batch, as PyTorch does. Otherwise it is plain BatchNorm.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]
        count = torch.tensor([float(input.numel() // input.shape[1])], dtype=input.dtype)
        total = all_reduce_sum_with_grad(torch.cat([input.sum(dims), count]))
        n = total[-1]
        mean = total[:-1] / n
        shape = [1, -1] + [1] * (input.dim() - 2)
        centered = input - mean.reshape(shape)
        var = all_reduce_sum_with_grad((centered * centered).sum(dims)) / n
        out = centered * torch.rsqrt(var + self.eps).reshape(shape)
        if self.affine:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                            else self.momentum)
                unbiased = var.detach() * (n / (n - 1))
                self.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
        return out


def convert_sync_batchnorm(module: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    """Make every ``BatchNorm*d`` of ``module`` compute its statistics over all ranks.

    GPU modules get ``torch.nn.SyncBatchNorm``; CPU modules :class:`CPUSyncBatchNorm`. Both keep
    the parameters, buffers and state-dict keys, so checkpoints load either way. Returns the
    converted module (the same object unless ``module`` itself is a BatchNorm layer).
    """
    if torch.device(device).type != "cpu":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
            module, (nn.SyncBatchNorm, CPUSyncBatchNorm)):
        out = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        out.running_mean = module.running_mean
        out.running_var = module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, convert_sync_batchnorm(child, device))
    return out


__all__ = [
    "BACKEND_ENV", "TIMEOUT_ENV", "CPUSyncBatchNorm", "DistInfo", "RankLocalForward",
    "all_gather_tensor", "all_reduce_sum_with_grad", "any_rank", "barrier", "broadcast_object",
    "check_batch_size", "check_same_on_all_ranks", "cleanup", "convert_sync_batchnorm",
    "default_backend", "gather_with_grad", "get_info", "init_distributed", "is_distributed",
    "is_main_process", "local_device", "mean_over_ranks", "on_main", "preserve_random_state",
    "rank_local_random",
    "shard_rows", "sync_random_state",
]
