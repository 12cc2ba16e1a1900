"""End to end: `mvm train --preset sr` with L1 + MvM / GAN / L1 alone, `mvm eval` on an SR run,
and a short L1 run on digits x2 that beats bicubic."""

from __future__ import annotations

import json

import pytest
import torch
from mvm_core.build import build_trainer
from mvm_core.cli import main
from mvm_core.runconfig import build_run_config

torch.set_num_threads(1)

TINY = ["--generator-kwargs", '{"width": 8, "blocks": 1}', "--metric-net-kwargs", '{"width": 8, "stages": 2}',
        "--batch-size", "8", "--log-every", "1", "--device", "cpu", "--no-progress"]


@pytest.mark.parametrize("method", ["mvm", "gan", "none"])
def test_cli_trains_sr_digits_and_eval_reports_psnr_against_bicubic(tmp_path, capsys, method):
    run = tmp_path / method
    code = main(["train", "--preset", "sr", "--data", "sr:digits", "--method", method, "--steps", "3",
                 "--out", str(run), *TINY])
    assert code == 0
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and "mvm:ContentLoss" in rows[-1]
    assert ("loss_m" in rows[-1]) == (method != "none")
    assert ("d_accuracy" in rows[-1]) == (method == "gan")
    assert (run / "samples.png").exists()
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    report = json.loads((run / "eval.json").read_text())["metrics"]
    assert {"psnr@y", "ssim@y", "bicubic_psnr@y", "bicubic_ssim@y"} <= set(report)
    assert "psnr@y" in out and 15 < report["bicubic_psnr@y"] < 40


def test_preset_sr_on_the_scikit_image_photos(tmp_path):
    """The default command's data and networks, shrunk: crops of the bundled photos, x2."""
    run = tmp_path / "photos"
    code = main(["train", "--preset", "sr", "--steps", "2", "--out", str(run), *TINY,
                 "--data-kwargs", '{"scale": 2, "patch_size": 16, "test_crop": 48}'])
    assert code == 0
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "paired" and config["data"] == "sr:skimage"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["psnr@y"] > 20 and metrics["ssim@y"] > 0.5


def test_x4_follows_the_data_and_clear_errors():
    config = build_run_config(overrides={"preset": "sr", "data": "sr:digits", "data_kwargs": {"scale": 4, "image_size": 32},
                                         "generator_kwargs": {"width": 4, "blocks": 1}, "steps": 1})
    trainer = build_trainer(config)
    assert trainer.generator.scale == 4 and trainer.dataset.input_shape == (1, 8, 8)
    with pytest.raises(ValueError, match="--preset sr"):  # paired data with the image preset
        build_trainer(build_run_config(overrides={"data": "sr:digits", "task": "paired"}))
    with pytest.raises(ValueError, match="task='paired'"):
        build_trainer(build_run_config(overrides={"data": "sr:digits", "generator": "sr:SRResNet",
                                                  "metric_net": "sr:PatchMetricNet"}))
    with pytest.raises(ValueError, match="data_kwargs"):
        build_trainer(build_run_config(overrides={"data": "digits", "data_kwargs": {"scale": 2}}))


def test_l1_training_on_digits_beats_bicubic():
    """A few hundred L1 steps on digits x2: PSNR and SSIM on Y above bicubic upsampling."""
    config = build_run_config(overrides={
        "preset": "sr", "data": "sr:digits", "method": "none", "steps": 150, "batch_size": 32, "g_lr": 2e-3,
        "generator_kwargs": {"width": 16, "blocks": 2}, "ema_decay": None, "device": "cpu", "log_every": 50,
    })
    trainer = build_trainer(config)
    trainer.fit()
    metrics = trainer.dataset.evaluate(trainer)
    assert metrics["psnr@y"] > metrics["bicubic_psnr@y"] + 1.0
    assert metrics["ssim@y"] > metrics["bicubic_ssim@y"]
