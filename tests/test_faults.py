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
