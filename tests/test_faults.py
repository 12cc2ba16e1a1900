"""Nothing lost, ever: run folders, interrupts, torn logs, bad config values, tampered checkpoints."""

import json
import time

import pytest

from mvm_core.cli import main

TINY = ["--data", "ring", "--steps", "4", "--batch-size", "16", "--width", "16", "--depth", "1",
        "--emb-dim", "4", "--log-every", "2", "--no-progress", "--device", "cpu",
        "--lr-schedule", "constant"]


# ---- run folders -------------------------------------------------------------------------------
def test_two_runs_started_in_the_same_second_get_two_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20260101-000000")  # the same second
    assert main(["train", *TINY]) == 0
    assert main(["train", *TINY, "--steps", "2"]) == 0
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert folders == ["ring-20260101-000000", "ring-20260101-000000-2"]
    first, second = (tmp_path / "runs" / name for name in folders)
    assert json.loads((first / "config.json").read_text())["steps"] == 4
    assert json.loads((second / "config.json").read_text())["steps"] == 2
    assert [json.loads(x)["step"] for x in (first / "log.jsonl").read_text().splitlines()] == [2, 4]
    assert [json.loads(x)["step"] for x in (second / "log.jsonl").read_text().splitlines()] == [2]


def test_out_holding_a_run_is_refused_unless_overwrite(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(run)]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["train", *TINY, "--steps", "2", "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already holds a run" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # untouched
    assert main(["train", *TINY, "--steps", "2", "--out", str(run), "--overwrite"]) == 0
    assert [json.loads(x)["step"] for x in (run / "log.jsonl").read_text().splitlines()] == [2]
    assert json.loads((run / "config.json").read_text())["steps"] == 2


def test_a_failed_start_leaves_the_out_folder_usable(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="unknown data"):
        main(["train", *TINY, "--data", "nosuch", "--out", str(run)])
    assert not run.exists()
    assert main(["train", *TINY, "--out", str(run)]) == 0


# ---- cadences ----------------------------------------------------------------------------------
def test_checkpoint_sample_and_eval_cadence_is_kept_between_logged_steps(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "7", "--log-every", "4", "--checkpoint-every", "3",
                 "--sample-every", "3", "--eval-every", "3", "--eval-samples", "200", "--out", str(run)]) == 0
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 4, 6, 7]
    assert [r["step"] for r in rows if "modes@data" in r] == [3, 6]
    assert sorted(p.name for p in run.glob("samples_*.png")) == ["samples_0000003.png", "samples_0000006.png"]


def test_a_crash_between_logged_steps_loses_less_than_checkpoint_every(tmp_path):
    from mvm_core.callbacks import Checkpointer
    from mvm_core.checkpoint import load_checkpoint
    from mvm_core.data import ring_dataset
    from mvm_core.nets import MLPGenerator, MLPMetricNet
    from mvm_core.trainer import TrainConfig, Trainer

    config = TrainConfig(steps=20, batch_size=16, log_every=10, device="cpu")
    trainer = Trainer(MLPGenerator(hidden=16, depth=1), MLPMetricNet(emb_dim=4, hidden=16, depth=1),
                      ring_dataset(n=256), config, run_dir=tmp_path, callbacks=[Checkpointer(every=3)])
    step = trainer.train_step

    def crash_at_step_8():
        if trainer.state.step == 7:
            raise RuntimeError("killed")
        return step()

    trainer.train_step = crash_at_step_8
    with pytest.raises(RuntimeError, match="killed"):
        trainer.fit()
    assert load_checkpoint(tmp_path)["step"] == 6


# ---- interrupts --------------------------------------------------------------------------------
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_saves_the_interrupted_step_and_prints_the_resume_command(tmp_path, signame):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from mvm_core.checkpoint import load_checkpoint

    run = tmp_path / "run"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "mvm_core.cli", "train", *TINY, "--steps", "100000", "--log-every", "1",
            "--checkpoint-every", "0", "--eval-samples", "200", "--out", str(run)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = run / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(getattr(signal, signame))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + getattr(signal, signame), err
    assert "Traceback" not in err
    step = load_checkpoint(run)["step"]
    assert 3 <= step < 100000
    assert f"{signame} at step {step}" in err and f"mvm train --resume {run}" in err
    assert json.loads(log.read_text().splitlines()[-1])["step"] == step  # nothing trained is lost
    assert (run / "samples.png").exists() and json.loads((run / "metrics.json").read_text())["step"] == step
