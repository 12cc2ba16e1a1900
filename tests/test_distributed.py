"""DDP training (torchrun, gloo on CPU): 1 process vs 2 processes on the same global batch.

One ``torchrun --nproc_per_node 2`` launch of this file as a script runs every 2-process scenario
(the launch dominates the cost) and saves what each rank saw; the tests compare it with
single-process runs made here. Scenarios: the default objectives on MLPs, the FAISS miner with a
memory bank, a conditional paired batch with a mode-seeking-style term and two metric steps, a
DCGAN generator with SyncBatchNorm, resume under 2 processes, rank-0-only files, a stop asked on
rank 0, a NaN on one rank, and finally a rank that raises (the job must end, not hang).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mvm_core import distributed
from mvm_core.callbacks import Callback, Checkpointer, JSONLLogger, SampleWriter
from mvm_core.data import GenerativeDataset, digits_dataset, ring_dataset
from mvm_core.metric import MetricObjective
from mvm_core.mining import FaissHardNegativeMiner, faiss_available
from mvm_core.nets import DCGANGenerator, DCGANMetricNet, MLPGenerator, MLPMetricNet
from mvm_core.trainer import TrainConfig, Trainer, TrainingDiverged

# compared with one process: the default objectives on MLPs; the FAISS miner with a memory bank;
# a conditional paired batch with a term and two metric steps; DCGAN with SyncBatchNorm; DDP's
# unused-parameter search; a frozen metric network (metric_steps=0)
SCENARIOS = ("mlp", "faiss", "cond", "dcgan", "unused", "frozen")
# Only the order of float sums differs (each rank sums its shard's gradient, DDP adds the two):
# first-step gradients agree to ~1e-7, and the rounding grows a little over the steps. Adam divides
# each gradient by its own running scale, so a weight whose exact gradient is zero (the metric
# net's output bias: distances do not change when every embedding moves by the same vector) turns
# that noise into steps of up to ~1e-5 in 3 steps: weights are compared at 5e-5, 20x below one
# Adam step (lr 1e-3). A wrong gradient scale (x2: Adam hides it in the weights, not in the
# gradients and grad norms compared here) or a wrong batch is off by far more.
LOSS_ATOL = 1e-6  # plus 1e-5 relative
GRAD_ATOL, GRAD_RTOL = 1e-5, 1e-4
WEIGHT_ATOL = 5e-5
LAUNCH_TIMEOUT = 240  # seconds; a hang fails the test instead of blocking the suite


class PairSpread:
    """A generator term on pairs (like mode seeking): minus the mean distance within pairs."""

    needs_pairs = True

    def __call__(self, ctx) -> torch.Tensor:
        x1, x2 = ctx.halves(ctx.fake)
        return -(x1 - x2).abs().mean()


class FailOnRank:
    """A generator term that returns NaN (or raises) on one rank at one step."""

    def __init__(self, rank: int, step: int, how: str):
        self.rank, self.step, self.how = rank, step, how

    def __call__(self, ctx) -> torch.Tensor:
        zero = 0.0 * ctx.fake.sum()
        if distributed.get_info().rank == self.rank and ctx.step == self.step:
            if self.how == "raise":
                raise RuntimeError(f"boom on rank {self.rank}")
            return zero + float("nan")
        return zero


class NoisyGenerator(MLPGenerator):
    """Adds random noise in its forward pass (like dropout or noise inputs); keeps the last draw."""

    def forward(self, z, cond=None):
        self.last_noise = 0.01 * torch.randn(z.shape[0], self.out_dim)
        return super().forward(z, cond) + self.last_noise


class Marker(Callback):
    """Touches a file per call; draws random numbers (it must not desync the ranks); may stop."""

    def __init__(self, folder: Path, name: str, all_ranks: bool = False, stop_at: int | None = None):
        self.folder, self.name, self.all_ranks, self.stop_at = folder, name, all_ranks, stop_at

    def on_step_end(self, trainer, record):
        torch.randn(100)
        trainer.latent(7)  # the trainer's own stream
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{self.name}-rank{trainer.dist.rank}-step{record['step']}").touch()
        if self.stop_at == record["step"]:
            trainer.stop()


def build(kind: str, init_seed: int = 0, **kwargs) -> Trainer:
    """A small trainer of one scenario; ``kwargs`` go to the Trainer (and ``steps`` to the config)."""
    torch.manual_seed(init_seed)
    config = {"steps": kwargs.pop("steps", 3), "batch_size": 16, "log_every": 1, "seed": 0,
              "g_lr": 1e-3, "m_lr": 1e-3, "device": "cpu"}
    objective = None
    if kind in ("mlp", "faiss", "unused", "frozen", "noise"):
        data = ring_dataset(n=512, seed=0)
        g = (NoisyGenerator if kind == "noise" else MLPGenerator)(hidden=32, depth=2)
        m = MLPMetricNet(emb_dim=4, hidden=32, depth=2)
        if kind == "faiss":
            objective = MetricObjective(miner=FaissHardNegativeMiner(k=2, bank=48))
        config.update({"unused": {"find_unused_parameters": True}, "frozen": {"metric_steps": 0}}.get(kind, {}))
    elif kind == "cond":
        points = ring_dataset(n=512, seed=0).data
        data = GenerativeDataset(points, (points[:, 1] > 0).long())  # two classes: upper/lower half
        g = MLPGenerator(hidden=32, depth=2, num_classes=2)
        m = MLPMetricNet(emb_dim=4, hidden=32, depth=2)
        config.update(batch_size=32, conditional=True, metric_steps=2, ema_decay=0.9, grad_clip=1.0)
        kwargs.setdefault("generator_terms", {"spread": (0.1, PairSpread())})
    elif kind == "dcgan":
        data = digits_dataset(8)
        g = DCGANGenerator(z_dim=8, image_size=8, channels=1, width=8)
        m = DCGANMetricNet(image_size=8, channels=1, emb_dim=4, width=8, spectral_norm=True)
        config.update(batch_size=8, sync_batchnorm=True)
        # G's linear layer before BatchNorm has a bias whose exact gradient is 0 (BatchNorm removes
        # the mean): with Adam's eps 1e-6 the rounding noise (~4e-9) becomes ~4e-6 steps in any run
        config.update(g_eps=1e-3)
    else:
        raise ValueError(kind)
    trainer = Trainer(g, m, data, TrainConfig(**config), metric_objective=objective, **kwargs)
    trainer.grads = []  # the gradients each optimizer step applied (after DDP's averaging)
    for net, opt in (("G", trainer.g_opt), ("M", trainer.m_opt)):
        opt.register_step_pre_hook(lambda o, args, kw, net=net, t=trainer: t.grads.append(
            {f"{net}.{i}": p.grad.detach().clone() for i, p in enumerate(o.param_groups[0]["params"])
             if p.grad is not None}))
    return trainer


def summary(trainer: Trainer) -> dict:
    """The logged losses per step and every parameter and buffer at the end."""
    history = [{k: v for k, v in row.items() if k != "time"} for row in trainer.state.history]
    tensors = {f"G.{k}": v.detach().clone() for k, v in trainer.generator.state_dict().items()}
    tensors.update({f"M.{k}": v.detach().clone() for k, v in trainer.metric_net.state_dict().items()})
    return {"history": history, "tensors": tensors, "grads": trainer.grads, "step": trainer.state.step}


# ------------------------------------------------------------------------------------------------
# the 2-process side (this file run by torchrun)


def _worker(out: Path) -> None:
    torch.set_num_threads(1)
    info = distributed.init_distributed()
    assert info.world_size == 2, info
    results: dict = {"rank": info.rank}
    for kind in SCENARIOS:
        if kind == "faiss" and not faiss_available():
            continue
        trainer = build(kind)
        trainer.fit()
        results[kind] = summary(trainer)

    # noise drawn inside a forward pass differs between ranks; the shared streams stay in step
    trainer = build("noise", steps=2)
    trainer.fit()
    results["noise"] = {**summary(trainer), "last_noise": trainer.generator.last_noise}

    # resume: 2 steps, checkpoint (rank 0 writes), a trainer with other initial weights loads it
    first = build("mlp", steps=4)
    first.fit(steps=2)
    first.save_checkpoint(out / "resume" / "checkpoint.safetensors")
    distributed.barrier()
    resumed = build("mlp", init_seed=7, steps=4)
    resumed.load_checkpoint(out / "resume")
    resumed.fit()
    results["resume"] = summary(resumed)

    # files: loggers, checkpoints, samples and markers on rank 0; an all-ranks marker everywhere
    run = out / "run"
    callbacks = [JSONLLogger(run / "log.jsonl"), Checkpointer(every=1), SampleWriter(run, every=1),
                 Marker(out / "markers", "main"), Marker(out / "markers", "every", all_ranks=True)]
    trainer = build("mlp", run_dir=run, callbacks=callbacks)
    trainer.fit()
    results["files"] = summary(trainer)

    # a stop asked by a rank-0 callback stops both ranks
    trainer = build("mlp", steps=6, callbacks=[Marker(out / "stop", "stop", stop_at=2)])
    trainer.fit()
    results["stop_step"] = trainer.state.step

    # NaN on rank 1 only: both ranks stop at the same step, rank 0 saves the last good state
    trainer = build("mlp", run_dir=out / "nan", generator_terms={"nan": (1.0, FailOnRank(1, 1, "nan"))})
    try:
        trainer.fit()
        results["nan"] = "no error"
    except TrainingDiverged as error:
        results["nan"] = str(error)

    # a checkpoint rank 0 cannot read fails on every rank (nobody waits for it)
    try:
        trainer.load_checkpoint(out / "missing")
        results["missing"] = "no error"
    except (FileNotFoundError, RuntimeError) as error:
        results["missing"] = f"{type(error).__name__}: {error}"

    # the command line, as `torchrun --nproc_per_node 2 -m mvm_core.cli train ...` runs it
    from mvm_core.cli import main as cli

    cli(["train", "--data", "ring", "--steps", "4", "--batch-size", "32", "--width", "16",
         "--log-every", "1", "--checkpoint-every", "2", "--eval-samples", "500", "--no-progress",
         "--out", str(out / "cli")])
    cli(["train", "--resume", str(out / "cli"), "--steps", "6", "--no-progress"])

    torch.save(results, out / f"rank{info.rank}.pt")
    distributed.barrier()

    # last: rank 1 raises in the middle of a step; rank 0 waits in a collective until torchrun
    # stops it (or the MVM_DIST_TIMEOUT of the launch expires)
    build("mlp", steps=5, generator_terms={"boom": (1.0, FailOnRank(1, 2, "raise"))}).fit()


@pytest.fixture(scope="module")
def launch(tmp_path_factory):
    """Run the 2-process scenarios once; returns (results per rank, output folder, process info)."""
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", distributed.TIMEOUT_ENV: "60",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "--monitor_interval", "0.5", __file__, str(out)]
    start = time.time()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=LAUNCH_TIMEOUT)
    elapsed = time.time() - start
    output = proc.stdout + proc.stderr
    ranks = []
    for r in range(2):
        path = out / f"rank{r}.pt"
        assert path.exists(), f"rank {r} did not finish the scenarios:\n{output[-6000:]}"
        ranks.append(torch.load(path, weights_only=True))
    return ranks, out, {"returncode": proc.returncode, "output": output, "elapsed": elapsed}


@pytest.fixture(scope="module")
def single():
    """The same scenarios in this process (world size 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {}
        for kind in SCENARIOS:
            if kind == "faiss" and not faiss_available():
                continue
            trainer = build(kind)
            trainer.fit()
            runs[kind] = summary(trainer)
        straight = build("mlp", steps=4)
        straight.fit()
        runs["resume"] = summary(straight)
        return runs
    finally:
        torch.set_num_threads(threads)


def assert_same_run(got: dict, want: dict) -> dict[str, float]:
    """Same logged values at every step, same gradients at every optimizer step and same final
    tensors; returns the largest absolute differences found."""
    assert [row["step"] for row in got["history"]] == [row["step"] for row in want["history"]]
    worst = dict.fromkeys(("losses", "grad norms", "first grads", "grads", "weights"), 0.0)
    for g_row, w_row in zip(got["history"], want["history"]):
        assert set(g_row) == set(w_row)
        for key, value in w_row.items():
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(g_row[key]), key
                continue
            diff = abs(g_row[key] - value)
            kind = "grad norms" if key.startswith("grad_norm") else "losses"
            worst[kind] = max(worst[kind], diff)
            assert diff <= LOSS_ATOL + 1e-5 * abs(value), (key, w_row["step"], g_row[key], value)
    want_grads = want["grads"][len(want["grads"]) - len(got["grads"]):]  # a resumed run: the last
    for i, (got_step, want_step) in enumerate(zip(got["grads"], want_grads, strict=True)):
        for name, value in want_step.items():
            diff = float((got_step[name] - value).abs().max())
            worst["grads"] = max(worst["grads"], diff)
            if i < 2:  # the first generator and metric steps: same weights on both sides
                worst["first grads"] = max(worst["first grads"], diff)
            torch.testing.assert_close(got_step[name], value, atol=GRAD_ATOL, rtol=GRAD_RTOL, msg=name)
    assert set(got["tensors"]) == set(want["tensors"])
    for name, value in want["tensors"].items():
        if value.is_floating_point():
            worst["weights"] = max(worst["weights"], float((got["tensors"][name] - value).abs().max()))
        torch.testing.assert_close(got["tensors"][name], value, atol=WEIGHT_ATOL, rtol=0, msg=name)
    return worst


# ------------------------------------------------------------------------------------------------
# tests


@pytest.mark.parametrize("kind", SCENARIOS)
def test_two_processes_match_one(launch, single, kind):
    if kind == "faiss" and not faiss_available():
        pytest.skip("faiss is not installed")
    ranks, _, _ = launch
    for rank in ranks:  # both replicas equal the single-process run: losses, weights, buffers
        worst = assert_same_run(rank[kind], single[kind])
        print(f"{kind}: max |1 process - 2 processes|", ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    for name, value in ranks[0][kind]["tensors"].items():  # the replicas are bitwise equal
        assert torch.equal(value, ranks[1][kind]["tensors"][name]), name
    assert len(single[kind]["history"]) == 3
    if kind == "cond":  # the term was averaged over ranks (its pairs were split between them)
        assert all("spread" in row for row in ranks[0][kind]["history"])


def test_forward_noise_differs_between_ranks_and_shared_streams_stay_in_step(launch):
    ranks, _, _ = launch
    first, second = (rank["noise"] for rank in ranks)
    assert not torch.equal(first["last_noise"], second["last_noise"])
    assert first["history"] == second["history"]  # same tuples mined, same losses on both ranks
    for name, value in first["tensors"].items():
        assert torch.equal(value, second["tensors"][name]), name


def test_rank_local_random_is_keyed_and_restores_the_shared_streams():
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    before = torch.get_rng_state()
    draws = []
    for key in ((0, 0, 5, 0), (0, 1, 5, 0), (0, 0, 5, 0), (0, 0, 6, 0)):
        with distributed.rank_local_random(key, cpu):
            draws.append(torch.rand(4))
    assert torch.equal(draws[0], draws[2])  # a pure function of (seed, rank, step, call)
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[3])
    assert torch.equal(torch.get_rng_state(), before)


def test_resume_under_two_processes_continues_the_run(launch, single):
    ranks, _, _ = launch
    for rank in ranks:
        assert rank["resume"]["step"] == 4
        assert_same_run(rank["resume"], single["resume"])


def test_only_rank_zero_writes_and_callbacks_keep_ranks_in_step(launch, single):
    ranks, out, _ = launch
    run = out / "run"
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in lines] == [1, 2, 3]  # one writer, no duplicated lines
    assert (run / "checkpoint.safetensors").exists() and (run / "samples_0000003.png").exists()
    markers = sorted(p.name for p in (out / "markers").iterdir())
    assert markers == sorted([f"main-rank0-step{s}" for s in (1, 2, 3)]
                             + [f"every-rank{r}-step{s}" for r in (0, 1) for s in (1, 2, 3)])
    # the callbacks drew random numbers on rank 0 only, yet the run is the plain one
    for rank in ranks:
        assert_same_run(rank["files"], single["mlp"])


def test_command_line_trains_and_resumes_under_two_processes(launch):
    _, out, proc = launch
    run = out / "cli"
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert json.loads((run / "metrics.json").read_text())["step"] == 6
    assert json.loads((run / "config.json").read_text())["batch_size"] == 32  # the global batch
    assert (run / "samples.png").exists() and (run / "checkpoint.safetensors").exists()
    # rank 0 alone reports
    assert proc["output"].count("trained 4 steps") == 1 and proc["output"].count("trained 6 steps") == 1
    assert "on 2 processes" in proc["output"]


def test_stop_on_rank_zero_stops_all_ranks(launch):
    ranks, out, _ = launch
    assert [rank["stop_step"] for rank in ranks] == [2, 2]
    assert sorted(p.name for p in (out / "stop").iterdir()) == ["stop-rank0-step1", "stop-rank0-step2"]


def test_nan_on_one_rank_stops_every_rank_after_rank_zero_saved(launch):
    ranks, out, _ = launch
    for rank in ranks:
        assert "step 1" in rank["nan"] and "NaN" in rank["nan"], rank["nan"]
    assert "checkpoint.safetensors" in ranks[0]["nan"]  # rank 0 saved the last good state
    assert (out / "nan" / "checkpoint.safetensors").exists()


def test_an_unreadable_checkpoint_fails_on_every_rank(launch):
    ranks, _, _ = launch
    assert ranks[0]["missing"].startswith("FileNotFoundError: no checkpoint")
    assert ranks[1]["missing"].startswith("RuntimeError: rank 0 failed: FileNotFoundError: no checkpoint")


def test_a_failing_rank_ends_the_job(launch):
    _, _, proc = launch
    print(f"2-process launch: {proc['elapsed']:.1f} s")
    assert proc["returncode"] != 0
    assert "boom on rank 1" in proc["output"]
    assert proc["elapsed"] < LAUNCH_TIMEOUT


# ------------------------------------------------------------------------------------------------
# single-process pieces


def test_gather_and_helpers_are_identity_in_one_process():
    x = torch.randn(4, 3, requires_grad=True)
    assert distributed.gather_with_grad(x) is x
    assert distributed.all_gather_tensor(x) is x
    assert distributed.get_info() == distributed.DistInfo()
    assert distributed.on_main(lambda: 5) == 5
    assert distributed.shard_rows(16, distributed.DistInfo()) is None


def test_shards_keep_pairs_together_and_cover_the_batch():
    rows = [distributed.shard_rows(16, distributed.DistInfo(r, 4), paired=True) for r in range(4)]
    assert sorted(torch.cat(rows).tolist()) == list(range(16))
    for r in rows:  # local row i and i + n/2 are a pair of the global batch (i, i + 8)
        half = len(r) // 2
        assert torch.equal(r[half:] - r[:half], torch.full((half,), 8))
    with pytest.raises(ValueError, match="multiple of 8"):
        distributed.shard_rows(12, distributed.DistInfo(0, 4), paired=True)


def test_batch_source_shards_the_global_batch():
    from mvm_core.data.batches import BatchSource

    data = ring_dataset(n=64, seed=0)
    full = BatchSource(data, 8, seed=3)
    parts = [BatchSource(data, 8, seed=3, rank=r, world_size=2) for r in range(2)]
    for _ in range(12):  # over an epoch boundary
        x, _ = next(full)
        assert torch.equal(torch.cat([next(p)[0] for p in parts]), x)
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        BatchSource(data, 9, rank=0, world_size=2)


def test_init_without_torchrun_variables_names_the_launcher(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for key in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        distributed.init_distributed()


def test_sync_batchnorm_conversion_keeps_weights_and_keys():
    net = DCGANGenerator(z_dim=8, image_size=8, channels=1, width=8)
    keys = list(net.state_dict())
    bn = net.project[1]
    converted = distributed.convert_sync_batchnorm(net, "cpu")
    assert isinstance(converted.project[1], distributed.CPUSyncBatchNorm)
    assert converted.project[1].weight is bn.weight and list(converted.state_dict()) == keys
    z = torch.randn(6, 8)
    torch.manual_seed(0)
    a = converted(z)
    net2 = DCGANGenerator(z_dim=8, image_size=8, channels=1, width=8)
    net2.load_state_dict(converted.state_dict())
    assert torch.allclose(a, net2(z), atol=1e-6)  # one process: plain BatchNorm


if __name__ == "__main__":  # run by torchrun from the `launch` fixture
    _worker(Path(sys.argv[1]))
