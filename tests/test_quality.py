"""Quality that the defaults must reach (fixed seeds, CPU): issue 3's acceptance checks."""

import torch

from mvm_core.build import build_trainer
from mvm_core.evaluation import evaluate_trainer
from mvm_core.metrics import class_coverage, load_digits_classifier
from mvm_core.runconfig import build_run_config


def test_default_digits_run_covers_every_class():
    """`mvm train`'s default: samples fall into all 10 digit classes, none under a third of its share.

    Judged by the shipped digits classifier (99.2% test accuracy); measured at 0.58 of fair share
    for seed 0 (benchmarks/digits/RESULTS.md), the test asks for 1/3.
    """
    config = build_run_config({"data": "digits", "seed": 0, "device": "cpu", "log_every": 100})
    trainer = build_trainer(config)
    history = trainer.fit()
    samples = trainer.sample(2000, seed=1)
    logits = load_digits_classifier().embed(samples)[1]
    present, min_share = class_coverage(logits)
    assert present == 1.0
    assert min_share >= 1 / 3
    metrics = evaluate_trainer(trainer, n=2000, metrics=("fid",))
    assert metrics["fid@digits-classifier"] < 120  # untrained: ~540, reference objectives: ~200
    # the matching loss fell from its start
    assert history[-1]["matching"] < 0.5 * history[0]["matching"]
    assert torch.isfinite(torch.tensor([row["loss_m"] for row in history])).all()


def test_default_ring_run_covers_all_modes_precisely():
    """The 8-Gaussian ring (PacGAN protocol, 2,500 samples): all 8 modes, most samples within 3 std.

    Measured for seeds 0/1/2 (energy + Chamfer 0.5): 8/8 modes, 85.7/85.0/86.4% high quality,
    KL 0.004/0.003/0.004. The test asks for 8 modes, > 70% high quality and KL < 0.05.
    """
    config = build_run_config({"data": "ring", "seed": 0, "device": "cpu", "log_every": 500})
    trainer = build_trainer(config)
    trainer.fit()
    metrics = evaluate_trainer(trainer)
    assert metrics["modes@data"] == 8
    assert metrics["high_quality@data"] > 0.7
    assert metrics["reverse_kl@data"] < 0.05
