"""The MvM training loop: a generator step on manifold matching, then a metric step on metric learning.

One iteration (reference order, see ``docs/method.md``)::

    fake = G(z)                      one generator forward
    R, F = M(real), M(fake)          one metric forward over real and fake together
    generator step : L_G = matching(R.detach(), F) + sum_k w_k * term_k(ctx)   -> update G only
    metric step    : L_M = metric_objective(R, F computed from fake.detach())  -> update M only

The metric step reuses the embeddings of the generator step: ``M`` has not changed in between, so
``M(fake.detach())`` equals ``F`` and its graph through ``M`` is already built; the backward of L_M
is restricted to M's parameters and never enters G. The reference code instead runs G three times
per iteration. Extra metric steps (``metric_steps > 1``) draw new real batches and new fakes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import distributed
from .checkpoint import FILENAME, load_checkpoint, save_checkpoint
from .config_checks import check_fields
from .context import StepContext, needs_pairs
from .data.batches import BatchSource
from .data.datasets import as_generative_dataset
from .data.paired import is_paired
from .ema import EMA
from .errors import CheckpointError, ConfigError
from .health import embedding_stats
from .matching import ManifoldMatchingLoss, directed_hausdorff, hausdorff
from .metric import MetricObjective

TASKS = ("generate", "paired")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or inf; the last good state was saved before raising."""


@dataclass
class TrainConfig:
    """Every training choice, serializable to JSON (saved in checkpoints and run folders).

    Optimizer defaults are the reference method's (docs/method.md): G Adam lr 1e-4, betas (0, 0.9),
    eps 1e-6; M Adam lr 1e-4, betas (0.5, 0.999), eps 1e-3.
    """

    steps: int = 2000
    batch_size: int = 64
    metric_steps: int = 1
    g_lr: float = 1e-4
    g_betas: tuple[float, float] = (0.0, 0.9)
    g_eps: float = 1e-6
    m_lr: float = 1e-4
    m_betas: tuple[float, float] = (0.5, 0.999)
    m_eps: float = 1e-3
    lr_schedule: str = "constant"  # constant | cosine | linear (decay to 0 at `steps`)
    warmup_steps: int = 0
    grad_clip: float | None = None  # max global grad norm, per network
    ema_decay: float | None = None
    amp: bool = False  # bfloat16 autocast on CUDA
    seed: int = 0
    device: str = "auto"
    # under torchrun (DDP): BatchNorm statistics over the global batch (SyncBatchNorm), and DDP's
    # search for parameters a step leaves without gradient (needed only by nets that have some)
    sync_batchnorm: bool = False
    find_unused_parameters: bool = False
    log_every: int = 10
    conditional: bool = False  # class-conditional generator trained per class
    task: str = "generate"  # generate: G(z) from latents | paired: G(input) against its target

    def __post_init__(self):
        check_fields(self)  # every field (a RunConfig's too): its type, then its range
        checks = [
            (self.lr_schedule in ("constant", "cosine", "linear"),
             "lr_schedule must be 'constant', 'cosine' or 'linear'"),
            (self.task in TASKS, f"task must be one of {TASKS}"),
            (not (self.task == "paired" and self.conditional),
             "task='paired' conditions the generator on its inputs; set conditional=False"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{message}; got {self}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown TrainConfig keys {sorted(unknown)}; valid keys: {sorted(known)}.")
        return cls(**values)


def encode_history(history: list[dict[str, float]]) -> torch.Tensor:
    """The logged records as UTF-8 JSON bytes in a uint8 tensor: stored with the tensors, not in
    the checkpoint's header, whose size safetensors limits (a long run's history outgrows it)."""
    data = json.dumps(history, default=float).encode()
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)


def decode_history(value: Any) -> list[dict[str, float]]:
    """Inverse of :func:`encode_history`; a list (checkpoints written before it) passes through."""
    if isinstance(value, torch.Tensor):
        return json.loads(bytes(value.cpu().numpy().tobytes()).decode()) if value.numel() else []
    return list(value)


def _load_tolerating_extra_state(module: nn.Module, state: dict[str, Any]) -> None:
    """``module.load_state_dict(state)``, strict except for extra state (e.g. a memory bank's
    rows) that checkpoints written before it was saved do not have."""
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("_extra_state")]
    if missing or unexpected:
        raise RuntimeError(f"Error(s) in loading state_dict for {type(module).__name__}: missing keys"
                           f" {missing}, unexpected keys {unexpected}")


def _check_optimizer_shapes(opt: torch.optim.Optimizer, name: str) -> None:
    """Moments loaded into ``opt`` have their parameter's shape (torch does not check it)."""
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.ndim and value.shape != p.shape:
                    raise CheckpointError(
                        f"the checkpoint's {name} state {key!r} has shape {tuple(value.shape)} for a"
                        f" parameter of shape {tuple(p.shape)}: it was saved from another model."
                    )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_factor(config: TrainConfig, step: int) -> float:
    """Learning-rate multiplier at ``step`` (a pure function of the step: resume needs no state)."""
    if config.warmup_steps and step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant" or config.steps == 0:
        return 1.0
    t = min(1.0, step / config.steps)
    if config.lr_schedule == "linear":
        return 1.0 - t
    return 0.5 * (1.0 + math.cos(math.pi * t))


@dataclass
class Term:
    """A weighted generator term (regularizer or extra loss) under a name used in the logs."""

    name: str
    weight: float
    fn: Callable[[StepContext], torch.Tensor]


def _as_terms(terms) -> list[Term]:
    if terms is None:
        return []
    if isinstance(terms, dict):
        out = []
        for name, spec in terms.items():
            weight, fn = spec if isinstance(spec, tuple) else (1.0, spec)
            out.append(Term(name, float(weight), fn))
        return out
    return [t if isinstance(t, Term) else Term(type(t).__name__, 1.0, t) for t in terms]


def check_task(task: str, dataset) -> None:
    """The data must match the task: (input, target) pairs exactly when task='paired'."""
    paired_data = is_paired(dataset)
    if task == "paired" and not paired_data:
        raise ValueError(
            f"task='paired' trains G(input) against targets, but the data ({type(dataset).__name__})"
            " is not a paired dataset; pass a mvm_core.data.PairedDataset (e.g. --data sr:skimage"
            " from the mvm-core-sr plugin), or use task='generate'."
        )
    if task == "generate" and paired_data:
        raise ValueError(
            f"the data {getattr(dataset, 'name', type(dataset).__name__)!r} holds (input, target)"
            " pairs: train with task='paired' (`--task paired`, or `--preset sr` for super-resolution)."
        )


@dataclass
class TrainerState:
    """What changes during training besides weights and optimizer moments."""

    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    """Trains ``generator`` by manifold matching in the embedding of ``metric_net``.

    With ``config.task == "paired"`` the data is a :class:`~mvm_core.data.PairedDataset` of
    ``(input, target)`` pairs: each step generates ``fake = G(input)``, the objectives compare it
    with ``real = target`` (content terms pair each output with its own target), and sampling
    maps the held-out inputs (:meth:`predict`).

    Args:
        generator: ``G(z[, cond]) -> sample`` with a ``z_dim`` attribute; ``G(input) -> output``
            in a paired task.
        metric_net: ``M(sample) -> (B, d)`` embedding; ``None`` trains the generator on
            ``generator_terms`` alone (e.g. GFMN feature matching), with no metric step.
        data: a dataset, tensor/array, or ``(x, y)`` pair (labels needed when conditional).
        config: a :class:`TrainConfig` (or a dict of its fields).
        matching: the generator objective (default :class:`ManifoldMatchingLoss`).
        metric_objective: the metric network's objective (default :class:`MetricObjective`).
        generator_terms: extra weighted generator losses, ``{name: (weight, term)}`` where
            ``term(ctx: StepContext) -> scalar`` (regularizers such as mode seeking, GFMN, ...).
        callbacks: objects with optional ``on_train_start / on_step_end / on_step / on_train_end``
            methods (:mod:`mvm_core.callbacks`).
        run_dir: folder for checkpoints (needed for NaN-time saves and resume).
    """

    def __init__(self, generator: nn.Module, metric_net: nn.Module | None, data, config: TrainConfig | dict | None = None,
                 *, matching: nn.Module | None = None, metric_objective: nn.Module | None = None,
                 generator_terms=None, callbacks: Iterable = (), run_dir: str | Path | None = None,
                 extra_state: dict[str, Any] | None = None):
        self.config = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config or {})
        cfg = self.config
        self.dist = distributed.init_distributed()  # torchrun's process group; no-op in one process
        self.device = distributed.local_device(resolve_device(cfg.device), self.dist)
        if cfg.task == "generate" and not hasattr(generator, "z_dim"):
            raise TypeError("generator must have a `z_dim` attribute (the size of its latent code).")
        self.generator = generator.to(self.device)
        self.metric_net = metric_net.to(self.device) if metric_net is not None else None
        self.dataset = as_generative_dataset(data)
        check_task(cfg.task, self.dataset)
        self.batches = BatchSource(self.dataset, cfg.batch_size, seed=cfg.seed, device=self.device,
                                   rank=self.dist.rank, world_size=self.dist.world_size)
        self.terms = _as_terms(generator_terms)
        if self.metric_net is None:
            if not self.terms:
                raise ValueError("without a metric network the generator needs generator_terms to train on.")
            if matching is not None or metric_objective is not None:
                raise ValueError("matching and metric_objective need a metric network (metric_net is None).")
            cfg.metric_steps = 0
            self.matching = self.metric_objective = None
        else:
            self.matching = (matching or ManifoldMatchingLoss()).to(self.device)
            self.metric_objective = (metric_objective or MetricObjective()).to(self.device)
        self.paired = any(needs_pairs(t.fn) for t in self.terms)
        if self.paired and cfg.task == "paired":
            raise ValueError("terms with needs_pairs (e.g. mode seeking) pair latent codes, which"
                             " task='paired' does not have; drop them or train with task='generate'.")
        self.num_classes = getattr(generator, "num_classes", None)
        if cfg.conditional and not self.num_classes:
            raise ValueError("conditional=True needs a generator built with num_classes.")
        self.callbacks = list(callbacks)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.extra_state = extra_state or {}
        self.g_opt = torch.optim.Adam(self.generator.parameters(), lr=cfg.g_lr, betas=cfg.g_betas, eps=cfg.g_eps)
        self.m_opt = None
        if self.metric_net is not None:
            metric_params = list(self.metric_net.parameters()) + list(self.metric_objective.parameters())
            self.m_opt = torch.optim.Adam(metric_params, lr=cfg.m_lr, betas=cfg.m_betas, eps=cfg.m_eps)
        self.ema = EMA(self.generator, cfg.ema_decay).to(self.device) if cfg.ema_decay else None
        self.rng = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.state = TrainerState()
        self._amp = cfg.amp and self.device.type == "cuda"
        self._stop = False
        self._stop_requested = False  # set by request_stop (signals); merged at a synced step
        if self.dist.distributed:
            self._setup_distributed()

    # ---- sampling ------------------------------------------------------------------------
    @property
    def sampler(self) -> nn.Module:
        """The network used for samples: the EMA generator when enabled."""
        return self.ema.module if self.ema is not None else self.generator

    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.generator.z_dim, generator=generator or self.rng, device=self.device)

    @torch.no_grad()
    def sample(self, n: int, cond: torch.Tensor | None = None, seed: int | None = 0,
               batch_size: int = 1024) -> torch.Tensor:
        """``n`` samples from the (EMA) generator; class ids cycle 0..K-1 for a conditional one.

        With a ``seed`` (default 0) the latents come from their own generator, so sampling never
        changes the training's random stream; ``seed=None`` draws from the training stream.
        In a paired task the samples are the outputs for the first ``n`` held-out inputs.
        """
        if self.config.task == "paired":
            return self.predict(self.dataset.heldout(n)[0], batch_size=min(batch_size, 64))
        gen = None if seed is None else torch.Generator(device=self.device).manual_seed(seed)
        net = self.sampler
        was_training = net.training
        net.eval()
        if cond is None and self.num_classes:
            cond = torch.arange(n, device=self.device) % self.num_classes
        out = []
        for start in range(0, n, batch_size):
            z = self.latent(min(batch_size, n - start), gen)
            c = None if cond is None else cond[start : start + len(z)].to(self.device)
            out.append(net(z, c) if c is not None else net(z))
        net.train(was_training)
        return torch.cat(out)

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """The (EMA) generator's outputs for the inputs of a paired task, in eval mode, on the CPU
        (``(N, ...)`` inputs in batches of ``batch_size``; e.g. low-res images to super-resolve)."""
        if self.config.task != "paired":
            raise ValueError("predict maps inputs of a paired task; this trainer has task="
                             f"{self.config.task!r} (use sample(n) for latent-code generation).")
        net = self.sampler
        was_training = net.training
        net.eval()
        out = [net(inputs[i : i + batch_size].to(self.device)).float().cpu()
               for i in range(0, len(inputs), batch_size)]
        net.train(was_training)
        return torch.cat(out)

    def _draw_batch(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        """``(real, real_cond, z, fake_cond)``: a real batch and the generator's inputs for a fake
        batch; in a paired task ``z`` holds the inputs whose targets are ``real``."""
        if self.config.task == "paired":
            inputs, targets = next(self.batches)
            return targets, None, inputs, None
        real, real_cond = next(self.batches)
        z, fake_cond = self._fake_batch(real_cond)
        return real, real_cond, z, fake_cond

    # ---- one iteration -------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self._amp)

    def _fake_batch(self, real_cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        b = self.config.batch_size
        if self.dist.distributed and self.config.conditional and real_cond is not None:
            real_cond = distributed.all_gather_tensor(real_cond)  # the global batch's classes
        cond = real_cond if (self.config.conditional and real_cond is not None) else None
        if self.num_classes and cond is None:
            cond = torch.randint(self.num_classes, (b,), generator=self.rng, device=self.device)
        if self.paired and cond is not None:
            cond = torch.cat([cond[: b // 2], cond[: b // 2]])
        z = self.latent(b)
        if not self.dist.distributed:
            return z, cond
        rows = self._fake_rows  # every rank draws the global batch and keeps its own rows
        return z[rows], None if cond is None else cond[rows]

    def _generate(self, z, cond):
        generator = self._ddp_generator if self.dist.distributed else self.generator
        return generator(z, cond) if cond is not None else generator(z)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return (self._ddp_metric if self.dist.distributed else self.metric_net)(x)

    # ---- several processes (torchrun, DDP; docs/distributed.md) ----------------------------
    def _setup_distributed(self) -> None:
        """Shard layout, the same state on every rank, SyncBatchNorm, and the DDP wrappers.

        ``batch_size`` is global: every rank draws the global batch from the shared seeded streams
        and computes its own rows; :meth:`_global_batch` gathers the embeddings so the objectives
        see the single-process batch. Forward passes draw random numbers (dropout, noise) from
        per-rank streams; everything computed on the global batch (mining) from shared ones.
        """
        import warnings

        from torch.nn.parallel import DistributedDataParallel as DDP

        cfg, info = self.config, self.dist
        comparable = {k: v for k, v in cfg.to_dict().items() if k != "device"}
        distributed.check_same_on_all_ranks("training config or data size", (comparable, len(self.dataset)))
        rows = [distributed.shard_rows(cfg.batch_size, distributed.DistInfo(r, info.world_size), self.paired)
                for r in range(info.world_size)]
        self._fake_rows = rows[info.rank].to(self.device)
        self._fake_order = torch.argsort(torch.cat(rows)).to(self.device)  # gathered -> global order
        self._gather_index: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        distributed.sync_random_state(self.device)
        nets = {"generator": self.generator, "metric_net": self.metric_net}
        for name, net in nets.items():
            has_bn = net is not None and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
            if has_bn and cfg.sync_batchnorm:
                setattr(self, name, distributed.convert_sync_batchnorm(net, self.device))
            elif has_bn and info.is_main:
                warnings.warn(
                    f"the {name} has BatchNorm layers: under DDP each normalizes its rank's shard of"
                    " the batch. Set sync_batchnorm=True (--sync-batchnorm true) for statistics over"
                    " the global batch, as in one process.", stacklevel=3)
        kwargs: dict[str, Any] = {"find_unused_parameters": cfg.find_unused_parameters}
        if self.device.type == "cuda":
            kwargs.update(device_ids=[self.device.index], output_device=self.device.index)

        def wrap(net: nn.Module, stream: int) -> distributed.RankLocalForward:
            ddp = DDP(net, **kwargs) if any(p.requires_grad for p in net.parameters()) else net
            return distributed.RankLocalForward(ddp, (cfg.seed, info.rank, stream), self.device,
                                                lambda: self.state.step)

        self._ddp_generator = wrap(self.generator, 0)
        self._ddp_metric = wrap(self.metric_net, 1) if self.metric_net is not None else None

    def _global_batch(self, real_emb, fake_emb, real_cond, fake_cond):
        """Embeddings (and classes) of the whole global batch, in single-process order.

        One process: the inputs themselves. Under DDP: gathered from every rank in one
        differentiable collective, gradients flowing back to each rank's own rows.
        """
        if not self.dist.distributed:
            return real_emb, fake_emb, real_cond, fake_cond
        n_real, n_fake = len(real_emb), len(fake_emb)
        if (n_real, n_fake) not in self._gather_index:
            block = n_real + n_fake  # rank k's rows in the gathered tensor: its reals, then its fakes
            start = torch.arange(self.dist.world_size, device=self.device)[:, None] * block
            real_index = (start + torch.arange(n_real, device=self.device)).reshape(-1)
            fake_index = (start + n_real + torch.arange(n_fake, device=self.device)).reshape(-1)
            self._gather_index[n_real, n_fake] = (real_index, fake_index[self._fake_order])
        real_index, fake_index = self._gather_index[n_real, n_fake]
        both = distributed.gather_with_grad(torch.cat([real_emb, fake_emb]))
        if real_cond is not None:
            real_cond = distributed.all_gather_tensor(real_cond)
        if fake_cond is not None:
            fake_cond = distributed.all_gather_tensor(fake_cond)[self._fake_order]
        return both[real_index], both[fake_index], real_cond, fake_cond

    def _matching_loss(self, real_emb, fake_emb, real_cond, fake_cond) -> torch.Tensor:
        if not self.config.conditional:
            return self.matching(real_emb, ref_emb=fake_emb)
        losses, terms = [], {}
        for c in torch.unique(real_cond):
            r, f = real_emb[real_cond == c], fake_emb[fake_cond == c]
            if len(r) >= 2 and len(f) >= 2:
                losses.append(self.matching(r, ref_emb=f))
                for k, v in getattr(self.matching, "last_terms", {}).items():
                    terms.setdefault(k, []).append(v)
        if not losses:
            raise ValueError("no class has 2 real and 2 generated samples in the batch; raise batch_size.")
        self.matching.last_terms = {k: torch.stack(v).mean() for k, v in terms.items()}
        return torch.stack(losses).mean()

    def _check_finite(self, values: dict[str, torch.Tensor], step: int, network: str) -> None:
        # one device sync per step: check all terms at once, name the bad ones only on failure
        finite = bool(torch.isfinite(torch.stack([v.float().reshape(()) for v in values.values()])).all())
        if self.dist.distributed:  # all ranks stop at the same step, even when one rank saw it
            finite = not distributed.any_rank(not finite, self.device)
        if finite:
            return
        bad = [name for name, v in values.items() if not bool(torch.isfinite(v).all())]
        # the state before this step is saved, unless an earlier update already left NaN/inf in
        # the weights or optimizer moments: then the checkpoint on disk is the last good one
        good = self._state_finite()
        path = self.save_checkpoint() if self.run_dir is not None and good else None  # rank 0 writes
        distributed.barrier()  # under DDP the other ranks wait for the file before they exit
        saved = f" The last good state (before step {step}) is saved at {path}." if path else ""
        if not good and self.run_dir is not None:
            saved = (" The weights or optimizer moments were already NaN/inf (an earlier update"
                     f" overflowed), so the checkpoint in {self.run_dir} was kept as it was.")
        found = ", ".join(f"{k}={float(values[k])}" for k in bad) if bad else "on another process"
        raise TrainingDiverged(
            f"step {step}: the {network} loss term(s) {bad} became NaN/inf ({found}), before the"
            f" update.{saved} Lower"
            " the learning rates, enable grad_clip, or check the data scale."
        )

    def _state_finite(self) -> bool:
        """Whether every weight and optimizer moment is finite (a state worth saving)."""
        tensors = [p for net in (self.generator, self.metric_net) if net is not None for p in net.parameters()]
        for opt in (self.g_opt, self.m_opt):
            for state in (opt.state.values() if opt is not None else ()):
                tensors += [v for v in state.values() if isinstance(v, torch.Tensor) and v.is_floating_point()]
        return all(bool(torch.isfinite(t).all()) for t in tensors)

    def _weights_diverged(self, error: Exception) -> TrainingDiverged | None:
        """A :class:`TrainingDiverged` when a network's weights are NaN/inf (an update from an
        overflowing gradient), else None. The state is bad, so nothing is saved: the checkpoint
        already in the run folder is the last good state and is left as it is."""
        nets = {"generator": self.generator, "metric network": self.metric_net}
        bad = [name for name, net in nets.items() if net is not None
               and not all(bool(torch.isfinite(p).all()) for p in net.parameters())]
        if not bad:
            return None
        saved = ""
        if self.run_dir is not None and (self.run_dir / FILENAME).exists():
            saved = f" The last good state is the checkpoint at {self.run_dir / FILENAME}, kept as it was."
        return TrainingDiverged(
            f"step {self.state.step}: the {' and '.join(bad)} weights became NaN/inf (the previous"
            f" update overflowed; the losses then refused their input: {error}).{saved} Lower the"
            " learning rates, enable grad_clip, or check the data scale."
        )

    def _clip(self, params) -> torch.Tensor:
        params = [p for p in params if p.grad is not None]
        if self.config.grad_clip is not None:
            return torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        if not params:
            return torch.zeros(())
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))

    def train_step(self) -> dict[str, torch.Tensor]:
        """One generator step and ``metric_steps`` metric steps; returns detached loss terms."""
        cfg, step = self.config, self.state.step
        factor = lr_factor(cfg, step)
        for opt, base in ((self.g_opt, cfg.g_lr), (self.m_opt, cfg.m_lr)):
            for group in opt.param_groups if opt is not None else ():
                group["lr"] = base * factor
        g_params = list(self.generator.parameters())
        m_params = [p for group in self.m_opt.param_groups for p in group["params"]] if self.m_opt else []

        real, real_cond, z, fake_cond = self._draw_batch()
        with self._autocast():
            fake = self._generate(z, fake_cond)
            emb = self._embed(torch.cat([real, fake])).float() if self.metric_net is not None else None
        real_emb = fake_emb = None
        values: dict[str, torch.Tensor] = {}
        loss_g = torch.zeros((), device=self.device)
        if emb is not None:  # generator step: matching + weighted terms, gradients to G only
            real_emb, fake_emb = emb[: len(real)], emb[len(real) :]
            real_all, fake_all, real_cond_all, fake_cond_all = self._global_batch(
                real_emb, fake_emb, real_cond, fake_cond)
            matching = self._matching_loss(real_all.detach(), fake_all, real_cond_all, fake_cond_all)
            values["matching"] = matching.detach()
            values.update(getattr(self.matching, "last_terms", {}))
            loss_g = matching
        if self.terms:
            ctx = StepContext(
                step=step, z=z, fake=fake, real=real, fake_emb=fake_emb,
                real_emb=None if real_emb is None else real_emb.detach(), cond=fake_cond,
                real_cond=real_cond, pairs=self.paired, generator=self.generator,
                metric_net=self.metric_net, task=cfg.task,
            )
            for term in self.terms:
                value = term.fn(ctx)
                values[term.name] = value.detach()
                for k, v in getattr(term.fn, "last_terms", {}).items():  # the term's own parts
                    values[k if "/" in k else f"{term.name}/{k}"] = v
                loss_g = loss_g + term.weight * value
        values["loss_g"] = loss_g.detach()
        if self.terms and self.dist.distributed:  # the terms saw this rank's shard: average them
            values = distributed.mean_over_ranks(values)
        self.g_opt.zero_grad(set_to_none=True)
        loss_g.backward(inputs=g_params, retain_graph=cfg.metric_steps > 0)
        values["grad_norm_g"] = self._clip(g_params).detach()
        # before the update: an inf gradient would leave inf moments and NaN weights behind
        self._check_finite(values, step, "generator")
        self.g_opt.step()
        if self.ema is not None:
            self.ema.update(self.generator)

        # metric step(s): the first reuses this iteration's embeddings (M is unchanged so far)
        for i in range(cfg.metric_steps):
            if i > 0:
                with torch.no_grad():
                    real, real_cond, z, fake_cond = self._draw_batch()
                    fake = self._generate(z, fake_cond)
                with self._autocast():
                    emb = self._embed(torch.cat([real, fake.detach()])).float()
                real_emb, fake_emb = emb[: len(real)], emb[len(real) :]
                real_all, fake_all, _, _ = self._global_batch(real_emb, fake_emb, None, None)
            if isinstance(self.metric_objective, MetricObjective):  # step: the fake bank's clock
                loss_m = self.metric_objective(real_all, fake_all, step=step)
            else:
                loss_m = self.metric_objective(real_all, fake_all)
            self.m_opt.zero_grad(set_to_none=True)
            loss_m.backward(inputs=m_params)
            grad_norm_m = self._clip(m_params)
            self._check_finite({"loss_m": loss_m.detach(), "grad_norm_m": grad_norm_m.detach()}, step, "metric")
            self.m_opt.step()
            values["loss_m"] = loss_m.detach()
            values["grad_norm_m"] = grad_norm_m.detach()
        for k, v in getattr(self.metric_objective, "last_stats", {}).items():
            values[k] = v
        self._last_embeddings = None if emb is None else (real_all.detach(), fake_all.detach())
        self.state.step += 1
        return values

    # ---- the loop ------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to stop after the current step (for callbacks, e.g. early stopping)."""
        self._stop = True

    def request_stop(self) -> None:
        """Stop at a step every process agrees on (safe from a signal handler): the next step in
        one process; under DDP the next logged step, where the ranks compare their requests."""
        self._stop_requested = True
        if not self.dist.distributed:
            self._stop = True

    def fit(self, steps: int | None = None) -> list[dict[str, float]]:
        """Train until ``steps`` total steps (default ``config.steps``); returns the logged history."""
        target = self.config.steps if steps is None else steps
        self.generator.train()
        if self.metric_net is not None:
            self.metric_net.train()
        self._stop = False
        self._call("on_train_start")
        while self.state.step < target and not self._stop:
            try:
                values = self.train_step()
            except TrainingDiverged as error:  # callbacks may report it (health monitor) first
                self._call("on_diverged", error)
                raise
            except ValueError as error:  # a loss's input check: NaN weights make NaN embeddings
                diverged = self._weights_diverged(error)
                if diverged is None:
                    raise
                self._call("on_diverged", diverged)
                raise diverged from error
            step = self.state.step
            if self._logged(step, target):
                record = self._record(values, step)
                self.state.history.append(record)
                self._call("on_step_end", record)
            self._call("on_step", step)
        self._call("on_train_end")
        return self.state.history

    def _logged(self, step: int, target: int) -> bool:
        """Whether ``step`` gets a record: every ``log_every`` steps, the last step, and the steps
        a callback records on (its ``record_every``, e.g. an evaluation's cadence)."""
        if step % self.config.log_every == 0 or step == target:
            return True
        return any((every := getattr(cb, "record_every", 0)) and step % every == 0 for cb in self.callbacks)

    def _record(self, values: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        record = {"step": step}
        record.update({k: float(v) for k, v in values.items()})
        if self._last_embeddings is not None:
            real_emb, fake_emb = self._last_embeddings
            record["hausdorff"] = float(hausdorff(real_emb, fake_emb))
            record["hausdorff_fake_to_real"] = float(directed_hausdorff(fake_emb, real_emb))
            record["hausdorff_real_to_fake"] = float(directed_hausdorff(real_emb, fake_emb))
            record.update(embedding_stats(real_emb, fake_emb))  # spreads for the health monitor
        record["lr_g"] = self.g_opt.param_groups[0]["lr"]
        record["time"] = time.time()
        return record

    def _call(self, hook: str, *args) -> None:
        """Run ``hook`` of the callbacks; under DDP only on rank 0, except callbacks that set
        ``all_ranks = True``, and without moving the random streams the ranks share."""
        if not self.dist.distributed:
            for cb in self.callbacks:
                fn = getattr(cb, hook, None)
                if fn is not None:
                    fn(self, *args)
            return
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None and (self.dist.is_main or getattr(cb, "all_ranks", False)):
                with distributed.preserve_random_state(self.device, self.rng):
                    fn(self, *args)
        if hook == "on_step_end":  # a stop asked on one rank (e.g. by a rank-0 callback) stops all
            self._stop = distributed.any_rank(self._stop or self._stop_requested, self.device)

    # ---- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """All training state: nets, optimizers, EMA, RNGs, data order, step, config, history."""
        state = {
            "format": 1,
            "config": self.config.to_dict(),
            "step": self.state.step,
            "history": encode_history(self.state.history),
            "generator": self.generator.state_dict(),
            "g_opt": self.g_opt.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "trainer": self.rng.get_state()},
            "batches": self.batches.state_dict(),
            "extra": self.extra_state,
        }
        if self.metric_net is not None:
            state["metric_net"] = self.metric_net.state_dict()
            state["metric_objective"] = self.metric_objective.state_dict()
            state["m_opt"] = self.m_opt.state_dict()
        if torch.cuda.is_available():
            state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
            # the GPU whose stream training draws from (under DDP, each rank's own)
            on_gpu = self.device.type == "cuda" and self.device.index is not None
            state["rng"]["cuda_device"] = self.device.index if on_gpu else torch.cuda.current_device()
        if self.ema is not None:
            state["ema"] = self.ema.module.state_dict()
        terms = {t.name: t.fn.state_dict() for t in self.terms if hasattr(t.fn, "state_dict")}
        if terms:
            state["terms"] = terms
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; a state that does not fit this trainer (missing
        parts, other shapes, another model) raises :class:`~mvm_core.errors.CheckpointError`."""
        try:
            self._load_state_dict(state)
        except CheckpointError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:
            what = f"missing entry {error}" if isinstance(error, KeyError) else str(error).strip()
            raise CheckpointError(f"the checkpoint does not fit this run's trainer: {what}. Resume"
                                  " with the config the run was trained with.") from error

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.g_opt.load_state_dict(state["g_opt"])
        if self.metric_net is not None:
            if "metric_net" not in state:
                raise ValueError("the checkpoint has no metric network but this trainer has one.")
            self.metric_net.load_state_dict(state["metric_net"])
            _load_tolerating_extra_state(self.metric_objective, state["metric_objective"])
            self.m_opt.load_state_dict(state["m_opt"])
        for opt, key in ((self.g_opt, "g_opt"), (self.m_opt, "m_opt")):
            if opt is not None:
                _check_optimizer_shapes(opt, key)
        rng = state["rng"]  # RNG states are CPU byte tensors, wherever the rest was loaded
        torch.set_rng_state(rng["torch"].cpu())
        self.rng.set_state(rng["trainer"].cpu())
        if "cuda" in rng and torch.cuda.is_available():
            if self.dist.distributed and self.device.type == "cuda":  # all ranks: the saver's stream
                saved = rng["cuda"][rng.get("cuda_device", 0)]
                torch.cuda.set_rng_state(saved.cpu(), self.device)
            else:
                torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        self.batches.load_state_dict(state["batches"])
        if self.ema is not None:
            if "ema" not in state:
                raise ValueError("the checkpoint has no EMA weights but this trainer uses ema_decay.")
            self.ema.module.load_state_dict(state["ema"])
        for t in self.terms:
            if hasattr(t.fn, "load_state_dict") and t.name in state.get("terms", {}):
                t.fn.load_state_dict(state["terms"][t.name])
        self.state = TrainerState(step=int(state["step"]), history=decode_history(state.get("history", [])))

    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        """Atomically write all state to ``path`` (default ``run_dir/checkpoint.safetensors``).

        Under DDP only rank 0 writes (every rank holds the same state); the path is returned on all.
        """
        if path is None:
            if self.run_dir is None:
                raise ValueError("pass a path or give the trainer a run_dir to save checkpoints.")
            path = self.run_dir / FILENAME
        if not self.dist.is_main:
            return Path(path)
        return save_checkpoint(path, self.state_dict())

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore all state saved by :meth:`save_checkpoint` (a file or a run folder).

        Under DDP rank 0 reads the file and sends the state to the other ranks, so every rank
        resumes from the same state and only rank 0's machine needs the file.
        """
        if self.dist.distributed:
            self.load_state_dict(distributed.on_main(lambda: load_checkpoint(path, device="cpu")))
            return
        self.load_state_dict(load_checkpoint(path, device="cpu"))  # load_state_dict places it

    def write_json(self, name: str, payload: Any) -> Path | None:
        """Write a JSON file into the run folder (atomic replace); None when nothing is written
        (no run folder, or a rank other than 0 under DDP)."""
        if self.run_dir is None or not self.dist.is_main:
            return None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        try:
            tmp.write_text(json.dumps(payload, indent=2, default=float))
            tmp.replace(path)
        except BaseException:  # e.g. a full disk: no partial file left behind
            tmp.unlink(missing_ok=True)
            raise
        return path
