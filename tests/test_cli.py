import json

import pytest
import torch

from mvm_core.checkpoint import load_checkpoint
from mvm_core.cli import main
from mvm_core.runconfig import build_run_config, read_config_file

# constant lr: a decaying schedule depends on --steps, which these tests change on resume
TINY = ["--data", "ring", "--steps", "4", "--batch-size", "16", "--width", "16", "--depth", "1",
        "--emb-dim", "4", "--log-every", "2", "--no-progress", "--device", "cpu",
        "--lr-schedule", "constant"]


def test_unknown_config_key_names_the_nearest(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("stpes: 10\n")
    with pytest.raises(ValueError, match="unknown config key 'stpes'.*Did you mean 'steps'"):
        read_config_file(cfg)
    toml = tmp_path / "c.toml"
    toml.write_text('metric_los = "pml:TripletMarginLoss"\n')
    with pytest.raises(ValueError, match="Did you mean 'metric_loss'"):
        read_config_file(toml)


def test_config_file_and_flags_layer_over_the_preset(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('data = "ring"\nsteps = 7\ng_lr = 0.002\n')
    config = build_run_config(read_config_file(cfg), {"steps": 9})
    assert config.steps == 9  # flag beats file
    assert config.g_lr == 0.002  # file beats preset
    assert config.batch_size == 256  # the preset's value for 2D points
    reference = build_run_config({"data": "ring", "preset": "reference"})
    assert reference.diameter_form == "paired"
    with pytest.raises(ValueError, match="unknown preset 'defualt'.*did you mean 'default'"):
        build_run_config({"preset": "defualt"})


def test_train_sample_eval_resume(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(run)]) == 0
    for name in ("checkpoint.safetensors", "config.json", "log.jsonl", "samples.png", "losses.png", "metrics.json"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"modes@data", "high_quality@data", "reverse_kl@data"} <= set(metrics)
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]

    assert main(["sample", str(run), "-n", "10", "--out", str(tmp_path / "s.npy")]) == 0
    import numpy as np

    assert np.load(tmp_path / "s.npy").shape == (10, 2)
    assert main(["eval", str(run), "--n", "100"]) == 0
    out = capsys.readouterr().out
    assert "modes@data" in out and "feature space: data" in out
    assert json.loads((run / "eval.json").read_text())["feature_space"] == "data"

    assert main(["train", "--resume", str(run), "--steps", "6", "--no-progress"]) == 0
    assert load_checkpoint(run)["step"] == 6
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]


def test_resume_from_cli_equals_a_straight_run(tmp_path):
    straight, split = tmp_path / "a", tmp_path / "b"
    main(["train", *TINY, "--steps", "6", "--out", str(straight)])
    main(["train", *TINY, "--steps", "4", "--out", str(split)])
    main(["train", "--resume", str(split), "--steps", "6", "--no-progress"])
    a, b = load_checkpoint(straight), load_checkpoint(split)
    for key in a["generator"]:
        torch.testing.assert_close(a["generator"][key], b["generator"][key])


def test_bad_flags_fail_clearly(tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["train", "--data", "rnig", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unknown data 'rnig'. Did you mean 'ring'?" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 2 and "--debug" in err
    assert not out.exists()
    with pytest.raises(SystemExit):
        main(["train", "--lr-schedule"])  # missing value: argparse error


def test_debug_flag_shows_the_traceback(tmp_path):
    for argv in (["--debug", "train"], ["train", "--debug"]):
        with pytest.raises(ValueError, match="Did you mean 'grid'"):
            main([*argv, "--data", "gird", "--out", str(tmp_path / "x"), "--no-progress"])


def test_a_failed_start_leaves_no_run_folder(tmp_path, capsys):
    run = tmp_path / "runs" / "bad"
    args = [*TINY, "--generator", "mvm:MLPGenerator", "--generator-kwargs", '{"out_dim": 3}']
    assert main(["train", *args, "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "samples of shape (3,) but the data's samples have shape (2,)" in err
    assert not run.exists()  # config.json had been written: the folder is removed again
    kept = tmp_path / "mine"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    assert main(["train", *args, "--out", str(kept)]) == 2
    assert (kept / "notes.txt").read_text() == "mine"  # a folder that existed is left alone


def test_boolean_flags_alone_or_with_a_value():
    from mvm_core.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["train", "--spectral-norm"]).spectral_norm is True
    assert parser.parse_args(["train", "--spectral-norm", "--steps", "3"]).spectral_norm is True
    assert parser.parse_args(["train", "--spectral-norm", "false"]).spectral_norm is False
    assert parser.parse_args(["train", "--no-tensorboard"]).tensorboard is False
    assert parser.parse_args(["train"]).amp is None  # not given: the preset decides
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--amp", "maybe"])
