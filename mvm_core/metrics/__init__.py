"""Evaluation of generators on feature tensors, layered features -> statistics -> metric.

Plain functions on tensors (any extractor's features), one :data:`DEFAULTS` table, and
:func:`evaluate`, whose keys name the feature space (``fid@digits-classifier``). Evaluation
networks: :class:`DigitsClassifier` (shipped weights, ``@digits-classifier``),
:class:`MnistClassifier` (shipped weights, ``@mnist-classifier``) and Inception-v3 from
a local weights file (``@inception``). Nothing here downloads. See ``docs/metrics.md``.
"""

from __future__ import annotations

from .bins import Bins, NDBResult, fit_bins, jensen_shannon, kmeans, ndb_jsd, two_proportion_z_test
from .classifier_scores import class_coverage, inception_score
from .defaults import DEFAULTS
from .digits_classifier import (
    DigitsClassifier,
    DigitsNet,
    digits_classifier_metadata,
    digits_split,
    load_digits_classifier,
)
from .diversity import mean_pairwise_distance
from .evaluate import DEFAULT_METRICS, METRICS, evaluate, metric_key
from .frechet import (
    feature_statistics,
    fid,
    frechet_distance,
    load_statistics,
    save_statistics,
    sqrtm_psd,
    trace_sqrt_product,
)
from .inception import InceptionFeatureExtractor, load_inception, resolve_inception_weights
from .kernel_distance import kid, mmd2_unbiased, polynomial_kernel
from .mnist_classifier import (
    MnistClassifier,
    MnistNet,
    load_mnist_classifier,
    mnist_classifier_metadata,
)
from .modes import (
    PACGAN_NUM_SAMPLES,
    STACKED_MNIST_MODES,
    STACKED_MNIST_NUM_SAMPLES,
    DiscreteModeCoverage,
    ModeCoverage,
    discrete_mode_coverage,
    histogram_mode_coverage,
    mode_coverage,
)
from .nearest_train import Memorization, memorization, nearest_train_distances
from .neighbours import faiss_available, knn, kth_neighbour_distance
from .prdc import density_coverage, precision_recall

__all__ = [
    "DEFAULTS",
    "DEFAULT_METRICS",
    "METRICS",
    "PACGAN_NUM_SAMPLES",
    "STACKED_MNIST_MODES",
    "STACKED_MNIST_NUM_SAMPLES",
    "Bins",
    "DigitsClassifier",
    "DigitsNet",
    "DiscreteModeCoverage",
    "InceptionFeatureExtractor",
    "Memorization",
    "MnistClassifier",
    "MnistNet",
    "ModeCoverage",
    "NDBResult",
    "class_coverage",
    "density_coverage",
    "digits_classifier_metadata",
    "digits_split",
    "discrete_mode_coverage",
    "evaluate",
    "faiss_available",
    "feature_statistics",
    "fid",
    "fit_bins",
    "histogram_mode_coverage",
    "frechet_distance",
    "inception_score",
    "jensen_shannon",
    "kid",
    "kmeans",
    "knn",
    "kth_neighbour_distance",
    "load_digits_classifier",
    "load_inception",
    "load_mnist_classifier",
    "load_statistics",
    "mean_pairwise_distance",
    "memorization",
    "metric_key",
    "mmd2_unbiased",
    "mnist_classifier_metadata",
    "mode_coverage",
    "ndb_jsd",
    "nearest_train_distances",
    "polynomial_kernel",
    "precision_recall",
    "resolve_inception_weights",
    "save_statistics",
    "sqrtm_psd",
    "trace_sqrt_product",
    "two_proportion_z_test",
]
