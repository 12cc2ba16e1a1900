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
        "matching": "centroid-diameter", "diameter_form": "paired", "p": 2.0, "centroid_weight": 1.0, "diameter_weight": 1.0,
        "metric_loss": "mvm:MvMTripletLoss", "metric_loss_kwargs": {"margin": 1.0, "alpha": 1e-2, "guidance_reduction": "sum"},
        "miner": "random", "g_lr": 1e-4, "g_betas": (0.0, 0.9), "g_eps": 1e-6,
        "m_lr": 1e-4, "m_betas": (0.5, 0.999), "m_eps": 1e-3, "metric_steps": 1, "emb_dim": 10,
        "spectral_norm": False, "ema_decay": None,
    }
    if kind == "points":
        return {**common, "batch_size": 100, "z_dim": 2, "width": 400, "depth": 3, "steps": 10_000}
    return {**common, "batch_size": 64, "z_dim": 128, "width": 64, "steps": 1500}


def default(kind: str) -> dict[str, Any]:
    """Our defaults, each measured (benchmarks/digits/RESULTS.md, benchmarks/twod/ABLATION.md).

    Images (digits study, 3 seeds, 2000 steps): energy-distance matching in a 32-d embedding
    learned by a contrastive loss on the 8 nearest fakes of each real anchor (FAISS, docs/mining.md),
    cosine learning-rate decay, EMA; Adam lr 2e-3 for both networks (5e-4 when the numbers that
    follow were measured: at 3,000 steps lr 2e-3 takes FID from 56.9 to 38.5, 3 seeds;
    benchmarks/results/ablation.md sets it against the GAN baseline): FID@digits-classifier 59.1 (62.8 +- 2.3 over all pairs, worst
    class share 0.57 of fair), against 197 and 0.11 with the MvM triplet as metric loss (same
    networks and budget). The reference's direction
    guidance is dropped (its batch-summed cosine rivals the margin and corrupts the metric).
    Points (benchmarks/results/precision2d.md, benchmarks/results/ablation.md): the MvM triplet
    with random tuples and its direction guidance averaged over the triplets (summed, as
    published, it passes the margin at this batch and the metric never trains), the metric at a
    tenth of the generator's lr, energy-distance matching plus a nearest-real (Chamfer) pull of
    weight 0.5 (without it the grid loses most of its precision), Adam lr 1e-3 decayed linearly,
    400-wide MLPs (PacGAN's generator width; 128-wide: grid 22-26%), batch 256 and 12,000 steps
    (~10 CPU minutes). The low-quality samples left are the generator's crossings between modes;
    they thin out with the budget.
    MNIST / Stacked MNIST (``--data mnist``, 32 px): the same DCGAN pair, whose stages follow the
    image size (log2(S / 4): three at 32 px, 4 -> 8 -> 16 -> 32 in the generator and back in the
    metric network; 0.93 M and 0.79 M parameters at width 64), with these image values unchanged
    (not yet tuned for MNIST). Measured, seed 0, CPU (one thread, shared): FID@mnist-classifier of
    2,000 samples against the 1,000 held-out digits 2065 untrained, 955 after 600 steps, 309 after
    1,500 (recall 0.78, all ten classes, worst class share 0.11 of fair; digit-like samples); the
    real-vs-real floor at that sample size is 5.8.
    """
    values = reference(kind)
    values["diameter_form"] = "sorted"
    if kind == "points":
        values.update({
            "matching": "energy", "energy_weight": 1.0, "chamfer_weight": 0.5, "cross_weight": 0.0,
            "energy_power": 1.0, "width": 400, "batch_size": 256, "g_lr": 1e-3,
            "lr_schedule": "linear", "steps": 12_000,
            # the guidance cosines averaged (summed over 256 triplets they pass the margin: the
            # metric's loss and gradient are 0 on ~80% of steps, a fixed random embedding) and a
            # slower metric: measured at 3,000 steps, seeds 0/1 (benchmarks/ablation.py): m_lr 1e-4
            # ring 91.1/93.0% high quality, grid 25 modes 79.8/71.4%, loss_m > 0 on every step;
            # m_lr 1e-3 ring 45.6%, grid 19 modes; m_lr 3e-4 ring 14.2% (the metric outruns G).
            "m_lr": 1e-4,
            "metric_loss_kwargs": {"margin": 1.0, "alpha": 1e-2, "guidance_reduction": "mean"},
        })
    if kind == "images":
        values.update({
            "matching": "energy", "energy_weight": 1.0, "chamfer_weight": 0.0, "cross_weight": 0.0,
            "energy_power": 1.0, "metric_loss": "pml:ContrastiveLoss",
            "metric_loss_kwargs": {"pos_margin": 0.0, "neg_margin": 1.0}, "miner": "default",
            "emb_dim": 32, "z_dim": 64,
            # FID@digits-classifier, 3,000 steps, seeds 0/1/2: lr 5e-4 58.6/56.8/55.2, 1e-3
            # 41.8/42.3/45.7, 2e-3 36.6/36.0/42.9 (4e-3: 34.9, seed 0)
            "g_lr": 2e-3, "m_lr": 2e-3, "m_eps": 1e-8,
            "lr_schedule": "cosine", "ema_decay": 0.99, "steps": 2000,
        })
    return values


def sr(kind: str) -> dict[str, Any]:
    """Super-resolution x2 on scikit-image's bundled photos (needs the mvm-core-sr plugin).

    Paired training: an SRResNet-style generator (32 channels, 4 residual blocks) maps 16 px
    low-res crops to 32 px, trained on the pixel L1 distance to the high-res crop plus manifold
    matching of the high-res patches in the embedding of a patch metric network (the `default`
    image objectives: energy matching, contrastive metric). ``--method gan`` swaps the matching
    and metric objectives for a non-saturating GAN on the same networks, ``--method none`` trains
    on L1 alone; benchmarks/sr/RESULTS.md compares them with bicubic at this budget (a few CPU
    minutes). ``--data sr:digits`` is the tiny x2 digits task; ``--data-kwargs '{"scale": 4}'``
    gives x4 (the generator's scale follows the data).
    """
    if kind == "points":
        raise ValueError("the sr preset trains on images; use --data sr:skimage, sr:digits or sr:folder.")
    values = default("images")
    values.update({
        "task": "paired", "data": "sr:skimage", "data_kwargs": {"scale": 2, "patch_size": 32},
        "generator": "sr:SRResNet", "generator_kwargs": {"width": 32, "blocks": 4},
        "metric_net": "sr:PatchMetricNet", "metric_net_kwargs": {"width": 32},
        "regularizers": {"mvm:ContentLoss": 10.0},
        "batch_size": 16, "steps": 300, "g_lr": 1e-3, "g_betas": (0.9, 0.99), "m_lr": 1e-3,
        "ema_decay": 0.99, "lr_schedule": "cosine", "eval_samples": 64, "checkpoint_every": 200,
    })
    return values


PRESETS = {"default": default, "reference": reference, "sr": sr}
