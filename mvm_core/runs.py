"""Run folders: claim a fresh one for a new run, reopen a finished or interrupted one.

A new run never reuses a folder that holds a run. Claiming is atomic: the run's ``config.json``
is created with exclusive creation, so of two runs started at the same moment on the same name
one gets it and the other moves on to the next free name (default names) or is refused (``--out``).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from .checkpoint import load_checkpoint
from .errors import CheckpointError, RunFolderError
from .runconfig import build_run_config
from .trainer import Trainer

#: the files and folders a run writes (what ``--overwrite`` removes before a new run starts)
RUN_FILES = ("config.json", "log.jsonl", "checkpoint.safetensors", "metrics.json", "eval.json",
             "losses.png", "samples.png", "health.png", "tensorboard")
RUN_GLOBS = ("samples_*.png", ".checkpoint.safetensors.*.tmp", "*.json.tmp")  # see remove_orphans


def holds_run(folder: Path) -> bool:
    """Whether ``folder`` holds (part of) a run: a config, a log or a checkpoint."""
    return any((folder / name).exists() for name in ("config.json", "log.jsonl", "checkpoint.safetensors"))


def default_run_name(data: Any) -> str:
    """``<data>-<YYYYmmdd-HHMMSS>`` (a data path or in-memory data is named by its kind)."""
    label = data if isinstance(data, str) else "data"
    label = Path(label).stem if label.endswith((".npy", ".pt")) else label
    return f"{label.replace(':', '-').replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"


def _claim(folder: Path, config: dict[str, Any]) -> bool:
    """Create ``folder/config.json`` exclusively; False when the folder already holds a run."""
    folder.mkdir(parents=True, exist_ok=True)
    if holds_run(folder):
        return False
    try:
        with open(folder / "config.json", "x") as f:
            f.write(json.dumps(config, indent=2))
    except FileExistsError:  # another run claimed it between the check and the creation
        return False
    return True


def claim_run_dir(config: dict[str, Any], out: str | Path | None = None, *, root: str | Path = "runs",
                  overwrite: bool = False) -> Path:
    """A folder for a new run, claimed by writing its ``config.json``.

    Without ``out`` the folder is ``root/<data>-<time>``, or ``...-2``, ``...-3`` when runs started
    in the same second took those names. With ``out`` a folder holding a run is refused with a
    :class:`~mvm_core.errors.RunFolderError`, unless ``overwrite`` removes that run's files first.
    """
    if out is None:
        base = Path(root) / default_run_name(config.get("data", "run"))
        for i in range(1, 10_000):
            folder = base if i == 1 else base.with_name(f"{base.name}-{i}")
            if _claim(folder, config):
                return folder
        raise RunFolderError(f"no free run folder name under {str(base)!r}-N; pass --out.")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"--out {str(folder)!r} is a file, not a folder; pick another path.")
    if overwrite and folder.is_dir():
        for name in RUN_FILES:
            target = folder / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
        for pattern in RUN_GLOBS:
            for target in folder.glob(pattern):
                target.unlink(missing_ok=True)
    if not _claim(folder, config):
        raise RunFolderError(
            f"{str(folder)!r} already holds a run; a new run there would destroy its checkpoint and"
            f" log. Continue it with `mvm train --resume {folder}`, pick another --out, or pass"
            " --overwrite to replace it."
        )
    return folder


def release_run_dir(folder: Path) -> None:
    """Undo :func:`claim_run_dir` for a run that failed to start: its config goes, and the folder
    too when nothing else is in it, so the same ``--out`` can be used again."""
    (folder / "config.json").unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:  # other files are there: leave them
        pass


def remove_orphans(folder: Path) -> list[Path]:
    """Delete temporary files a killed run left behind (a checkpoint or JSON write cut short)."""
    removed = []
    for pattern in (".checkpoint.safetensors.*.tmp", "*.json.tmp"):
        for target in folder.glob(pattern):
            target.unlink(missing_ok=True)
            removed.append(target)
    return removed


def saved_run_config(state: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The RunConfig values a checkpoint of `mvm train` carries (a CheckpointError if none), with
    downloads turned off: the weights are in the checkpoint, and a file's config must never open
    network access (``allow_download`` in any ``*_kwargs`` is set to False)."""
    values = state.get("extra", {}).get("run_config") if isinstance(state.get("extra"), dict) else None
    if not isinstance(values, dict):
        raise CheckpointError(f"{str(path)!r} holds no run config: it was not written by `mvm train`"
                              " (a checkpoint saved from Python is loaded with Trainer.load_checkpoint).")
    values = dict(values)
    for key, kwargs in values.items():
        if key.endswith("_kwargs") and isinstance(kwargs, dict) and "allow_download" in kwargs:
            values[key] = {**kwargs, "allow_download": False}
    return values


def load_run(path: str | Path, device: str | None = None) -> Trainer:
    """A trainer restored from a run folder or checkpoint file, ready to sample or continue."""
    from .build import build_trainer

    state = load_checkpoint(path)
    values = saved_run_config(state, path)
    if device is not None:
        values["device"] = device
    config = build_run_config(values)
    path = Path(path)
    trainer = build_trainer(config, run_dir=path if path.is_dir() else path.parent)
    trainer.load_state_dict(state)
    return trainer
