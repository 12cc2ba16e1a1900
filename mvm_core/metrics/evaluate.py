"""``evaluate``: several metrics on one pair of feature sets, keyed by metric *and* feature space.

Every number says where it was measured: ``fid@digits-classifier``, ``kid@inception``,
``precision@metric-net``. FID on Inception features and FID on the digits classifier's features
are different quantities; the key keeps them apart in logs, tables and checkpoints::

    clf = load_digits_classifier()
    real_f, _ = clf.embed(real_images)                 # (N, 1, H, W) digits in [-1, 1]
    fake_f, fake_logits = clf.embed(fake_images)
    evaluate(real_f, fake_f, ("fid", "kid", "precision", "recall", "is"),
             space="digits-classifier", fake_logits=fake_logits)
    # {'fid@digits-classifier': ..., 'kid@digits-classifier': ..., 'kid_std@digits-classifier': ...,
    #  'precision@digits-classifier': ..., 'recall@digits-classifier': ..., 'is@...': ..., ...}
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

import torch

from .bins import Bins, fit_bins, ndb_jsd
from .classifier_scores import class_coverage, inception_score
from .defaults import DEFAULTS
from .diversity import DistanceFn, mean_pairwise_distance
from .frechet import feature_statistics, frechet_distance
from .kernel_distance import kid
from .modes import STACKED_MNIST_MODES, discrete_mode_coverage, mode_coverage
from .nearest_train import memorization
from .prdc import density_coverage, precision_recall

METRICS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "fid": ("Fréchet distance of Gaussian fits", ("fid",)),
    "kid": ("kernel (polynomial MMD^2) distance, mean and std over subsets", ("kid", "kid_std")),
    "precision": ("share of fakes inside the real k-NN manifold", ("precision",)),
    "recall": ("share of reals inside the fake k-NN manifold", ("recall",)),
    "density": ("real k-NN balls per fake, / k", ("density",)),
    "coverage": ("share of real balls holding a fake", ("coverage",)),
    "ndb": ("statistically different K-means bins (count and share)", ("ndb", "ndb_fraction")),
    "jsd": ("Jensen-Shannon divergence of K-means bin histograms", ("jsd",)),
    "diversity": (
        "mean distance between two fakes (and two reals)",
        ("diversity", "diversity_real"),
    ),
    "nn_distance": (
        "mean distance of fakes to their nearest training sample (memorization)",
        ("nn_distance", "nn_distance_ratio", "copy_fraction"),
    ),
    "is": ("Inception score from fake logits, mean and std over splits", ("is", "is_std")),
    "class_coverage": (
        "share of classes predicted, min class share x C (from fake logits)",
        ("class_coverage", "min_class_share"),
    ),
    "modes": (
        "PacGAN mode coverage on a Gaussian mixture: modes, high-quality share, reverse KL",
        ("modes", "high_quality", "reverse_kl"),
    ),
    "stacked_modes": (
        "discrete modes covered (Stacked MNIST: of 1,000) and KL(sample histogram || uniform),"
        " from fake mode ids",
        ("modes", "reverse_kl"),
    ),
}
"""Metric name -> (description, result keys before ``@space``)."""

DEFAULT_METRICS: tuple[str, ...] = ("fid", "kid", "precision", "recall", "density", "coverage")


def metric_key(name: str, space: str) -> str:
    """``"fid", "inception" -> "fid@inception"`` (the one naming rule of all results)."""
    return f"{name}@{space}"


def _check_space(space: object) -> str:
    if not isinstance(space, str) or not space or "@" in space or any(c.isspace() for c in space):
        raise ValueError(
            "space must name the feature space the features come from, as a non-empty string"
            f" without '@' or spaces (e.g. 'digits-classifier', 'inception', 'metric-net'); got"
            f" {space!r}."
        )
    return space


def _check_metrics(metrics: Iterable[str] | str) -> list[str]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    names = list(dict.fromkeys(metrics))
    for name in names:
        if name not in METRICS:
            close = difflib.get_close_matches(str(name), METRICS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown metric {name!r}; choose from {sorted(METRICS)}.{hint}")
    if not names:
        raise ValueError(f"metrics is empty; choose from {sorted(METRICS)}.")
    return names


def _merge_options(options: Mapping[str, object] | None) -> dict:
    merged = dict(DEFAULTS)
    for key, value in (options or {}).items():
        if key not in DEFAULTS:
            close = difflib.get_close_matches(key, DEFAULTS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown option {key!r}; known: {sorted(DEFAULTS)}.{hint}")
        merged[key] = value
    return merged


def _need(value, what: str, metric: str):
    if value is None:
        raise ValueError(f"metric {metric!r} needs {what}; pass it to evaluate().")
    return value


@torch.no_grad()
def evaluate(
    real_features: torch.Tensor | None,
    fake_features: torch.Tensor | None,
    metrics: Iterable[str] | str = DEFAULT_METRICS,
    space: str | None = None,
    *,
    train_features: torch.Tensor | None = None,
    fake_logits: torch.Tensor | None = None,
    real_statistics: tuple[torch.Tensor, torch.Tensor] | None = None,
    bins: Bins | None = None,
    mixture=None,
    fake_modes: torch.Tensor | None = None,
    num_modes: int = STACKED_MNIST_MODES,
    distance_fn: DistanceFn | None = None,
    options: Mapping[str, object] | None = None,
) -> dict[str, float]:
    """Compute ``metrics`` and return ``{"<name>@<space>": value}`` (plain floats).

    Args:
        real_features: (N, D) real features (held-out data when ``train_features`` is given).
        fake_features: (M, D) generated features (for ``"modes"``: the (M, 2) samples).
        metrics: names from :data:`METRICS` (default FID, KID, precision, recall, density,
            coverage); each may add several keys (``kid`` and ``kid_std``).
        space: the feature space's name, required (``"digits-classifier"``, ``"inception"``, ...).
        train_features: training features: NDB bins are fitted on them, and ``nn_distance``
            measures fakes against them with ``real_features`` as the held-out reference
            (``nn_distance_ratio``, ``copy_fraction``). Default: ``real_features`` for both roles
            (then only ``nn_distance``).
        fake_logits: (M, C) classifier logits of the fakes, for ``"is"`` and ``"class_coverage"``.
        real_statistics: precomputed ``(mu, sigma)`` of the reals for ``"fid"`` (see
            :func:`~mvm_core.metrics.frechet.feature_statistics`).
        bins: precomputed :class:`~mvm_core.metrics.bins.Bins` for ``"ndb"``/``"jsd"``.
        mixture: a ``GaussianMixture2D`` for ``"modes"``.
        fake_modes: (M,) integer mode ids of the fakes for ``"stacked_modes"`` (Stacked MNIST:
            ``100 * d_R + 10 * d_G + d_B`` from the MNIST classifier), out of ``num_modes``.
        distance_fn: a perceptual distance (e.g. LPIPS) for ``"diversity"``, applied to the
            ``real_features``/``fake_features`` tensors you pass (images, then).
        options: overrides of :data:`~mvm_core.metrics.defaults.DEFAULTS` (unknown keys raise).
    """
    space = _check_space(space)
    names = _check_metrics(metrics)
    opt = _merge_options(options)
    backend = opt["knn_backend"]
    seed = int(opt["seed"])
    out: dict[str, float] = {}

    def put(name: str, value: float) -> None:
        out[metric_key(name, space)] = float(value)

    if "fid" in names:
        mu2, sigma2 = feature_statistics(_need(fake_features, "fake_features", "fid"))
        if real_statistics is None:
            real_statistics = feature_statistics(_need(real_features, "real_features", "fid"))
        put("fid", frechet_distance(*real_statistics, mu2, sigma2))
    if "kid" in names:
        mean, std = kid(
            _need(real_features, "real_features", "kid"),
            _need(fake_features, "fake_features", "kid"),
            subsets=opt["kid_subsets"],
            subset_size=opt["kid_subset_size"],
            degree=opt["kid_degree"],
            gamma=opt["kid_gamma"],
            coef0=opt["kid_coef0"],
            generator=torch.Generator().manual_seed(seed),
        )
        put("kid", mean)
        put("kid_std", std)
    if {"precision", "recall"} & set(names):
        p, r = precision_recall(
            _need(real_features, "real_features", "precision/recall"),
            _need(fake_features, "fake_features", "precision/recall"),
            k=opt["precision_recall_k"],
            backend=backend,
        )
        if "precision" in names:
            put("precision", p)
        if "recall" in names:
            put("recall", r)
    if {"density", "coverage"} & set(names):
        d, c = density_coverage(
            _need(real_features, "real_features", "density/coverage"),
            _need(fake_features, "fake_features", "density/coverage"),
            k=opt["density_coverage_k"],
            backend=backend,
        )
        if "density" in names:
            put("density", d)
        if "coverage" in names:
            put("coverage", c)
    if {"ndb", "jsd"} & set(names):
        if bins is None:
            reference = train_features if train_features is not None else real_features
            bins = fit_bins(
                _need(reference, "train_features or real_features", "ndb/jsd"),
                opt["ndb_bins"],
                whiten=opt["ndb_whiten"],
                iterations=opt["ndb_iterations"],
                seed=seed,
                backend=backend,
            )
        result = ndb_jsd(
            bins,
            _need(fake_features, "fake_features", "ndb/jsd"),
            significance=opt["ndb_significance"],
            backend=backend,
        )
        if "ndb" in names:
            put("ndb", result.ndb)
            put("ndb_fraction", result.ndb_fraction)
        if "jsd" in names:
            put("jsd", result.jsd)
    if "diversity" in names:
        for key, x in (("diversity", fake_features), ("diversity_real", real_features)):
            if x is None and key == "diversity_real":
                continue
            put(
                key,
                mean_pairwise_distance(
                    _need(x, "fake_features", "diversity"),
                    distance_fn=distance_fn,
                    num_pairs=opt["diversity_pairs"],
                    generator=torch.Generator().manual_seed(seed),
                ),
            )
    if "nn_distance" in names:
        fake = _need(fake_features, "fake_features", "nn_distance")
        if train_features is None:
            result = memorization(
                fake, _need(real_features, "real_features", "nn_distance"), backend=backend
            )
            put("nn_distance", result.nn_distance)
        else:
            result = memorization(fake, train_features, real_features, backend=backend)
            put("nn_distance", result.nn_distance)
            if real_features is not None:
                put("nn_distance_ratio", result.ratio)
                put("copy_fraction", result.copy_fraction)
    if "is" in names:
        mean, std = inception_score(
            _need(fake_logits, "fake_logits", "is"), splits=opt["is_splits"]
        )
        put("is", mean)
        put("is_std", std)
    if "class_coverage" in names:
        present, min_share = class_coverage(_need(fake_logits, "fake_logits", "class_coverage"))
        put("class_coverage", present)
        put("min_class_share", min_share)
    if "modes" in names:
        report = mode_coverage(
            _need(fake_features, "fake_features (the generated samples)", "modes"),
            _need(mixture, "mixture (a GaussianMixture2D)", "modes"),
            threshold=opt["mode_threshold"],
        )
        put("modes", report.modes)
        put("high_quality", report.high_quality_fraction)
        put("reverse_kl", report.reverse_kl)
    if "stacked_modes" in names:
        if "modes" in names:
            raise ValueError("metrics 'modes' and 'stacked_modes' write the same keys; ask for one.")
        report = discrete_mode_coverage(
            _need(fake_modes, "fake_modes (mode ids of the fakes)", "stacked_modes"), num_modes
        )
        put("modes", report.modes)
        put("reverse_kl", report.reverse_kl)
    return out


__all__ = ["DEFAULT_METRICS", "METRICS", "evaluate", "metric_key"]
