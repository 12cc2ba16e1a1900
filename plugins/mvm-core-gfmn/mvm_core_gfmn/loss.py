"""GFMN feature matching as a generator term: ``term(ctx) -> scalar`` over frozen extractors.

For every extractor ``E`` (weight ``w_E``) and every selected layer ``j``, the generated batch's
feature mean and unbiased variance are compared with the real data's (computed once over the whole
dataset, see :mod:`mvm_core_gfmn.statistics`) through an estimator of the difference
(:mod:`mvm_core_gfmn.estimators`: minibatch, MA or AMA)::

    L = sum_E w_E sum_j r_j [ est(mu_j(real) - mu_j(G)) + est(var_j(real) - var_j(G)) ]

with ``r_j = 1`` for ``reduction="sum"`` (the paper's loss) or ``1 / dim_j`` for ``"mean"`` (each
layer weighs the same whatever its size). Used alone it is GFMN training (``mvm train --method
gfmn``); added with a weight to MvM's manifold matching it anchors the generator to fixed
pretrained features.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import torch
from mvm_core.context import StepContext
from mvm_core.features import FeatureExtractor

from .cache import cached_real_statistics
from .estimators import DifferenceEstimator, make_estimator
from .statistics import FeatureStatistics, compute_real_statistics

STATISTICS = ("mean", "var")
REDUCTIONS = ("sum", "mean")


def _device_of(module: torch.nn.Module) -> torch.device | None:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return None


def _dtype_of(module: torch.nn.Module) -> torch.dtype | None:
    for tensor in module.parameters():
        return tensor.dtype
    return None


class GFMNTerm:
    """Feature-matching generator term over one or several frozen extractors.

    Args:
        extractors: a :class:`~mvm_core.features.FeatureExtractor` or a sequence of them (GFMN's
            best setting combines VGG19 and ResNet18). They are frozen here (``freeze()``).
        real_statistics: one :class:`FeatureStatistics` per extractor, covering its selected
            layers (from :func:`compute_real_statistics` or :func:`cached_real_statistics`).
        extractor_weights: weight of each extractor's loss (default 1 each).
        estimator: ``"ama"`` (default, GFMN), ``"ma"``, ``"minibatch"``, or an estimator instance.
        estimator_options: keyword options of the named estimator, e.g. ``{"lr": 1e-4}`` for AMA
            or ``{"alpha": 0.05}`` for MA.
        match_variance: also match the per-feature variances (GFMN does).
        reduction: ``"sum"`` over features (the paper) or ``"mean"`` per layer.
        names: name of each extractor in logs and state keys (default: class names).

    Call it with a :class:`~mvm_core.context.StepContext` (reads ``ctx.fake``) or use
    :meth:`loss` on a batch of images in [-1, 1]. Each call advances the MA/AMA state by one step.
    The term follows the device of the generated images: extractors, statistics and state move
    there on first use (or call :meth:`to`).
    """

    needs_pairs = False

    def __init__(
        self,
        extractors: FeatureExtractor | Sequence[FeatureExtractor],
        real_statistics: FeatureStatistics | Sequence[FeatureStatistics],
        *,
        extractor_weights: Sequence[float] | None = None,
        estimator: str | DifferenceEstimator = "ama",
        estimator_options: Mapping[str, object] | None = None,
        match_variance: bool = True,
        reduction: str = "sum",
        names: Sequence[str] | None = None,
    ):
        self.extractors = self._as_list("extractors", extractors, FeatureExtractor)
        stats = self._as_list("real_statistics", real_statistics, FeatureStatistics)
        count = len(self.extractors)
        if len(stats) != count:
            raise ValueError(
                f"real_statistics must give one FeatureStatistics per extractor: {count}"
                f" extractor(s), {len(stats)} statistics."
            )
        weights = [1.0] * count if extractor_weights is None else [float(w) for w in
                                                                     extractor_weights]
        if len(weights) != count or any(w < 0 for w in weights):
            raise ValueError(
                f"extractor_weights must be {count} non-negative number(s); got"
                f" {extractor_weights!r}."
            )
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}.")
        self.names = self._names(names)
        for name, extractor, stat in zip(self.names, self.extractors, stats):
            if not extractor.selected:
                raise ValueError(f"extractor {name!r} selects no layers; select at least one.")
            missing = [layer for layer in extractor.selected if layer not in stat.mean]
            if missing:
                raise ValueError(
                    f"real statistics for extractor {name!r} lack layer(s) {missing} (they cover"
                    f" {list(stat.layers)}); compute them with the same extractor and layers."
                )
            extractor.freeze()
        self.real_statistics = stats
        self.extractor_weights = weights
        self.estimator = make_estimator(estimator, **dict(estimator_options or {}))
        self.match_variance = bool(match_variance)
        self.reduction = reduction
        self._real: dict[tuple, dict[str, torch.Tensor]] = {}
        self._state: dict[str, dict[str, torch.Tensor]] = {}
        for name, extractor, stat in zip(self.names, self.extractors, stats):
            for layer in extractor.selected:
                for which in self._statistics():
                    like = torch.zeros_like(stat.mean[layer], dtype=torch.float32)
                    self._state[f"{name}/{layer}/{which}"] = self.estimator.init_state(like)
        # Logs of the last call (detached): the plain minibatch matching loss, whatever the
        # estimator (AMA's loss value v^T Delta is not a distance), in total and per layer.
        self.last_matching_loss: torch.Tensor | None = None
        self.last_layer_losses: dict[str, torch.Tensor] = {}
        self.last_terms: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ construction helpers
    @staticmethod
    def _as_list(arg: str, value: object, kind: type) -> list:
        if isinstance(value, kind):
            items = [value]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise TypeError(
                f"{arg} must be a {kind.__name__} or a sequence of them; got"
                f" {type(value).__name__}."
            )
        bad = [type(v).__name__ for v in items if not isinstance(v, kind)]
        if not items or bad:
            raise TypeError(
                f"{arg} must be a {kind.__name__} or a non-empty sequence of them; got"
                f" {bad or 'an empty sequence'}."
            )
        return items

    def _names(self, names: Sequence[str] | None) -> list[str]:
        if names is None:
            base = [type(e).__name__ for e in self.extractors]
            names = [b if base.count(b) == 1 else f"{b}.{i}" for i, b in enumerate(base)]
        names = [str(n) for n in names]
        if len(names) != len(self.extractors) or len(set(names)) != len(names):
            raise ValueError(
                f"names must be {len(self.extractors)} distinct string(s); got {names!r}."
            )
        return names

    def _statistics(self) -> tuple[str, ...]:
        return STATISTICS if self.match_variance else STATISTICS[:1]

    @classmethod
    def from_data(
        cls,
        extractors: FeatureExtractor | Sequence[FeatureExtractor],
        batches: Iterable | Callable[[], Iterable],
        *,
        dataset_key: str | None = None,
        cache_dir: str | Path | None = None,
        device: torch.device | str | None = None,
        **options,
    ) -> GFMNTerm:
        """Compute (or load from the cache) the real statistics, then build the term.

        ``batches`` is an iterable of real image batches, or a zero-argument callable returning
        a fresh one; with several extractors it must be re-iterable (a list, a DataLoader) or a
        callable. With ``dataset_key`` the statistics are cached (see :mod:`mvm_core_gfmn.cache`);
        without, they are recomputed. ``device`` moves the extractors there first. Other keyword
        arguments go to :class:`GFMNTerm`.
        """
        extractor_list = cls._as_list("extractors", extractors, FeatureExtractor)
        if device is not None:
            for extractor in extractor_list:
                extractor.to(device)

        def fresh() -> Iterable:
            return batches() if callable(batches) else batches

        if (len(extractor_list) > 1 and not callable(batches)
                and iter(batches) is batches):  # type: ignore[arg-type]
            raise ValueError(
                "batches is a one-shot iterator but there are several extractors; pass a list, a"
                " DataLoader, or a zero-argument function returning a fresh iterator."
            )
        stats = []
        for extractor in extractor_list:
            if dataset_key is None:
                stats.append(compute_real_statistics(extractor, fresh(), device=device))
            else:
                stats.append(cached_real_statistics(
                    extractor, fresh(), dataset_key=dataset_key, cache_dir=cache_dir,
                    device=device,
                ))
        return cls(extractor_list, stats, **options)

    # ------------------------------------------------------------------------------ the loss
    def __call__(self, ctx: StepContext) -> torch.Tensor:
        fake = getattr(ctx, "fake", None)
        if not isinstance(fake, torch.Tensor):
            raise TypeError(
                "GFMNTerm reads ctx.fake (generated images (N, C, H, W) in [-1, 1]); got"
                f" {type(ctx).__name__} without it. Call term.loss(images) for plain tensors."
            )
        return self.loss(fake)

    def loss(self, fake: torch.Tensor) -> torch.Tensor:
        """Generator loss for a batch of generated images (N, C, H, W) in [-1, 1]."""
        if not isinstance(fake, torch.Tensor) or fake.ndim != 4:
            got = tuple(fake.shape) if isinstance(fake, torch.Tensor) else type(fake).__name__
            raise ValueError(f"fake must be images of shape (N, C, H, W); got {got}.")
        if self.match_variance and fake.shape[0] < 2:
            raise ValueError(
                f"matching variances needs at least 2 generated images per batch; got"
                f" {fake.shape[0]}. Use a larger batch or match_variance=False."
            )
        total = fake.new_zeros(())
        matching = fake.new_zeros(())
        layer_losses: dict[str, torch.Tensor] = {}
        for index, (name, extractor) in enumerate(zip(self.names, self.extractors)):
            where = _device_of(extractor)
            if where is not None and where != fake.device:
                extractor.to(fake.device)  # follow the generator (once: e.g. built on CPU)
            dtype = _dtype_of(extractor)
            features = extractor(fake if dtype is None or fake.dtype == dtype else fake.to(dtype))
            weight = self.extractor_weights[index]
            real = self._real_on(index, fake.device, features)
            for layer in extractor.selected:
                rows = features[layer].flatten(1)
                if rows.dtype in (torch.float16, torch.bfloat16):
                    rows = rows.float()  # statistics in at least float32
                if rows.shape[1] != real[f"{layer}/mean"].shape[0]:
                    raise ValueError(
                        f"extractor {name!r} layer {layer!r} gives {rows.shape[1]} features per"
                        f" image, the real statistics {real[f'{layer}/mean'].shape[0]}: generated"
                        " and real images must have the same size and channels (and the"
                        " extractor the same input_size)."
                    )
                scale = weight / (rows.shape[1] if self.reduction == "mean" else 1)
                fake_stats = {"mean": rows.mean(0)}
                if self.match_variance:
                    fake_stats["var"] = rows.var(0, unbiased=True)
                plain = rows.new_zeros(())
                for which, value in fake_stats.items():
                    delta = real[f"{layer}/{which}"] - value
                    state = self._state_on(f"{name}/{layer}/{which}", delta)
                    total = total + scale * self.estimator.loss(delta, state)
                    plain = plain + delta.detach().square().sum()
                layer_losses[f"{name}/{layer}"] = plain
                matching = matching + scale * plain
        self.last_matching_loss = matching.detach()
        self.last_layer_losses = layer_losses
        self.last_terms = {"gfmn/matching": self.last_matching_loss}
        self.last_terms.update({f"gfmn/{key}": value for key, value in layer_losses.items()})
        return total

    def _real_on(self, index: int, device: torch.device,
                 features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        dtype = torch.promote_types(next(iter(features.values())).dtype, torch.float32)
        key = (index, device, dtype)
        if key not in self._real:
            stat = self.real_statistics[index]
            self._real[key] = {
                f"{layer}/{which}": getattr(stat, which)[layer].to(device=device, dtype=dtype)
                for layer in self.extractors[index].selected
                for which in STATISTICS
            }
        return self._real[key]

    def _state_on(self, key: str, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """The estimator state of ``key`` on ``like``'s device, floating tensors in its dtype."""
        state = self._state[key]
        for name, tensor in state.items():
            dtype = like.dtype if tensor.is_floating_point() else tensor.dtype
            if tensor.device != like.device or tensor.dtype != dtype:
                state[name] = tensor.to(device=like.device, dtype=dtype)
        return state

    # ---------------------------------------------------------------------- state and devices
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Estimator state (v, Adam moments, step) as ``{"<name>/<layer>/<mean|var>/<field>":
        tensor}``: tensors only, ready for safetensors; restore with :meth:`load_state_dict`."""
        return {
            f"{key}/{field}": tensor.detach().clone()
            for key, state in self._state.items()
            for field, tensor in state.items()
        }

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned (same extractors, layers and estimator)."""
        expected = self.state_dict()
        missing = sorted(set(expected) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(expected))
        if missing or unexpected:
            raise ValueError(
                f"state_dict does not match this term (estimator {self.estimator.name!r}):"
                f" missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected"
                f" {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}. Build the term with"
                " the same extractors, layers, estimator and match_variance."
            )
        for full_key, value in state_dict.items():
            key, field = full_key.rsplit("/", 1)
            current = self._state[key][field]
            if tuple(value.shape) != tuple(current.shape):
                raise ValueError(
                    f"state_dict[{full_key!r}] has shape {tuple(value.shape)}; expected"
                    f" {tuple(current.shape)}."
                )
            self._state[key][field] = value.detach().to(
                device=current.device, dtype=current.dtype).clone()

    def to(self, device: torch.device | str) -> GFMNTerm:
        """Move the extractors and the estimator state to ``device``."""
        for extractor in self.extractors:
            extractor.to(device)
        for state in self._state.values():
            for field, tensor in state.items():
                state[field] = tensor.to(device)
        self._real.clear()
        return self

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{n}[{len(e.selected)} layers]x{w:g}"
            for n, e, w in zip(self.names, self.extractors, self.extractor_weights)
        )
        return (f"GFMNTerm({parts}, estimator={self.estimator!r},"
                f" match_variance={self.match_variance}, reduction={self.reduction!r})")
