"""One table of metric defaults (the reference protocols); override per call with ``options``."""

from __future__ import annotations

from types import MappingProxyType

DEFAULTS = MappingProxyType(
    {
        # KID (Bińkowski et al. 2018): 100 subsets of 1000; None = min(1000, N_real, N_fake)
        "kid_subsets": 100,
        "kid_subset_size": None,
        "kid_degree": 3,
        "kid_gamma": None,  # None = 1 / feature dimension
        "kid_coef0": 1.0,
        # precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020)
        "precision_recall_k": 3,
        "density_coverage_k": 5,
        # NDB/JSD (Richardson & Weiss 2018; MSGAN): K-means bins on training features
        "ndb_bins": 100,
        "ndb_significance": 0.05,
        "ndb_whiten": False,
        "ndb_iterations": 25,
        # Inception score (Salimans et al. 2016)
        "is_splits": 10,
        # diversity: None = exact mean over all pairs (Euclidean), 1000 pairs with a distance_fn
        "diversity_pairs": None,
        # 2D mode coverage (PacGAN Table 1): high quality below 3 std
        "mode_threshold": 3.0,
        # nearest neighbours: "auto" (FAISS when installed), "faiss" or "torch"
        "knn_backend": "auto",
        # random subsets, pairs and K-means initialisation
        "seed": 0,
    }
)
"""Read-only defaults of :func:`mvm_core.metrics.evaluate`; see ``docs/metrics.md``."""

__all__ = ["DEFAULTS"]
