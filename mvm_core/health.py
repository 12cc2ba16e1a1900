"""Run health: is this MvM run training, and if not, how is it failing?

Everything here reads what the trainer already logs (``Trainer._record``: both losses, Hausdorff
distances, gradient norms, tuple statistics and the embedding statistics of
:func:`embedding_stats`); no extra forward pass is ever made.

* :func:`diagnose` turns a logged history (plus, when known, the final quality metrics and a
  divergence event) into a report: a verdict, the failure modes found (each with its rule, the
  numbers behind it and the step where it started), the trends a person reads (matching slope and
  monotonicity, the band of the metric loss, Hausdorff distances, spreads, gradient norms,
  satisfied tuples) and advice.
* :class:`HealthMonitor` is the trainer callback: a short status for the progress bar, one log
  warning per failure mode when it appears, and the report in the run's final JSON.
* :func:`save_health_plot` draws both losses, the Hausdorff distances and the diameters over steps.

The rules and thresholds are in :class:`Thresholds`; ``docs/reading-a-run.md`` gives the measured
runs behind each number (``benchmarks/health/evidence.py``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .files import own_file

logger = logging.getLogger("mvm_core.health")

# failure modes in order of priority: the first one found is the verdict (it explains the others)
FAILURE_MODES: dict[str, str] = {
    "divergence": "losses or embeddings became NaN/inf or blew up",
    "metric_collapse": "the metric network stopped telling samples apart",
    "generator_collapse": "the generated samples collapsed onto a few points",
    "metric_idle": "the metric network stopped learning: its loss and gradient sit at zero",
    "oscillation": "the metric loss swings far beyond its usual band",
    "stalled_matching": "the matching loss stopped falling while sample quality is poor",
}

ADVICE: dict[str, str] = {
    "divergence": "lower g_lr / m_lr (10x), set grad_clip (e.g. 1.0), check that the data is scaled"
                  " to about [-1, 1]; resume from a checkpoint saved before the step it started.",
    "metric_collapse": "the embeddings shrank to a point: check the metric network's forward (does"
                       " it use its input?) and lower m_lr.",
    "metric_idle": "every mined tuple reads as satisfied, so the metric loss is 0 and the metric"
                   " network is a fixed random map: use a loss that keeps a gradient (MvMTripletLoss"
                   " with guidance_reduction='mean', a larger margin, smooth=True, a contrastive"
                   " loss: the default preset) or harder mining (--miner default).",
    "generator_collapse": "check that the generator uses z (its output must change with z); add a"
                          " diversity term (--regularizers msgan:mode-seeking=1) or use energy"
                          " matching (the default preset), and lower g_lr.",
    "oscillation": "lower m_lr (or both learning rates), use a decaying lr_schedule (cosine),"
                   " or enable EMA of the generator (ema_decay 0.99).",
    "stalled_matching": "the metric no longer shows the generator what differs: train the metric"
                        " harder (metric_steps 2, a larger emb_dim, a stronger metric loss), raise"
                        " g_lr if the generator barely moves, or change the matching loss (energy).",
}

LOSS_KEYS = ("matching", "loss_g", "loss_m")
GRAD_KEYS = ("grad_norm_g", "grad_norm_m")


@dataclass(frozen=True)
class Thresholds:
    """Every number the rules use. ``docs/reading-a-run.md`` lists the runs each was set from:
    healthy defaults (ring, digits, several seeds, full and short budgets) and engineered failures.
    """

    # windows
    final_window: float = 0.2  # the run's final state: median over the last 20% of records
    min_window: int = 5  # ... and never fewer than 5 records
    min_records: int = 10  # fewer logged records: only divergence is judged (too short to tell)
    warmup: float = 0.1  # live monitoring starts after 10% of the planned steps
    # divergence
    growth: float = 1e3  # a loss, gradient norm or embedding norm grows 1000x over its first value
    emb_norm: float = 1e3  # rms norm of real embeddings (default runs: <= 2; blow-ups: 5e4-3e12)
    # metric collapse
    spread: float = 1e-4  # real diameter / real rms norm: the embeddings are one point
    # metric idle
    idle: float = 1e-3  # metric gradient norm below 0.1% of its peak: the metric stopped learning
    satisfied: float = 0.99  # ... with every mined tuple satisfied (or the loss at 0.1% of its peak)
    idle_share: float = 0.5  # or: loss_m exactly 0 on half the records of the final window
    # divergence: growth is measured from the first logged value, never from less than this
    # share of the first half's median (a loss that starts near 0 and rises to its level is not
    # a blow-up: 4e-5 -> 0.06 in a healthy grid run)
    growth_base: float = 1e-2
    # generator collapse
    diameter_ratio: float = 0.1  # generated diameter below 10% of the real one
    duplicates: float = 0.5  # half the generated samples are near-copies of another
    # oscillation
    band: float = 1.0  # (q90 - q10) / median of the metric loss over the final window
    # stalled matching
    falling: float = -0.3  # Spearman rank correlation of matching vs step over the last half
    stall_min_steps: int = 1500  # shorter runs are poor because short: not judged, unless the
    #   quality was evaluated during training (eval_every) or the matching loss ends above its start
    improving_fid: float = 0.05  # FID fell by 5% over the last half of the evaluations: improving
    improving_high_quality: float = 0.02  # high-quality share rose by 0.02: improving
    # quality judged poor (stalled matching needs it)
    poor_high_quality: float = 0.5  # PacGAN high-quality share (2D mixtures)
    poor_fid_digits: float = 150.0  # FID@digits-classifier
    poor_precision_recall: float = 0.1  # precision or recall in any feature space
    # embedding size (a warning, not a failure)
    saturated: float = 0.97  # emb_dim_used above this: every dimension used as fully as isotropic
    saturated_max_dim: int = 16  # ... only warned for embeddings this small or smaller


@dataclass
class Failure:
    """One failure mode found: the rule that fired, its numbers, and the step where it started."""

    mode: str
    step: int
    rule: str
    evidence: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "step": self.step, "rule": self.rule, "evidence": self.evidence,
                "meaning": FAILURE_MODES[self.mode], "advice": ADVICE[self.mode]}


# ---------------------------------------------------------------------------------------------
# what the trainer logs


@torch.no_grad()
def embedding_stats(real_emb: torch.Tensor, fake_emb: torch.Tensor) -> dict[str, float]:
    """Spread of the real and generated embeddings of one batch (logged at log steps only).

    Returns (all Euclidean, in the metric network's units):

    * ``emb_dim``: the embedding size d;
    * ``diameter_real`` / ``diameter_fake``: mean pairwise distance within each set (the
      1-diameter of MvM's p-diameters);
    * ``emb_var_real`` / ``emb_var_fake``: total variance (trace of the covariance);
    * ``emb_norm_real``: root mean square norm of the real embeddings (the scale that a spread is
      compared with: a constant network has spread 0 at any norm);
    * ``emb_dim_eff``: effective dimension of the real embeddings, the participation ratio
      ``(sum l)^2 / sum l^2`` of their covariance eigenvalues ``l`` (1 = a line, d = isotropic);
    * ``emb_dim_used``: ``emb_dim_eff`` over its value for isotropic Gaussian embeddings of the same
      batch size n, ``n d / (n + d)`` (Marchenko-Pastur): near 1, every dimension is used as fully
      as a batch of n can show (the embedding is saturated); near 0, a few dimensions carry it all;
    * ``fake_duplicates``: share of generated rows whose nearest other generated row is closer than
      a tenth of the real rows' median nearest-neighbour distance (near-copies: few distinct samples).
    """
    real, fake = real_emb.detach().double(), fake_emb.detach().double()
    out: dict[str, float] = {"emb_dim": float(real.shape[1])}
    nn_real = None
    for name, x in (("real", real), ("fake", fake)):
        n = x.shape[0]
        if n < 2:
            continue
        d = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")  # exact 0 for copies
        out[f"diameter_{name}"] = float(d.sum() / (n * (n - 1)))
        centred = x - x.mean(0)
        out[f"emb_var_{name}"] = float(centred.pow(2).sum(1).mean())
        nearest = d.fill_diagonal_(float("inf")).min(1).values
        if name == "real":
            out["emb_norm_real"] = float(x.pow(2).sum(1).mean().sqrt())
            nn_real = nearest.median()
            eig = torch.linalg.eigvalsh(centred.T @ centred / (n - 1)).clamp_min(0)
            total = eig.sum()
            out["emb_dim_eff"] = float(total**2 / eig.pow(2).sum()) if total > 0 else 0.0
            dim = x.shape[1]
            out["emb_dim_used"] = out["emb_dim_eff"] / (n * dim / (n + dim))
        elif nn_real is not None:
            out["fake_duplicates"] = (float((nearest < 0.1 * nn_real).double().mean()) if nn_real > 0
                                      else float("nan"))
    return out


@torch.no_grad()
def suggest_emb_dim(data: torch.Tensor, variance: float = 0.9, minimum: int = 4,
                    max_samples: int = 5000, seed: int = 0) -> dict[str, int]:
    """The embedding-size rule of ``docs/reading-a-run.md`` applied to a data set.

    The metric network needs at least as many output dimensions as the number of principal
    components holding ``variance`` of the data's variance, and never fewer than ``minimum``
    (measured: digits, 21 components -> 32 is as good as 128 while 2-10 lose 45-160 FID; 2-D
    mixtures need 4, not 2). Returns ``{"pca_dims": k, "suggested": the next power of two >=
    max(minimum, k)}``. ``data``: (N, ...) samples, at most ``max_samples`` random rows are used.
    """
    x = data.detach().flatten(1).double().cpu()
    if x.shape[0] < 2:
        raise ValueError(f"suggest_emb_dim needs at least 2 samples; got {x.shape[0]}.")
    if not 0 < variance < 1:
        raise ValueError(f"variance must be in (0, 1); got {variance}.")
    if x.shape[0] > max_samples:
        x = x[torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:max_samples]]
    singular = torch.linalg.svdvals(x - x.mean(0))
    share = (singular**2).cumsum(0) / (singular**2).sum()
    k = int((share < variance).sum()) + 1
    return {"pca_dims": k, "suggested": 1 << (max(minimum, k) - 1).bit_length()}


# ---------------------------------------------------------------------------------------------
# series helpers


def _series(history: Sequence[Mapping], key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` of the records that have ``key`` (values as float, NaN kept)."""
    rows = [(r["step"], r[key]) for r in history if key in r and r[key] is not None]
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    steps, values = zip(*rows)
    return np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64)


def _smooth(values: np.ndarray, width: int = 5) -> np.ndarray:
    """Centred rolling median (truncated at the ends): one noisy record never decides a rule."""
    half = width // 2
    return np.array([np.nanmedian(values[max(0, i - half): i + half + 1]) if np.isfinite(
        values[max(0, i - half): i + half + 1]).any() else np.nan for i in range(len(values))])


def _final_streak_start(steps: np.ndarray, condition: np.ndarray) -> int:
    """Step where the last uninterrupted run of ``condition`` (ending at the last record) began."""
    start = len(condition)
    while start > 0 and condition[start - 1]:
        start -= 1
    return int(steps[min(start, len(steps) - 1)])


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation of the finite pairs (NaN for fewer than 3; 0 for a constant)."""
    from scipy.stats import spearmanr

    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3:
        return float("nan")
    if np.ptp(x[keep]) == 0 or np.ptp(y[keep]) == 0:
        return 0.0
    return float(spearmanr(x[keep], y[keep]).statistic)


def _f(value: float) -> float | None:
    """JSON-friendly float (NaN -> None), rounded to 4 significant digits."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.4g}")


# ---------------------------------------------------------------------------------------------
# quality


def quality_poor(quality: Mapping[str, float] | None, t: Thresholds = Thresholds()) -> tuple[bool | None, str]:
    """Whether final quality metrics say the samples are poor: ``(poor, reason)``; ``None`` when
    no metric the rules know is present (stalled matching is then not judged)."""
    if not quality:
        return None, "no quality metrics"
    judged = []
    for key, value in quality.items():
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        name, _, space = key.partition("@")
        if key == "high_quality@data":
            judged.append((value < t.poor_high_quality, f"{key} {value:.3g} (poor below {t.poor_high_quality})"))
        elif key == "fid@digits-classifier":
            judged.append((value > t.poor_fid_digits, f"{key} {value:.4g} (poor above {t.poor_fid_digits:g})"))
        elif name in ("precision", "recall") and space:
            judged.append((value < t.poor_precision_recall,
                           f"{key} {value:.3g} (poor below {t.poor_precision_recall})"))
    if not judged:
        return None, "no quality metric with a known threshold"
    poor = [reason for bad, reason in judged if bad]
    return (True, "; ".join(poor)) if poor else (False, "; ".join(reason for _, reason in judged))


# ---------------------------------------------------------------------------------------------
# the diagnosis


def trends(history: Sequence[Mapping]) -> dict[str, Any]:
    """What a person reads off a run: matching trend, metric-loss band, Hausdorff, spreads,
    gradient norms, satisfied tuples (start / end / extremes; JSON-friendly)."""
    out: dict[str, Any] = {}
    steps, matching = _series(history, "matching")
    if len(matching):
        half = len(matching) // 2
        out["matching"] = {
            "start": _f(matching[0]), "end": _f(matching[-1]), "min": _f(np.nanmin(matching)),
            "spearman_last_half": _f(_spearman(steps[half:].astype(float), matching[half:])),
            "change_last_half": _f(_relative_change(matching[half:])),
            "monotone_share_last_half": _f(_monotone_share(matching[half:])),
        }
    _, loss_m = _series(history, "loss_m")
    if len(loss_m):
        window = loss_m[-max(5, len(loss_m) // 5):]
        q10, q50, q90 = np.nanpercentile(window, [10, 50, 90]) if np.isfinite(window).any() else (np.nan,) * 3
        out["loss_m"] = {"start": _f(loss_m[0]), "end": _f(loss_m[-1]), "median_final": _f(q50),
                         "band_final": [_f(q10), _f(q90)],
                         "relative_band_final": _f((q90 - q10) / abs(q50)) if q50 else None}
    for key in ("hausdorff", "hausdorff_fake_to_real", "hausdorff_real_to_fake", "diameter_real",
                "diameter_fake", "emb_var_real", "emb_var_fake", "emb_dim_eff", "emb_dim_used",
                "fake_duplicates", "grad_norm_g", "grad_norm_m", "satisfied"):
        _, values = _series(history, key)
        if len(values) and np.isfinite(values).any():
            out[key] = {"start": _f(values[0]), "end": _f(values[-1]),
                        "min": _f(np.nanmin(values)), "max": _f(np.nanmax(values))}
    return out


def _relative_change(values: np.ndarray) -> float:
    """Median of the last half over the median of the first half, minus 1."""
    first, second = values[: len(values) // 2], values[len(values) // 2:]
    if len(values) < 4 or not np.isfinite(first).any() or not np.isfinite(second).any():
        return float("nan")
    a, b = np.nanmedian(first), np.nanmedian(second)
    return float(b / a - 1) if a else float("nan")


def _monotone_share(values: np.ndarray) -> float:
    """Share of consecutive records where the value fell."""
    diffs = np.diff(values[np.isfinite(values)])
    return float((diffs < 0).mean()) if len(diffs) else float("nan")


def diagnose(history: Sequence[Mapping], *, total_steps: int | None = None,
             quality: Mapping[str, float] | None = None, diverged: Mapping[str, Any] | None = None,
             thresholds: Thresholds | None = None) -> dict[str, Any]:
    """The health report of a run from its logged history.

    Args:
        history: the logged records (``Trainer.state.history`` or the lines of ``log.jsonl``).
        total_steps: the planned number of steps (for reporting how far the run got).
        quality: final quality metrics (``metrics.json`` / ``eval.json``), needed to judge stalling.
        diverged: ``{"step": int, "message": str}`` when the trainer stopped on NaN/inf.
        thresholds: the rules' numbers (default :class:`Thresholds`).

    Returns a JSON-friendly dict: ``verdict`` (``"healthy"`` or the first failure mode by
    priority), ``status`` (a short line), ``failures`` (mode, step, rule, evidence, advice),
    ``warnings``, ``evidence`` (the numbers each rule compared), ``trends`` and run facts.
    """
    t = thresholds or Thresholds()
    history = [r for r in history if "step" in r]
    n = len(history)
    failures: list[Failure] = []
    evidence: dict[str, Any] = {}
    warnings_: list[dict[str, str]] = []
    judged = n >= t.min_records
    w = max(t.min_window, math.ceil(t.final_window * n))

    def final(values: np.ndarray) -> float:
        window = values[-w:]
        return float(np.nanmedian(window)) if np.isfinite(window).any() else float("nan")

    # divergence: NaN/inf, growth over the first logged value, or an embedding scale blow-up
    failure = _divergence(history, diverged, t, evidence)
    if failure:
        failures.append(failure)

    if judged:
        # metric collapse
        steps, d_real = _series(history, "diameter_real")
        _, norm = _series(history, "emb_norm_real")
        metric_collapsed = False
        metric_idle = False  # a fixed map still tells samples apart: only oscillation is moot
        if len(d_real):
            # spread relative to the embeddings' scale; logs without emb_norm_real: absolute
            spread = _smooth(d_real / np.maximum(norm, 1e-300) if len(norm) == len(d_real) else d_real)
            evidence["real_spread"] = _f(final(spread))
            if not final(spread) >= t.spread:  # NaN (0 / 0) counts as collapsed
                start = _final_streak_start(steps, ~(spread >= t.spread))
                failures.append(Failure("metric_collapse", start, "real embeddings shrank to a point:"
                                        f" diameter / rms norm {final(spread):.3g} < {t.spread:g}",
                                        {"real_spread": _f(final(spread)),
                                         "diameter_real": _f(final(d_real))}))
                metric_collapsed = True
        steps_m, grad_m = _series(history, "grad_norm_m")
        if len(grad_m) and not metric_collapsed:
            smooth = _smooth(grad_m)
            peak = np.nanmax(smooth) if np.isfinite(smooth).any() else float("nan")
            idle_ratio = final(smooth) / peak if peak and np.isfinite(peak) and peak > 0 else float("nan")
            evidence["metric_grad_ratio"] = _f(idle_ratio)
            _, satisfied = _series(history, "satisfied")
            _, loss_m = _series(history, "loss_m")
            sat = final(satisfied) if len(satisfied) else float("nan")
            loss_peak = np.nanmax(_smooth(loss_m)) if len(loss_m) else float("nan")
            loss_ratio = final(loss_m) / loss_peak if len(loss_m) and loss_peak > 0 else float("nan")
            evidence["satisfied_share"] = _f(sat)
            evidence["metric_loss_ratio"] = _f(loss_ratio)
            all_satisfied = (sat >= t.satisfied) if np.isfinite(sat) else (loss_ratio <= t.idle)
            zero = (np.abs(loss_m[-w:]) <= 1e-12) & (grad_m[-w:] <= 1e-12) if len(loss_m) == len(grad_m) \
                else np.zeros(0, bool)
            zero_share = float(zero.mean()) if len(zero) else 0.0
            evidence["metric_zero_share"] = _f(zero_share)
            if len(zero) and zero_share >= t.idle_share:
                exact_zero = (np.abs(loss_m) <= 1e-12) & (grad_m <= 1e-12)
                start = _final_streak_start(steps_m, _smooth(exact_zero.astype(float)) >= t.idle_share)
                failures.append(Failure("metric_idle", start, "the metric network is idle: loss and"
                                        f" gradient exactly 0 on {zero_share:.0%} of the final {w}"
                                        f" records (>= {t.idle_share:.0%}); mined tuples satisfied:"
                                        f" {sat:.0%}", {"metric_zero_share": _f(zero_share),
                                                         "satisfied_share": _f(sat)}))
                metric_idle = True
            elif np.isfinite(idle_ratio) and idle_ratio <= t.idle and all_satisfied:
                idle = smooth <= t.idle * peak
                start = _final_streak_start(steps_m, idle)
                what = (f"{sat:.0%} of mined tuples satisfied" if np.isfinite(sat)
                        else f"metric loss at {loss_ratio:.2g} of its peak")
                failures.append(Failure("metric_idle", start, "the metric network stopped learning:"
                                        f" gradient norm at {idle_ratio:.2%} of its peak (<= {t.idle:.1%}),"
                                        f" {what}", {"metric_grad_ratio": _f(idle_ratio),
                                                     "satisfied_share": _f(sat),
                                                     "metric_loss_ratio": _f(loss_ratio)}))
                metric_idle = True

        # generator collapse (only visible through a metric that still separates samples)
        steps_f, d_fake = _series(history, "diameter_fake")
        _, dups = _series(history, "fake_duplicates")
        if len(d_fake) == len(d_real) and len(d_fake) and not metric_collapsed:
            ratio = _smooth(d_fake / np.where(d_real > 0, d_real, np.nan))
            dup = _smooth(dups) if len(dups) == len(d_fake) else np.full(len(d_fake), np.nan)
            evidence["diameter_ratio"] = _f(final(ratio))
            evidence["fake_duplicates"] = _f(final(dup))
            bad = (ratio < t.diameter_ratio) | (dup >= t.duplicates)
            if final(ratio) < t.diameter_ratio or final(dup) >= t.duplicates:
                failures.append(Failure("generator_collapse", _final_streak_start(steps_f, bad),
                                        f"generated diameter at {final(ratio):.3g} of the real one"
                                        f" (< {t.diameter_ratio:g}) or {final(dup):.3g} of samples"
                                        f" near-duplicates (>= {t.duplicates:g})",
                                        {"diameter_ratio": _f(final(ratio)), "fake_duplicates": _f(final(dup)),
                                         "diameter_fake": _f(final(d_fake)), "diameter_real": _f(final(d_real))}))

        # oscillation beyond the band of the metric loss
        steps_l, loss_m = _series(history, "loss_m")
        if len(loss_m) >= t.min_records and not (metric_collapsed or metric_idle):
            band = _rolling_band(loss_m, w)
            evidence["loss_m_band"] = _f(band[-1])
            if np.isfinite(band[-1]) and band[-1] > t.band:
                failures.append(Failure("oscillation", _final_streak_start(steps_l, band > t.band),
                                        f"metric loss band (q90 - q10) / median = {band[-1]:.3g} over"
                                        f" the final {w} records (> {t.band:g})",
                                        {"loss_m_band": _f(band[-1]), "loss_m_median": _f(final(loss_m))}))

        # stalled matching: not falling over the last half while quality is poor and not improving
        steps_g, matching = _series(history, "matching")
        improving, periodic = _quality_trend(history, t)
        poor, reason = quality_poor(quality or periodic, t)
        run_steps = int(history[-1]["step"])  # steps trained so far (not the planned total)
        # a short run is poor because it is short, unless the matching loss ends above where it
        # started (the metric pulls away faster than the generator follows: frozen generator)
        lost_ground = bool(len(matching) >= t.min_records and final(matching) > matching[0])
        stall_judged = poor is not None and (improving is not None or run_steps >= t.stall_min_steps
                                             or lost_ground)
        evidence["matching_lost_ground"] = lost_ground
        evidence["quality_poor"] = poor
        evidence["quality_improving"] = improving
        evidence["stall_judged"] = stall_judged
        if len(matching) >= t.min_records:
            half = len(matching) // 2
            rho = _spearman(steps_g[half:].astype(float), matching[half:])
            evidence["matching_spearman"] = _f(rho)
            evidence["matching_change"] = _f(_relative_change(matching[half:]))
            if stall_judged and poor and not (rho <= t.falling) and improving is not True:
                failures.append(Failure("stalled_matching", int(steps_g[half]),
                                        f"matching not falling over the last half (Spearman {rho:.2f}"
                                        f" > {t.falling:g}) while quality is poor and not improving:"
                                        f" {reason}", {"matching_spearman": _f(rho),
                                                       "matching_change": evidence["matching_change"]}))

        # embedding size: saturated embeddings of a small size
        _, used = _series(history, "emb_dim_used")
        _, dim = _series(history, "emb_dim")
        _, eff = _series(history, "emb_dim_eff")
        if len(used) and len(dim) and not metric_collapsed:
            evidence["emb_dim_used"] = _f(final(used))
            evidence["emb_dim_eff"] = _f(final(eff)) if len(eff) else None
            d = int(dim[-1])
            if final(used) >= t.saturated and d <= t.saturated_max_dim:
                warnings_.append({"kind": "emb_dim_too_small", "message": (
                    f"the {d}-d embedding is saturated (every dimension used: emb_dim_used"
                    f" {final(used):.2f} >= {t.saturated}): it is too small for what the metric"
                    f" has to separate; try emb_dim {max(4, 2 * d)} or more, or the size rule"
                    " mvm_core.health.suggest_emb_dim(data) (docs/reading-a-run.md)")})

    failures.sort(key=lambda f: list(FAILURE_MODES).index(f.mode))
    unique: dict[str, Failure] = {}
    for f in failures:
        unique.setdefault(f.mode, f)
    failures = list(unique.values())
    verdict = failures[0].mode if failures else "healthy"
    last_step = int(history[-1]["step"]) if history else 0
    if diverged:
        last_step = max(last_step, int(diverged.get("step", last_step)))
    if failures:
        status = f"{verdict.replace('_', ' ')} since step {failures[0].step}"
    else:
        status = "ok" if judged else "ok (too early to judge trends)"
    return {
        "verdict": verdict,
        "status": status,
        "failures": [f.as_dict() for f in failures],
        "warnings": warnings_,
        "evidence": evidence,
        "trends": trends(history),
        "records": n,
        "last_step": last_step,
        "total_steps": total_steps,
        "judged": judged,
        "quality": dict(quality) if quality else {},
        "thresholds": asdict(t),
    }


_PRIMARY_QUALITY = (("high_quality@data", +1), ("fid@digits-classifier", -1), ("fid@mnist-classifier", -1))


def _quality_trend(history: Sequence[Mapping], t: Thresholds) -> tuple[bool | None, dict[str, float]]:
    """Quality evaluated during training (``eval_every``): ``(improving, last evaluation)``.

    Improving compares the last evaluation with the one at half the run (high-quality share up by
    ``t.improving_high_quality``, or FID down by ``t.improving_fid``); ``None`` with fewer than two
    evaluations of a metric the rules know.
    """
    for key, sign in _PRIMARY_QUALITY:
        steps, values = _series(history, key)
        keep = np.isfinite(values)
        steps, values = steps[keep], values[keep]
        if len(values) < 2:
            continue
        record = next(r for r in reversed(history) if key in r)
        last = {k: v for k, v in record.items() if "@" in k}
        before_half = np.nonzero(steps <= steps[-1] / 2)[0]
        mid = values[before_half[-1]] if len(before_half) else values[0]
        if sign > 0:
            return bool(values[-1] - mid >= t.improving_high_quality), last
        return bool(values[-1] <= (1 - t.improving_fid) * mid), last
    return None, {}


def _rolling_band(values: np.ndarray, width: int) -> np.ndarray:
    """(q90 - q10) / |median| over the ``width`` records ending at each record."""
    out = np.full(len(values), np.nan)
    for i in range(len(values)):
        window = values[max(0, i - width + 1): i + 1]
        window = window[np.isfinite(window)]
        if len(window) >= 3:
            q10, q50, q90 = np.percentile(window, [10, 50, 90])
            out[i] = (q90 - q10) / abs(q50) if q50 else np.inf
    return out


def _divergence(history: Sequence[Mapping], diverged: Mapping[str, Any] | None, t: Thresholds,
                evidence: dict[str, Any]) -> Failure | None:
    """The earliest of: NaN/inf (logged, or the trainer's stop), a loss / gradient norm / embedding
    scale above ``t.growth`` times its first logged value, an embedding norm above ``t.emb_norm``
    (a blow-up before the first log, which growth cannot see)."""
    candidates: list[Failure] = []
    if diverged:
        candidates.append(Failure("divergence", int(diverged.get("step", 0)),
                                  f"the trainer stopped on NaN/inf: {diverged.get('message', '')}".strip()))
    keys = LOSS_KEYS + GRAD_KEYS + ("emb_norm_real", "diameter_real")
    for record in history:
        bad = [k for k in keys if k in record and record[k] is not None and not math.isfinite(record[k])]
        if bad:
            candidates.append(Failure("divergence", int(record["step"]), f"{', '.join(bad)} became NaN/inf"))
            break
    growth_max, first_hit = 0.0, None
    for key in keys:
        steps, values = _series(history, key)
        if len(values) < 2 or not np.isfinite(values[0]):
            continue
        first_half = np.abs(values[: max(1, len(values) // 2)])
        base = max(abs(float(values[0])), t.growth_base * float(np.nanmedian(first_half)))
        if not base > 1e-12:
            continue
        growth = np.abs(values) / base
        finite = growth[np.isfinite(growth)]
        growth_max = max(growth_max, float(finite.max()) if len(finite) else 0.0)
        hits = np.nonzero(np.isfinite(growth) & (growth > t.growth))[0]
        if len(hits) and (first_hit is None or steps[hits[0]] < first_hit[0]):
            first_hit = (int(steps[hits[0]]), key, base, float(values[hits[0]]))
    evidence["growth"] = _f(growth_max)
    if first_hit:
        step, key, v0, v = first_hit
        candidates.append(Failure("divergence", step, f"{key} grew from {v0:.3g} to {v:.3g} (>"
                                  f" {t.growth:g}x its first logged value)", {"growth": _f(v / v0), key: _f(v)}))
    steps, norm = _series(history, "emb_norm_real")
    finite = norm[np.isfinite(norm)]
    evidence["emb_norm_max"] = _f(float(finite.max())) if len(finite) else None
    hits = np.nonzero(np.isfinite(norm) & (norm > t.emb_norm))[0]
    if len(hits):
        candidates.append(Failure("divergence", int(steps[hits[0]]), f"embedding rms norm"
                                  f" {norm[hits[0]]:.3g} > {t.emb_norm:g} (initialized networks give"
                                  " ~0.1-1)", {"emb_norm_real": _f(float(norm[hits[0]]))}))
    return min(candidates, key=lambda f: f.step) if candidates else None


# ---------------------------------------------------------------------------------------------
# reading a report


def format_report(report: Mapping[str, Any]) -> str:
    """The report as text: verdict, each failure with its numbers and start step, the trends."""
    lines = []
    total = report.get("total_steps")
    progress = f"step {report['last_step']}" + (f" of {total}" if total else "")
    progress += f", {report['records']} logged records"
    if report["verdict"] == "healthy":
        lines.append(f"verdict: healthy ({progress})")
        if not report["judged"]:
            lines.append("  too few records to judge trends; only divergence was checked")
    else:
        lines.append(f"verdict: {report['verdict'].replace('_', ' ').upper()} ({progress})")
    for failure in report["failures"]:
        lines.append(f"- {failure['mode'].replace('_', ' ')} since step {failure['step']}:"
                     f" {failure['meaning']}")
        lines.append(f"    rule: {failure['rule']}")
        numbers = ", ".join(f"{k} {v:.4g}" for k, v in failure["evidence"].items()
                            if isinstance(v, (int, float)))
        if numbers:
            lines.append(f"    evidence: {numbers}")
        lines.append(f"    fix: {failure['advice']}")
    for warning in report["warnings"]:
        lines.append(f"! {warning['message']}")
    ev = report["evidence"]
    if ev.get("quality_poor") and not ev.get("stall_judged") and report["verdict"] == "healthy":
        lines.append(f"  quality is still poor, but a run of {report['last_step']} steps is too short to"
                     f" judge stalling (< {report['thresholds']['stall_min_steps']} steps): train longer,"
                     " or evaluate during training (--eval-every) to see the quality trend")
    tr = report["trends"]
    lines.append("trends:")
    if "matching" in tr:
        m = tr["matching"]
        lines.append(f"  matching loss    {_s(m['start'])} -> {_s(m['end'])} (min {_s(m['min'])});"
                     f" last half: change {_pct(m['change_last_half'])}, Spearman vs step"
                     f" {_s(m['spearman_last_half'])}, falling in {_pct(m['monotone_share_last_half'], False)}"
                     " of records")
    if "loss_m" in tr:
        lm = tr["loss_m"]
        band = lm["band_final"]
        lines.append(f"  metric loss      {_s(lm['start'])} -> {_s(lm['end'])}; final band"
                     f" [{_s(band[0])}, {_s(band[1])}] around {_s(lm['median_final'])}"
                     f" (relative width {_s(lm['relative_band_final'])})")
    for key, label in (("hausdorff", "Hausdorff"), ("hausdorff_fake_to_real", "  fake -> real"),
                       ("hausdorff_real_to_fake", "  real -> fake"), ("diameter_real", "diameter real"),
                       ("diameter_fake", "diameter fake"), ("emb_dim_eff", "effective dims"),
                       ("fake_duplicates", "fake duplicates"), ("grad_norm_g", "grad norm G"),
                       ("grad_norm_m", "grad norm M"), ("satisfied", "satisfied tuples")):
        if key in tr:
            v = tr[key]
            lines.append(f"  {label:16s} {_s(v['start'])} -> {_s(v['end'])}"
                         f" (min {_s(v['min'])}, max {_s(v['max'])})")
    if report.get("quality"):
        shown = ", ".join(f"{k} {v:.4g}" for k, v in report["quality"].items()
                          if isinstance(v, (int, float)) and not k.startswith(("kid_std", "is_std")))
        lines.append(f"quality: {shown}")
    return "\n".join(lines)


def _s(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _pct(value, signed: bool = True) -> str:
    if value is None:
        return "-"
    return f"{value * 100:+.0f}%" if signed else f"{value * 100:.0f}%"


def save_health_plot(history: Sequence[Mapping], path: str | Path,
                     report: Mapping[str, Any] | None = None) -> Path:
    """A 2x2 PNG: matching loss, metric loss (with its final band), Hausdorff distances, and the
    real/generated diameters, over steps; each failure's start step is a dashed line."""
    from .plotting import _plt

    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(9, 6), dpi=100)
    panels = [
        (axes[0][0], "matching loss (generator)", [("matching", "matching")]),
        (axes[0][1], "metric loss", [("loss_m", "loss_m")]),
        (axes[1][0], "Hausdorff (squared distance)", [("hausdorff", "symmetric"),
                                                      ("hausdorff_fake_to_real", "fake -> real"),
                                                      ("hausdorff_real_to_fake", "real -> fake")]),
        (axes[1][1], "diameter (mean pairwise distance)", [("diameter_real", "real"),
                                                           ("diameter_fake", "generated")]),
    ]
    for ax, title, keys in panels:
        positive, drawn = True, 0
        for key, label in keys:
            steps, values = _series(history, key)
            if len(values):
                drawn += 1
                ax.plot(steps, values, lw=1, label=label)
                positive &= bool(np.all(values[np.isfinite(values)] > 0))
                finite = values[np.isfinite(values) & (values > 0)]
                if positive and len(finite) and finite.max() / finite.min() > 100:
                    ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        if len(keys) > 1 and drawn:
            ax.legend(fontsize=7)
    if report:
        band = report.get("trends", {}).get("loss_m", {}).get("band_final")
        if band and None not in band:
            axes[0][1].axhspan(band[0], band[1], color="tab:green", alpha=0.15, label="final band")
            axes[0][1].legend(fontsize=7)
        for failure in report.get("failures", []):
            for row in axes:
                for ax in row:
                    ax.axvline(failure["step"], color="tab:red", ls="--", lw=0.8)
        fig.suptitle(f"run health: {report['status']}", fontsize=10,
                     color="tab:green" if report["verdict"] == "healthy" else "tab:red")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(own_file(path))  # never through a symbolic link
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------
# the trainer callback


class HealthMonitor:
    """Trainer callback: live status, one warning per failure mode, and the final report.

    Args:
        quality: a function returning the latest quality metrics (e.g. ``lambda: evaluator.last``),
            used to judge stalled matching at the end of training.
        final_path: a JSON file (the run's ``metrics.json``) that receives the report under
            ``"health"`` at the end of training or when the trainer stops on NaN/inf (other keys
            of the file are kept).
        thresholds: the rules' numbers.
        checks: about how many times the rules run during training (their cost grows with the
            history; the final diagnosis always runs).

    After each check ``trainer.health_status`` holds a short status (``ok``, ``gen collapse@1200``)
    that :class:`~mvm_core.callbacks.ProgressBar` shows; ``report`` holds the last full report.
    Checks start after ``thresholds.warmup`` of the planned steps: the first steps of every run look
    collapsed (a fresh generator's samples are nearly identical).
    """

    def __init__(self, quality=None, final_path: str | Path | None = None,
                 thresholds: Thresholds | None = None, checks: int = 50):
        self.quality = quality
        self.final_path = None if final_path is None else Path(final_path)
        self.thresholds = thresholds or Thresholds()
        self.checks = max(1, checks)
        self.report: dict[str, Any] | None = None
        self._warned: set[str] = set()
        self._next = 0

    def on_train_start(self, trainer) -> None:
        trainer.health_status = "ok"
        self._next = 0

    def on_step_end(self, trainer, record: dict) -> None:
        history = trainer.state.history
        total = trainer.config.steps
        if record["step"] < self.thresholds.warmup * total or len(history) < self._next:
            return
        expected = max(len(history), total // trainer.config.log_every)
        self._next = len(history) + max(1, expected // self.checks)
        self.report = diagnose(history, total_steps=total, thresholds=self.thresholds)
        self._surface(trainer, self.report)

    def on_diverged(self, trainer, error: Exception) -> None:
        event = {"step": trainer.state.step, "message": str(error).split(" The last good")[0]}
        self.report = diagnose(trainer.state.history, total_steps=trainer.config.steps, diverged=event,
                               thresholds=self.thresholds)
        self._surface(trainer, self.report)
        self._write(trainer)

    def on_train_end(self, trainer) -> None:
        quality = self.quality() if callable(self.quality) else self.quality
        self.report = diagnose(trainer.state.history, total_steps=trainer.config.steps,
                               quality=quality, thresholds=self.thresholds)
        self._surface(trainer, self.report)
        self._write(trainer)

    def _surface(self, trainer, report: Mapping[str, Any]) -> None:
        trainer.health_status = short_status(report)
        for failure in report["failures"]:
            if failure["mode"] not in self._warned:
                self._warned.add(failure["mode"])
                logger.warning("run health: %s since step %d: %s. %s Fix: %s",
                               failure["mode"].replace("_", " "), failure["step"], failure["meaning"],
                               failure["rule"], failure["advice"])
        for warning in report["warnings"]:
            if warning["kind"] not in self._warned:
                self._warned.add(warning["kind"])
                logger.warning("run health: %s", warning["message"])

    def _write(self, trainer) -> None:
        if self.final_path is None or self.report is None:
            return
        import json

        payload = {}
        if self.final_path.exists():
            try:
                payload = json.loads(self.final_path.read_text())
            except ValueError:
                payload = {}
        payload.setdefault("step", trainer.state.step)
        payload["health"] = self.report
        self.final_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.final_path.with_suffix(self.final_path.suffix + ".tmp")
        tmp.write_text(json.dumps(payload, indent=2, default=float))
        tmp.replace(self.final_path)


_SHORT = {"divergence": "DIVERGED", "metric_collapse": "metric collapse", "metric_idle": "metric idle",
          "generator_collapse": "gen collapse", "oscillation": "oscillating",
          "stalled_matching": "stalled"}


def short_status(report: Mapping[str, Any]) -> str:
    """A few characters for a progress bar: ``ok``, ``ok!emb`` (warning), ``gen collapse@1200``."""
    if report["failures"]:
        first = report["failures"][0]
        return f"{_SHORT[first['mode']]}@{first['step']}"
    return "ok!emb" if report["warnings"] else "ok"


__all__ = [
    "ADVICE", "FAILURE_MODES", "Failure", "HealthMonitor", "Thresholds", "diagnose", "embedding_stats",
    "format_report", "quality_poor", "save_health_plot", "short_status", "suggest_emb_dim", "trends",
]
