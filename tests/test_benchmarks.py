"""Smoke tests: every benchmark runs with ``--quick`` into a temporary folder and writes sane results.

The benchmarks are scripts (``benchmarks/*.py``), loaded here by path and run in-process (one
torch import for all), except where a benchmark itself starts subprocesses (CLI and import times,
the mining contenders).
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
pytestmark = pytest.mark.slow


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _keep_threads():
    threads = torch.get_num_threads()  # the scripts pin torch to one thread
    yield
    torch.set_num_threads(threads)


def _read(out: Path, stem: str) -> dict:
    md = (out / f"{stem}.md").read_text()
    assert md.startswith("#") or md.startswith("Time") or md.startswith("|")
    assert "|---" in md  # at least one Markdown table, rendered from the JSON
    return json.loads((out / f"{stem}.json").read_text())


def test_quality2d_quick(tmp_path):
    assert _load("quality2d").main(["--quick", "--out", str(tmp_path)]) == 0
    data = _read(tmp_path, "quality2d.quick")
    assert {(r["config"], r["data"]) for r in data["runs"]} == {
        (c, m) for c in ("default", "gan") for m in ("ring", "grid")}
    for run in data["runs"]:
        assert 0 <= run["modes"] <= (8 if run["data"] == "ring" else 25)
        assert 0 <= run["high_quality"] <= 1
        assert run["steps"] == 40 and run["resolved"]["steps"] == 40
    assert data["meta"]["preset_values"]["data"] == "ring"
    md = (tmp_path / "quality2d.quick.md").read_text()
    assert "PacGAN2" in md and "Unrolled GAN" in md and "| default |" in md


def test_precision2d_quick(tmp_path):
    assert _load("precision2d").main(["--quick", "--out", str(tmp_path)]) == 0
    data = _read(tmp_path, "precision2d.quick")
    seen = {(r["part"], r["name"], r["data"]) for r in data["runs"]}
    assert ("final", "default", "grid") in seen and ("heldout", "ring12", "ring") in seen
    final, budget = ([r for r in data["runs"] if r["part"] == p and r["data"] == "ring"] for p in ("final", "budget"))
    assert budget[0]["train_s"] == final[0]["train_s"]  # the same resolved config is trained once
    ring12 = next(r for r in data["runs"] if r["name"] == "ring12")
    assert ring12["num_modes"] == 12 and ring12["resolved"]["data_kwargs"] == {"num_modes": 12}
    assert all(r["steps"] == 30 and 0 <= r["high_quality"] <= 1 for r in data["runs"])
    assert (tmp_path / "precision2d.quick_samples.png").stat().st_size > 1000


def test_quality_digits_quick(tmp_path):
    assert _load("quality_digits").main(["--quick", "--out", str(tmp_path)]) == 0
    data = _read(tmp_path, "quality_digits.quick")
    assert data["floor"]["table"]["fid"] < 10  # held-out real digits are close to the training ones
    table = {r["config"]: r for r in data["runs"] if r["part"] == "table"}
    assert set(table) == {"mvm", "gan"}
    for run in table.values():
        assert 0 < run["final"]["fid"] < 1000 and 0 <= run["final"]["precision"] <= 1
        assert [p["step"] for p in run["checkpoints"]] == [10, 20]
        assert all(math.isfinite(p["loss"]) for p in run["checkpoints"])
    modeseek = {r["config"]: r["final"] for r in data["runs"] if r["part"] == "modeseek"}
    assert set(modeseek) == {"cond-ms0", "cond-ms1"}
    assert all(v["diversity_features"] > 0 and 0 <= v["class_accuracy"] <= 1 for v in modeseek.values())
    md = (tmp_path / "quality_digits.quick.md").read_text()
    assert "Spearman(loss, FID)" in md and "real vs real" in md


def test_bench_losses_quick(tmp_path):
    assert _load("bench_losses").main(["--quick", "--out", str(tmp_path)]) == 0
    data = _read(tmp_path, "losses.quick")
    assert len(data["results"]) == 7
    for rows in data["results"].values():
        assert [r["batch"] for r in rows] == [32, 64]
        assert all(r["median_ms"] > 0 and r["median_cpu_ms"] >= 0 for r in rows)


def test_bench_trainer_step_quick(tmp_path):
    _load("bench_trainer_step").main(["--quick", "--out", str(tmp_path)])
    data = _read(tmp_path, "trainer_step.quick")
    rows = {r["contender"]: r for r in data["rows"]}
    assert set(rows) == {"trainer", "minimal", "reference-order"}
    assert rows["minimal"]["vs_minimal"] == 1.0 and all(r["median_ms"] > 0 for r in rows.values())


def test_bench_cli_quick(tmp_path):
    assert _load("bench_cli").main(["--quick", "--out", str(tmp_path)]) == 0
    data = _read(tmp_path, "cli.quick")
    assert data["imports"]["torch_wall"] > 0 and data["imports"]["mvm_core_wall"] > 0
    assert data["cli"]["steps"] == 20 and data["cli"]["steps_per_s"] > 0


def test_bench_mining_quick(tmp_path):
    assert _load("bench_mining").main(["--quick", "--out", str(tmp_path),
                                       "--contenders", "ours-flat", "torch-chunked"]) == 0
    data = json.loads((tmp_path / "mining.quick.json").read_text())
    assert {r["contender"] for r in data["rows"]} >= {"ours-flat", "torch-chunked"}


def test_ablation_quick(tmp_path):
    ablation = _load("ablation")
    assert ablation.main(["--quick", "--data", "ring", "digits", "mnist", "--out", str(tmp_path)]) == 0
    data = _read(tmp_path, "ablation.quick")
    rows = {(r["data"], r["variant"]) for r in data["runs"]}
    assert rows == {(d, v) for d in ("ring", "digits", "mnist") for v in ablation.VARIANTS} | {("ring", "learned-sum")}
    for run in data["runs"]:
        assert run["steps"] == 20 and run["batch_size"] == 32 and run["steps_per_s"] > 0
        metrics = run["metrics"]
        if run["data"] == "ring":  # reverse KL is undefined (NaN) only when no mode is covered
            assert 0 <= metrics["modes@data"] <= 8 and 0 <= metrics["high_quality@data"] <= 1
            assert math.isfinite(metrics["reverse_kl@data"]) == (metrics["modes@data"] > 0)
        else:  # each image dataset judged in its own classifier's features
            (key,) = ablation.headline(run["data"])
            assert key == {"digits": "fid@digits-classifier", "mnist": "fid@mnist-classifier"}[run["data"]]
            assert math.isfinite(metrics[key]) and metrics[key] > 0
        assert (tmp_path / run["samples"]).stat().st_size > 1000
        if run["variant"] in ("data-space", "gan"):  # no metric loss of the MvM kind to be idle
            assert run["metric_zero_share"] is None
    learned = next(r for r in data["runs"] if r["data"] == "digits" and r["variant"] == "learned")
    assert learned["metric_zero_share"] < 0.5  # the default metric learns from the first steps
    md = (tmp_path / "ablation.quick.md").read_text()
    assert "GAN recipes" in md and "own discriminator" in md and "### digits" in md and "### ring" in md


def test_readme_results_blocks_match_the_result_files(tmp_path):
    """Every number in a README results block comes from benchmarks/results (rendered, not typed)."""
    render = _load("render_readme")
    assert render.main(["--check"]) == 0
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- results:x -->\nstale 1.0\n<!-- /results -->\nb\n")
    (tmp_path / "x.md").write_text("# X\n\n| a |\n|---|\n| 2.0 |\n<!-- details -->\nper seed\n")
    assert render.main(["--check", "--readme", str(readme), "--results", str(tmp_path)]) == 1
    assert render.main(["--readme", str(readme), "--results", str(tmp_path)]) == 0
    assert readme.read_text() == "a\n<!-- results:x -->\n| a |\n|---|\n| 2.0 |\n<!-- /results -->\nb\n"
