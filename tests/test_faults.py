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
    assert main(["train", *TINY, "--data", "nosuch", "--out", str(run)]) == 2
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


# ---- torn logs and full disks ------------------------------------------------------------------
def test_a_torn_last_log_line_is_skipped_by_inspect_and_resume(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(run)]) == 0
    with open(run / "log.jsonl", "a") as f:
        f.write('{"step": 6, "matching": 0.2')  # a write cut short
    capsys.readouterr()
    assert main(["inspect", str(run), "--no-plot"]) == 0
    assert "2 logged records" in capsys.readouterr().out
    assert main(["train", "--resume", str(run), "--steps", "6", "--no-progress"]) == 0
    steps = [json.loads(x)["step"] for x in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]


def test_a_damaged_middle_log_line_is_named():
    import tempfile
    from pathlib import Path

    from mvm_core.callbacks import read_log

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.jsonl"
        log.write_text('{"step": 1}\n{"ste\n{"step": 3}\n')
        with pytest.raises(ValueError, match="line 2"):
            read_log(log)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (needs root and mount rights; skipped elsewhere)."""
    import os
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_ends_the_run_with_a_message_and_a_good_checkpoint(small_disk):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from mvm_core.callbacks import read_log
    from mvm_core.checkpoint import load_checkpoint

    run = small_disk / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "mvm_core.cli", "train", *TINY, "--steps", "100000",
                           "--log-every", "1", "--checkpoint-every", "25", "--out", str(run)],
                          env=env, capture_output=True, text=True, timeout=300)
    code, err = proc.returncode, proc.stderr
    assert "Traceback" not in err
    assert code == 1 and "no space left on the device" in err and f"mvm train --resume {run}" in err, err
    step = load_checkpoint(run)["step"]  # intact: loads, checksum and finiteness checked
    assert step >= 25 and step % 25 == 0 and f"checkpoint of step {step} is intact" in err
    text = (run / "log.jsonl").read_text()
    assert text.endswith("\n")  # no torn line left by the writer
    assert read_log(run / "log.jsonl")[-1]["step"] >= step
    assert not list(run.glob("*.tmp"))


# ---- failure ordering --------------------------------------------------------------------------
def test_a_failing_final_evaluation_keeps_the_final_checkpoint(tmp_path, monkeypatch):
    import mvm_core.evaluation
    from mvm_core.checkpoint import load_checkpoint

    def broken_evaluator(config):
        def evaluate(trainer):
            raise RuntimeError("evaluation failed")
        return evaluate

    monkeypatch.setattr(mvm_core.evaluation, "default_evaluator", broken_evaluator)
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="evaluation failed"):
        main(["train", *TINY, "--checkpoint-every", "0", "--out", str(run)])
    assert load_checkpoint(run)["step"] == 4


def test_nan_weights_reach_the_divergence_handler_and_keep_the_last_good_checkpoint(tmp_path):
    import torch

    from mvm_core.callbacks import Callback, Checkpointer
    from mvm_core.checkpoint import load_checkpoint
    from mvm_core.data import ring_dataset
    from mvm_core.nets import MLPGenerator, MLPMetricNet
    from mvm_core.trainer import TrainConfig, Trainer, TrainingDiverged

    class OverflowAtStep3(Callback):  # what an update from an inf gradient leaves
        def on_step(self, trainer, step):
            if step == 3:
                with torch.no_grad():
                    next(trainer.generator.parameters()).fill_(float("nan"))

    class Seen(Callback):
        errors = []

        def on_diverged(self, trainer, error):
            self.errors.append(error)

    seen = Seen()
    trainer = Trainer(MLPGenerator(hidden=16, depth=1), MLPMetricNet(emb_dim=4, hidden=16, depth=1),
                      ring_dataset(n=256), TrainConfig(steps=10, batch_size=16, log_every=1, device="cpu"),
                      run_dir=tmp_path, callbacks=[Checkpointer(every=2), OverflowAtStep3(), seen])
    with pytest.raises(TrainingDiverged, match="step 3: the generator weights became NaN/inf"):
        trainer.fit()
    assert len(seen.errors) == 1 and isinstance(seen.errors[0], TrainingDiverged)
    saved = load_checkpoint(tmp_path)  # the step-2 checkpoint, not overwritten with NaN weights
    assert saved["step"] == 2


def test_an_overflowing_run_never_overwrites_its_good_checkpoint(tmp_path):
    from mvm_core.build import build_trainer
    from mvm_core.callbacks import Checkpointer
    from mvm_core.checkpoint import load_checkpoint
    from mvm_core.runconfig import build_run_config
    from mvm_core.trainer import TrainingDiverged

    config = build_run_config({"data": "ring", "steps": 100, "device": "cpu", "log_every": 10,
                               "g_lr": 10.0, "m_lr": 10.0, "batch_size": 100})
    trainer = build_trainer(config, run_dir=tmp_path, callbacks=[Checkpointer(every=2)])
    with pytest.raises(TrainingDiverged):
        trainer.fit()
    saved = load_checkpoint(tmp_path)  # finite: every weight and moment (else CheckpointError)
    assert saved["step"] <= trainer.state.step


# ---- evaluation and training randomness --------------------------------------------------------
def test_evaluation_does_not_change_training(tmp_path):
    import torch

    from mvm_core.checkpoint import load_checkpoint

    common = ["--data", "digits", "--steps", "4", "--batch-size", "16", "--width", "8", "--emb-dim", "4",
              "--log-every", "2", "--no-progress", "--device", "cpu", "--eval-samples", "100"]
    assert main(["train", *common, "--eval-every", "0", "--out", str(tmp_path / "a")]) == 0
    assert main(["train", *common, "--eval-every", "2", "--out", str(tmp_path / "b")]) == 0
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    for part in ("generator", "metric_net"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


# ---- run files ---------------------------------------------------------------------------------
def test_resume_cleans_orphans_and_never_writes_through_links(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(run)]) == 0
    orphan = run / ".checkpoint.safetensors.abc123.tmp"
    orphan.write_bytes(b"half a checkpoint")
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    for name in ("log.jsonl", "losses.png", "samples.png"):
        (run / name).unlink()
        (run / name).symlink_to(outside)
    assert main(["train", "--resume", str(run), "--steps", "6", "--no-progress"]) == 0
    assert not orphan.exists()
    assert outside.read_text() == "precious\n"
    for name in ("log.jsonl", "losses.png", "samples.png"):
        assert not (run / name).is_symlink() and (run / name).stat().st_size > 0


def test_a_reopened_run_never_turns_downloads_on(tmp_path, monkeypatch):
    import mvm_core.build
    from mvm_core.checkpoint import load_checkpoint, save_checkpoint
    from mvm_core.runs import load_run

    run = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(run)]) == 0
    state = load_checkpoint(run)
    state["extra"]["run_config"]["metric_net_kwargs"] = {"pretrained": True, "allow_download": True}
    save_checkpoint(run / "checkpoint.safetensors", state)  # a crafted, self-consistent file
    seen = {}

    def capture(config, **kwargs):
        seen["config"] = config
        raise RuntimeError("stop after building the config")

    monkeypatch.setattr(mvm_core.build, "build_trainer", capture)
    with pytest.raises(RuntimeError, match="stop after"):
        load_run(run)
    assert seen["config"].metric_net_kwargs == {"pretrained": True, "allow_download": False}
