"""Train a generator by manifold matching (default: the built-in digits, on CPU in a few minutes).

Writes a run folder: config.json, log.jsonl (both objectives per logged step), samples.png,
losses.png, metrics.json and checkpoint.safetensors. `--resume RUN` continues a run exactly
(an interrupted run resumed as it was configured; `--steps N` extends it, and with a decaying
learning-rate schedule the decay is then stretched to the new total).
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
import time
from pathlib import Path

from ..runconfig import RunConfig, build_run_config, read_config_file


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false; got {text!r}")


def _pair(text: str) -> tuple[float, float]:
    parts = [float(x) for x in text.split(",")]
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected two comma-separated numbers; got {text!r}")
    return parts[0], parts[1]


def _weights(text: str) -> dict[str, float]:
    out = {}
    for item in filter(None, text.split(",")):
        name, _, weight = item.rpartition("=")
        if not name:
            raise argparse.ArgumentTypeError(f"expected NAME=WEIGHT; got {item!r}")
        out[name] = float(weight)
    return out


def _kwargs(text: str) -> dict:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"margin\": 0.5}'")
    return value


_TYPES = {bool: _bool, int: int, float: float, str: str}


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _checkpoint_status(run_dir: Path) -> str:
    """Which step the run's checkpoint on disk holds (checkpoints are written atomically)."""
    from ..checkpoint import load_checkpoint
    from ..errors import CheckpointError

    try:
        return f"The checkpoint of step {load_checkpoint(run_dir)['step']} is intact."
    except FileNotFoundError:
        return "No checkpoint was written before the disk filled."
    except CheckpointError as error:
        return f"The checkpoint is not usable: {error}"


def _overrides_used(config: RunConfig) -> list[str]:
    """The registry names this run uses whose entry a plugin replaced with ``override=True``."""
    from ..registry import get_registry

    used = [("generators", config.generator), ("backbones", config.metric_net),
            ("metric_losses", config.metric_loss), ("miners", config.miner),
            *(("regularizers", name) for name in config.regularizers)]
    if isinstance(config.data, str) and ":" in config.data and not config.data.startswith("folder:"):
        used.append(("datasets", config.data))
    lines = []
    for kind, name in used:
        if not isinstance(name, str) or ":" not in name:  # auto, default, random, none
            continue
        try:
            entry = get_registry(kind).get(name)
        except Exception:  # noqa: BLE001 - build_trainer has resolved it; a lookup problem is no note
            continue
        if entry.overrides:
            lines.append(f"{name} is plugin {entry.plugin!r}'s, replacing {', '.join(entry.overrides)}"
                         " (registered with override=True)")
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML or TOML file of RunConfig keys (flags override it)")
    parser.add_argument("--out", help="run folder (default runs/<data>-<time>, made unique); a folder"
                        " that holds a run is refused unless --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="with --out: replace the run that folder holds (its files are deleted)")
    parser.add_argument("--resume", metavar="RUN", help="resume the run in this folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    defaults = RunConfig()
    for name in RunConfig.valid_keys():
        value = getattr(defaults, name)
        flag = "--" + name.replace("_", "-")
        if name in ("g_betas", "m_betas"):
            parser.add_argument(flag, type=_pair, help=f"two numbers 'b1,b2' (default {value})")
        elif name == "regularizers":
            parser.add_argument(flag, type=_weights, help="NAME=WEIGHT[,NAME=WEIGHT]: weighted generator terms")
        elif name.endswith("_kwargs"):
            parser.add_argument(flag, type=_kwargs, help="JSON object of keyword arguments")
        elif name in ("grad_clip", "ema_decay"):
            parser.add_argument(flag, type=float, help="a number, or omit to disable")
        elif isinstance(value, bool):  # `--amp` alone means true; `--amp false` and `--no-amp` too
            parser.add_argument(flag, type=_bool, nargs="?", const=True, metavar="BOOL",
                                help=f"on when given alone (default: preset or {value!r})")
            parser.add_argument("--no-" + name.replace("_", "-"), dest=name, action="store_const",
                                const=False, help=argparse.SUPPRESS)
        else:
            parser.add_argument(flag, type=_TYPES[type(value)], help=f"(default: preset or {value!r})")


def run(args: argparse.Namespace) -> int:
    from ..build import build_trainer, describe_start
    from ..callbacks import (
        Checkpointer,
        Evaluator,
        JSONLLogger,
        LossPlot,
        ProgressBar,
        SampleWriter,
        TensorBoardLogger,
    )
    from ..checkpoint import load_checkpoint
    from ..distributed import cleanup, init_distributed, is_distributed, on_main
    from ..evaluation import default_evaluator
    from ..health import HealthMonitor
    from ..interrupts import stop_on_signals
    from ..runs import claim_run_dir, release_run_dir, remove_orphans, saved_run_config
    from ..trainer import TrainingDiverged

    # under torchrun: join the process group; rank 0 reads and writes files, the others follow
    owns_group = not is_distributed()  # called from a script that already joined: leave it open
    info = init_distributed()
    overrides = {k: getattr(args, k) for k in RunConfig.valid_keys()}
    if args.resume:
        run_dir = Path(args.resume)
        saved = on_main(lambda: load_checkpoint(run_dir))  # one read, the same state on every rank
        base = saved_run_config(saved, run_dir)
        if info.is_main:
            remove_orphans(run_dir)  # .tmp files of a write a kill cut short
        given = {k: v for k, v in overrides.items() if v is not None}
        config = build_run_config(base, {k: v for k, v in given.items() if k == "steps"})
        if set(given) - {"steps"}:
            raise SystemExit(f"--resume continues a run as configured; only --steps may change (got {sorted(given)}).")
    else:
        file_values = read_config_file(args.config) if args.config else {}
        config = build_run_config(file_values, overrides)
        # rank 0 claims a folder no other run holds (config.json created exclusively)
        run_dir = Path(on_main(lambda: str(claim_run_dir(config.to_dict(), args.out,
                                                         overwrite=args.overwrite))))

    try:  # a start that fails (bad data, network, evaluator) leaves no half-made run folder
        evaluate = default_evaluator(config) if info.is_main else None
        # run health: status in the progress bar (placed before it), warnings, "health" in metrics.json
        evaluator = Evaluator(evaluate, every=config.eval_every, final_path=run_dir / "metrics.json")
        health = HealthMonitor(quality=lambda: evaluator.last, final_path=run_dir / "metrics.json")
        # at the end, the checkpoint is written first: a failing evaluation or plot costs nothing
        callbacks = [
            Checkpointer(every=config.checkpoint_every),
            evaluator,
            JSONLLogger(run_dir / "log.jsonl"),
            SampleWriter(run_dir, every=config.sample_every),
            LossPlot(run_dir / "losses.png"),
            health,
        ]
        if not args.no_progress:
            callbacks.append(ProgressBar())
        if config.tensorboard and info.is_main:  # the writer creates its file when constructed
            callbacks.append(TensorBoardLogger(run_dir / "tensorboard"))
        if not info.is_main:  # logs, samples, evaluation and checkpoints: rank 0 only
            callbacks = []
        trainer = build_trainer(config, run_dir=run_dir, callbacks=callbacks)
        overrides = _overrides_used(config)  # recorded in the checkpoint, announced once
        if overrides:
            trainer.extra_state["overrides"] = overrides
            if info.is_main:
                for line in overrides:
                    print(f"mvm train: note: {line}", file=sys.stderr)
        if args.resume:
            trainer.load_state_dict(saved)
    except BaseException:
        if not args.resume and info.is_main:
            release_run_dir(run_dir)
        raise
    if info.is_main:
        print(f"mvm train: {describe_start(config, trainer.dataset)}", flush=True)
    start = time.time()
    try:
        with stop_on_signals(trainer) as interrupt:  # Ctrl-C / SIGTERM: stop, save, say how to resume
            trainer.fit()
    except TrainingDiverged as error:  # the health monitor has written the report by now
        cleanup()
        if info.is_main:
            print(f"mvm train: {error}\nRun health: divergence; `mvm inspect {run_dir}` shows the"
                  " evidence.", file=sys.stderr)
        return 1
    except OSError as error:
        if error.errno not in _NO_SPACE:
            raise
        cleanup()
        print(f"mvm train: no space left on the device at step {trainer.state.step} (writing"
              f" {error.filename or run_dir}). {_checkpoint_status(run_dir)} Free some space, then"
              f" resume with: mvm train --resume {run_dir}", file=sys.stderr)
        return 1
    elapsed = time.time() - start
    if owns_group:
        cleanup()
    if not info.is_main:
        return 0
    if interrupt:
        print(f"mvm train: {interrupt.name} at step {trainer.state.step} of {trainer.config.steps}; the"
              f" checkpoint and outputs are saved in {run_dir}. Resume with:\n"
              f"  mvm train --resume {run_dir}", file=sys.stderr)
        return interrupt.exit_code
    metrics = evaluator.last
    workers = f" on {info.world_size} processes" if info.distributed else ""
    print(f"trained {trainer.state.step} steps in {elapsed:.1f} s{workers} -> {run_dir}")
    for key, value in metrics.items():
        print(f"  {key:32s} {value:.4f}")
    if health.report is not None:
        print(f"run health: {health.report['status']}" + ("" if health.report["verdict"] == "healthy"
              else f" (`mvm inspect {run_dir}` shows the evidence)"))
    return 0
