"""Named starting points for a run. ``reference`` reproduces the published MvM formulation;
``default`` is our measured best (see benchmarks/ for the tables behind each choice).

A preset is a function of the data kind ("points" for 2D mixtures, "images") returning RunConfig
values; the config file and flags override them.
"""

from __future__ import annotations

from typing import Any


def reference(kind: str) -> dict[str, Any]:
    """The ICCV 2021 reference code: paired p-diameter, MvM triplet with random tuples, its Adam settings."""
    common = {
        "diameter_form": "paired", "p": 2.0, "centroid_weight": 1.0, "diameter_weight": 1.0,
        "metric_loss": "mvm:MvMTripletLoss", "metric_loss_kwargs": {"margin": 1.0, "alpha": 1e-2},
        "miner": "default", "g_lr": 1e-4, "g_betas": (0.0, 0.9), "g_eps": 1e-6,
        "m_lr": 1e-4, "m_betas": (0.5, 0.999), "m_eps": 1e-3, "metric_steps": 1, "emb_dim": 10,
        "spectral_norm": False, "ema_decay": None,
    }
    if kind == "points":
        return {**common, "batch_size": 100, "z_dim": 2, "width": 400, "depth": 3, "steps": 10_000}
    return {**common, "batch_size": 64, "z_dim": 128, "width": 64, "steps": 1500}


def default(kind: str) -> dict[str, Any]:
    """Our defaults: the permutation-invariant p-diameter and faster optimizers (measured in benchmarks/)."""
    values = reference(kind)
    values.update({"diameter_form": "sorted"})
    if kind == "points":
        values.update({"steps": 3000, "g_lr": 1e-3, "m_lr": 1e-3})
    else:
        values.update({"z_dim": 64, "g_lr": 5e-4, "m_lr": 5e-4, "ema_decay": 0.99})
    return values


PRESETS = {"default": default, "reference": reference}
