"""Reopen a finished or interrupted run from its folder (for sampling, evaluation, inspection)."""

from __future__ import annotations

from pathlib import Path

from .checkpoint import load_checkpoint
from .runconfig import build_run_config
from .trainer import Trainer


def load_run(path: str | Path, device: str | None = None) -> Trainer:
    """A trainer restored from a run folder or checkpoint file, ready to sample or continue."""
    from .build import build_trainer

    state = load_checkpoint(path)
    values = dict(state["extra"]["run_config"])
    if device is not None:
        values["device"] = device
    config = build_run_config(values)
    path = Path(path)
    trainer = build_trainer(config, run_dir=path if path.is_dir() else path.parent)
    trainer.load_state_dict(state)
    return trainer
