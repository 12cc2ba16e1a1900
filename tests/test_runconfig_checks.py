"""Every RunConfig field is checked for type and range: coerced when unambiguous, else ConfigError."""

import json

import pytest
import torch

from mvm_core.cli import main
from mvm_core.errors import ConfigError
from mvm_core.runconfig import RunConfig, build_run_config, read_config_file
from mvm_core.trainer import TrainConfig


def test_json_false_string_turns_a_flag_off(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"spectral_norm": "false", "tensorboard": "True", "data": "ring"}))
    config = build_run_config(read_config_file(cfg))
    assert config.spectral_norm is False and config.tensorboard is True


def test_yaml_exponent_strings_become_floats(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("g_lr: 1e-3\nm_lr: 2E-4\nm_betas: [0.5, 0.99]\ndata: ring\n")
    values = read_config_file(cfg)
    assert values["g_lr"] == "1e-3"  # YAML 1.1 reads it as a string
    config = build_run_config(values)
    assert config.g_lr == 0.001 and config.m_lr == 0.0002 and config.m_betas == (0.5, 0.99)
    assert isinstance(config.g_lr, float)


def test_whole_numbers_only_for_counts():
    assert RunConfig(steps=20.0).steps == 20 and isinstance(RunConfig(steps=20.0).steps, int)
    with pytest.raises(ConfigError, match=r"steps=20\.5 .*whole number"):
        RunConfig(steps=20.5)
    with pytest.raises(ConfigError, match="batch_size"):
        RunConfig(batch_size=True)


@pytest.mark.parametrize("name,value", [
    ("warmup_steps", -1), ("checkpoint_every", -5), ("sample_every", -1), ("eval_every", -1),
    ("steps", -1), ("seed", -3), ("g_lr", 0.0), ("m_lr", -1e-4), ("g_eps", 0), ("eval_samples", 0),
    ("emb_dim", 0), ("width", 0), ("depth", -1), ("image_size", 0), ("z_dim", -2), ("ema_decay", 1.5),
    ("grad_clip", -1.0), ("g_betas", (0.5, 1.0)), ("m_betas", (0.5,)), ("energy_weight", -1.0),
    ("p", 0.0), ("log_every", 0), ("g_lr", float("nan")), ("g_lr", "fast"), ("spectral_norm", "maybe"),
    ("spectral_norm", 1), ("method", 3), ("data_kwargs", [1, 2]), ("regularizers", {"msgan:x": "a"}),
])
def test_bad_values_raise_a_named_config_error(name, value):
    with pytest.raises(ConfigError, match=name):
        build_run_config({"data": "ring", name: value})


def test_good_values_pass_unchanged():
    config = RunConfig(grad_clip=None, ema_decay=0.999, regularizers={"msgan:mode-seeking": 1},
                       device=torch.device("cpu"))
    assert config.regularizers == {"msgan:mode-seeking": 1.0} and config.device == "cpu"
    assert TrainConfig(warmup_steps=0, g_betas=[0.0, 0.9]).g_betas == (0.0, 0.9)


def test_non_string_data_is_left_to_the_python_api():
    data = torch.randn(10, 2)
    assert RunConfig(data=data).data is data


def test_cli_prints_a_config_error_in_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"data": "ring", "warmup_steps": -10}))
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "warmup_steps" in err and ">= 0" in err, err
    assert not (tmp_path / "run").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [1, \n")
    assert main(["train", "--config", str(bad), "--no-progress"]) == 2
    assert "not valid YAML" in capsys.readouterr().err
