"""Run health: the statistics the trainer logs, the rules on hand-made histories, and real runs.

Real runs (module-scoped, each trained once): short healthy default runs on the ring (two seeds)
and the digits, and runs engineered to fail: a learning rate far too high, a metric network whose
output ignores its input (constant), a generator whose output ignores z. Their verdicts must name
the right failure mode; the healthy ones must not be flagged. benchmarks/health/evidence.py runs
the same scenarios at full budgets and more seeds (docs/reading-a-run.md).
"""

import json
import logging
import math

import pytest
import torch

from mvm_core.build import build_trainer
from mvm_core.callbacks import Checkpointer, JSONLLogger, ProgressBar
from mvm_core.cli import main
from mvm_core.health import (
    FAILURE_MODES,
    HealthMonitor,
    Thresholds,
    diagnose,
    embedding_stats,
    format_report,
    quality_poor,
    save_health_plot,
    short_status,
    suggest_emb_dim,
)
from mvm_core.runconfig import build_run_config
from mvm_core.trainer import TrainingDiverged


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small nets train faster on one thread; with two on a busy 2-core machine they were 10x slower."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)

# ---------------------------------------------------------------------------------------------
# embedding statistics (logged by the trainer at log steps)


def test_embedding_stats_match_brute_force(rng):
    real = torch.randn(20, 3, generator=rng, dtype=torch.float64)
    fake = torch.randn(15, 3, generator=rng, dtype=torch.float64) * 0.5
    stats = embedding_stats(real, fake)
    pairs = [(i, j) for i in range(20) for j in range(20) if i != j]
    mean_dist = sum(float((real[i] - real[j]).norm()) for i, j in pairs) / len(pairs)
    assert stats["diameter_real"] == pytest.approx(mean_dist, rel=1e-9)
    assert stats["emb_var_real"] == pytest.approx(float(((real - real.mean(0)) ** 2).sum(1).mean()), rel=1e-6)
    assert stats["emb_norm_real"] == pytest.approx(float(real.pow(2).sum(1).mean().sqrt()), rel=1e-6)
    eig = torch.linalg.eigvalsh(torch.cov(real.double().T))
    assert stats["emb_dim_eff"] == pytest.approx(float(eig.sum() ** 2 / (eig**2).sum()), rel=1e-6)
    assert stats["emb_dim_used"] == pytest.approx(stats["emb_dim_eff"] / (20 * 3 / 23), rel=1e-9)
    assert stats["emb_dim"] == 3 and stats["fake_duplicates"] == 0.0


def test_embedding_stats_see_collapse():
    real = torch.randn(64, 10, generator=torch.Generator().manual_seed(1))
    copies = torch.randn(1, 10).expand(64, 10)
    stats = embedding_stats(real, copies)
    assert stats["diameter_fake"] == 0.0 and stats["fake_duplicates"] == 1.0
    assert stats["emb_dim_used"] == pytest.approx(1.0, abs=0.1)  # isotropic: every dimension used
    point = embedding_stats(torch.ones(8, 4), torch.ones(8, 4))
    assert point["diameter_real"] == 0.0 and point["emb_dim_eff"] == 0.0
    assert math.isnan(point["fake_duplicates"])  # undefined when the reals are one point


# ---------------------------------------------------------------------------------------------
# the rules on hand-made histories


def history(n=50, every=10, **columns):
    """``n`` records; each column is a constant or a function of the record index."""
    base = {"matching": lambda i: 1.0 / (1 + i), "loss_m": lambda i: 0.5 + 0.02 * (-1) ** i,
            "grad_norm_g": 0.1, "grad_norm_m": 1.0, "diameter_real": 1.0, "diameter_fake": 0.9,
            "emb_norm_real": 1.5, "fake_duplicates": 0.0, "emb_dim": 10.0, "emb_dim_used": 0.4}
    base.update(columns)
    return [{"step": (i + 1) * every, **{k: (v(i) if callable(v) else v) for k, v in base.items()}}
            for i in range(n)]


def test_a_steady_run_is_healthy():
    report = diagnose(history())
    assert report["verdict"] == "healthy" and report["failures"] == []
    assert report["status"] == "ok"
    assert report["trends"]["matching"]["spearman_last_half"] == pytest.approx(-1.0)
    assert report["trends"]["loss_m"]["relative_band_final"] < 0.1


def test_nan_is_divergence_at_its_step():
    h = history(matching=lambda i: float("nan") if i >= 30 else 1.0)
    report = diagnose(h)
    assert report["verdict"] == "divergence"
    assert report["failures"][0]["step"] == 310
    event = diagnose(history(n=3), diverged={"step": 23, "message": "step 23: ... NaN/inf"})
    assert event["verdict"] == "divergence" and event["failures"][0]["step"] == 23


def test_growth_and_blow_up_are_divergence():
    grown = diagnose(history(grad_norm_m=lambda i: 1.0 * 10 ** (i / 10)))  # x10 every 10 records
    assert grown["verdict"] == "divergence"
    assert grown["failures"][0]["step"] == 320  # record 31: the first above 1000x the first one
    blown = diagnose(history(emb_norm_real=5e4, diameter_real=2e4, diameter_fake=2e4))
    assert blown["verdict"] == "divergence" and "rms norm" in blown["failures"][0]["rule"]


def test_a_metric_idle_from_the_start_is_metric_idle():
    # the batch-summed guidance term: every tuple "satisfied" from step 0, loss and gradient 0
    # while most tuples are not satisfied (no peak to compare the gradient with)
    h = history(grad_norm_m=0.0, loss_m=0.0, satisfied=0.15)
    report = diagnose(h)
    assert report["verdict"] == "metric_idle", format_report(report)
    assert report["failures"][0]["step"] == 10
    assert report["failures"][0]["evidence"]["metric_zero_share"] == 1.0
    assert "guidance_reduction" in report["failures"][0]["advice"]
    # zero on a minority of records (a hinge that is sometimes satisfied) is not idle
    some = history(grad_norm_m=lambda i: 0.0 if i % 3 == 0 else 1.0,
                   loss_m=lambda i: 0.0 if i % 3 == 0 else 0.5)
    assert diagnose(some)["verdict"] == "healthy"


def test_a_loss_that_rises_from_near_zero_is_not_divergence():
    # a healthy grid run: loss_m logged 4e-5 first, then settles around 0.06
    h = history(loss_m=lambda i: 4e-5 if i == 0 else 0.06 + 0.005 * (-1) ** i)
    assert diagnose(h)["verdict"] == "healthy"
    # a real blow-up from the same start still is
    blown = history(loss_m=lambda i: 4e-5 if i == 0 else (0.06 if i < 40 else 1e3))
    assert diagnose(blown)["verdict"] == "divergence"


def test_embeddings_at_one_point_are_metric_collapse():
    h = history(diameter_real=lambda i: 1.0 if i < 20 else 1e-9, diameter_fake=0.0)
    report = diagnose(h)
    assert report["verdict"] == "metric_collapse"
    assert report["failures"][0]["step"] == 210  # the collapse, not the start of the run
    assert "generator_collapse" not in [f["mode"] for f in report["failures"]]  # not judged through it


def test_a_metric_that_stops_learning_is_metric_idle():
    h = history(grad_norm_m=lambda i: 2.0 if i < 25 else 0.0, satisfied=lambda i: 0.5 if i < 25 else 1.0,
                loss_m=lambda i: 0.5 if i < 25 else 0.0)
    report = diagnose(h)
    assert report["verdict"] == "metric_idle"
    assert report["failures"][0]["step"] == 260
    assert report["failures"][0]["evidence"]["satisfied_share"] == 1.0
    # a small but alive gradient is not idle
    assert diagnose(history(grad_norm_m=lambda i: 2.0 if i < 25 else 0.1))["verdict"] == "healthy"


def test_generated_spread_far_below_the_real_is_generator_collapse():
    h = history(diameter_fake=lambda i: 0.9 if i < 40 else 0.01)
    report = diagnose(h)
    assert report["verdict"] == "generator_collapse"
    assert report["failures"][0]["step"] == 410
    assert report["failures"][0]["evidence"]["diameter_ratio"] == pytest.approx(0.01)
    dups = diagnose(history(fake_duplicates=0.8))
    assert dups["verdict"] == "generator_collapse"


def test_a_metric_loss_far_outside_its_band_is_oscillation():
    report = diagnose(history(loss_m=lambda i: 0.5 if i < 30 else [0.05, 2.0][i % 2]))
    assert report["verdict"] == "oscillation"
    assert report["evidence"]["loss_m_band"] > Thresholds().band


def test_stalled_needs_poor_quality_a_flat_matching_loss_and_a_long_enough_run():
    flat = dict(n=160, matching=lambda i: 0.3 + 0.01 * (-1) ** i)  # 1600 steps
    poor = {"high_quality@data": 0.02}
    good = {"high_quality@data": 0.8}
    assert diagnose(history(**flat), quality=poor)["verdict"] == "stalled_matching"
    assert diagnose(history(**flat), quality=good)["verdict"] == "healthy"
    assert diagnose(history(**flat))["verdict"] == "healthy"  # quality unknown: not judged
    assert diagnose(history(n=160), quality=poor)["verdict"] == "healthy"  # still falling
    short = diagnose(history(n=30, matching=flat["matching"]), quality=poor)  # 300 steps
    assert short["verdict"] == "healthy" and short["evidence"]["stall_judged"] is False
    # ... unless the matching loss ends above its start (the generator does not follow the metric)
    rising = diagnose(history(n=30, matching=lambda i: min(1.0 + 0.2 * i, 4.0)), quality=poor)
    assert rising["verdict"] == "stalled_matching" and rising["evidence"]["matching_lost_ground"]
    # quality evaluated during training and still improving: not stalled
    improving = history(**flat)
    for i, record in enumerate(improving):
        if i % 20 == 19:
            record["high_quality@data"] = 0.001 * i
    assert diagnose(improving)["evidence"]["quality_improving"] is True
    assert diagnose(improving)["verdict"] == "healthy"
    for record in improving:
        if "high_quality@data" in record:
            record["high_quality@data"] = 0.02
    assert diagnose(improving)["verdict"] == "stalled_matching"


def test_too_few_records_judge_divergence_only():
    report = diagnose(history(n=4, diameter_fake=0.0))
    assert report["verdict"] == "healthy" and not report["judged"]
    assert report["status"].startswith("ok (too early")


def test_quality_thresholds():
    assert quality_poor({"fid@digits-classifier": 200.0})[0] is True
    assert quality_poor({"fid@digits-classifier": 60.0})[0] is False
    assert quality_poor({"high_quality@data": 0.3})[0] is True
    assert quality_poor({"recall@inception": 0.05})[0] is True
    assert quality_poor({"kid@metric-net": 3.0})[0] is None  # no threshold known for it
    assert quality_poor(None)[0] is None


def test_small_saturated_embeddings_warn():
    report = diagnose(history(emb_dim=4.0, emb_dim_used=0.97))
    assert [w["kind"] for w in report["warnings"]] == ["emb_dim_too_small"]
    assert short_status(report) == "ok!emb"
    assert diagnose(history(emb_dim=32.0, emb_dim_used=0.97))["warnings"] == []


def test_suggest_emb_dim_counts_principal_components(rng):
    # 12 independent directions of equal variance in 40 dimensions, plus faint noise
    basis = torch.linalg.qr(torch.randn(40, 12, generator=rng))[0]
    data = torch.randn(3000, 12, generator=rng) @ basis.T + 0.01 * torch.randn(3000, 40, generator=rng)
    assert suggest_emb_dim(data) == {"pca_dims": 11, "suggested": 16}  # 11 of 12 hold 90%
    assert suggest_emb_dim(torch.randn(500, 2, generator=rng))["suggested"] == 4  # never below 4
    from mvm_core.data import digits_dataset

    assert suggest_emb_dim(digits_dataset(8).data) == {"pca_dims": 21, "suggested": 32}
    with pytest.raises(ValueError, match="variance must be in"):
        suggest_emb_dim(data, variance=1.5)


# ---------------------------------------------------------------------------------------------
# real runs: healthy defaults and engineered failures


def _train(data, steps, seed=0, fault=None, run_dir=None, extra_callbacks=(), **values):
    """A default-preset run (optionally with one fault), its history and health report."""
    config = build_run_config({"data": data, "steps": steps, "seed": seed, "device": "cpu",
                               "log_every": 10, **values})
    monitor = HealthMonitor(final_path=None if run_dir is None else run_dir / "metrics.json")
    callbacks = [monitor]
    if run_dir is not None:
        callbacks = [JSONLLogger(run_dir / "log.jsonl"), Checkpointer(every=0), monitor]
    trainer = build_trainer(config, run_dir=run_dir, callbacks=[*callbacks, *extra_callbacks])
    if fault is not None:
        net = trainer.metric_net if fault == "constant_metric" else trainer.generator
        forward = net.forward
        net.forward = lambda x, *args: forward(x * 0, *args)  # output ignores the input
    try:
        trainer.fit()
    except TrainingDiverged:
        pass
    return trainer, monitor.report


@pytest.fixture(scope="module")
def healthy_ring(tmp_path_factory):
    """The default 2D preset at 300 of its 12,000 steps (its lr decays over the shorter run), seed 0
    through `mvm train` (its run folder is inspected below) and seed 1 through the API."""
    run = tmp_path_factory.mktemp("ring") / "run"
    code = main(["train", "--data", "ring", "--steps", "300", "--no-progress", "--device", "cpu",
                 "--out", str(run)])
    return run, code, _train("ring", 300, seed=1)


@pytest.fixture(scope="module")
def healthy_digits():
    return _train("digits", 200)  # the default image preset at 200 of its 2000 steps


@pytest.fixture(scope="module")
def collapsed_ring(tmp_path_factory):
    """A run folder of a generator that ignores z (written as `mvm train` writes it)."""
    run = tmp_path_factory.mktemp("collapsed") / "run"
    bar = ProgressBar(disable=False)
    return run, _train("ring", 150, fault="ignore_z", run_dir=run, extra_callbacks=[bar]), bar


def test_healthy_default_runs_are_not_flagged(healthy_ring, healthy_digits, capsys):
    run, code, ring_seed1 = healthy_ring
    assert code == 0
    saved = json.loads((run / "metrics.json").read_text())["health"]
    for trainer, report in [ring_seed1, healthy_digits]:
        assert report["verdict"] == "healthy", format_report(report)
        assert report["judged"] and trainer.health_status == "ok"
    assert saved["verdict"] == "healthy", format_report(saved)
    assert main(["inspect", str(run), "--check"]) == 0
    out = capsys.readouterr().out
    assert "verdict: healthy" in out and "matching loss" in out and "metric loss" in out
    assert "too short to judge stalling" in out  # 300 steps: quality still poor, not a stall
    assert (run / "health.png").exists()


def test_learning_rate_far_too_high_is_divergence(caplog):
    with caplog.at_level(logging.WARNING, logger="mvm_core.health"):
        # NaN at step 23 at batch 100; at the default batch 256 the generator's output first
        # collapses to a point (step 10), which the monitor reports as generator collapse
        trainer, report = _train("ring", 100, g_lr=10.0, m_lr=10.0, batch_size=100)
    assert report["verdict"] == "divergence", format_report(report)
    assert "run health: divergence" in caplog.text
    trainer, report = _train("digits", 60, g_lr=1.0, m_lr=1.0)  # no NaN: the embeddings blow up
    assert report["verdict"] == "divergence", format_report(report)
    assert report["failures"][0]["step"] <= 20


def test_constant_metric_network_is_metric_collapse():
    trainer, report = _train("ring", 150, fault="constant_metric")
    assert report["verdict"] == "metric_collapse", format_report(report)
    assert report["failures"][0]["step"] <= 30
    assert trainer.health_status.startswith("metric collapse@")


def test_generator_ignoring_z_is_generator_collapse(collapsed_ring):
    _, (_, ring), bar = collapsed_ring
    assert "health=gen collapse@" in str(bar.bar.postfix)  # the progress bar shows it
    _, digits = _train("digits", 100, fault="ignore_z")
    for report in (ring, digits):
        assert report["verdict"] == "generator_collapse", format_report(report)
        assert report["evidence"]["fake_duplicates"] == 1.0


def test_inspect_prints_the_verdict_and_writes_the_plot(collapsed_ring, capsys):
    run, _, _ = collapsed_ring
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["health"]["verdict"] == "generator_collapse"
    assert main(["inspect", str(run), "--check"]) == 1
    out = capsys.readouterr().out
    assert "verdict: GENERATOR COLLAPSE" in out and "since step" in out and "fix:" in out
    assert (run / "health.png").stat().st_size > 10_000
    assert main(["inspect", str(run), "--json", "--no-plot"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "generator_collapse"


def test_inspect_reads_a_diverged_run(tmp_path, capsys):
    run = tmp_path / "nan"
    _train("ring", 100, run_dir=run, g_lr=10.0, m_lr=10.0, batch_size=100)
    assert main(["inspect", str(run), "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "verdict: DIVERGENCE" in out and "NaN/inf" in out


def test_health_plot_marks_failures(tmp_path):
    h = history(diameter_fake=lambda i: 0.9 if i < 40 else 0.01)
    path = save_health_plot(h, tmp_path / "h.png", diagnose(h))
    assert path.stat().st_size > 10_000


def test_every_failure_mode_has_advice():
    from mvm_core.health import ADVICE

    assert set(ADVICE) == set(FAILURE_MODES)
