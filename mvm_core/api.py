"""The one-call Python entry: a preset's measured recipe on any data, as ``mvm train`` runs it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

IN_MEMORY = "<in-memory>"  # RunConfig.data of a run trained on a tensor or array


def train(data: Any = "digits", preset: str = "default", steps: int | None = None, *,
          labels: Any = None, run_dir: str | Path | None = None, progress: bool = True,
          verbose: bool = True, callbacks=(), **overrides: Any):
    """Train a generator on ``data`` with ``preset`` and return the trained :class:`~mvm_core.trainer.Trainer`.

    The same run as ``mvm train --data DATA --preset PRESET [--steps N] [--KEY VALUE ...]``: the
    preset's recipe for the kind of the data's samples (points ``(N, D)`` or images
    ``(N, C, H, W)``, read from the samples' shape), then ``overrides`` (any
    :class:`~mvm_core.runconfig.RunConfig` key: ``batch_size=128``, ``metric_loss="pml:CircleLoss"``).

    Args:
        data: a data name (``"digits"``, ``"ring"``, ``"grid"``, a registry name such as
            ``"mvm:ring"``), a path (``.npy`` / ``.pt`` file of samples; ``"folder:PATH"`` for a
            folder of images), or in-memory samples (tensor or array; images scaled to [-1, 1]).
        preset: ``"default"`` (measured best), ``"reference"`` (the published formulation), ...
        steps: training steps (default: the preset's budget).
        labels: class ids for in-memory samples (needed with ``conditional=True``).
        run_dir: a folder for the run's checkpoint (every ``checkpoint_every`` steps and at the
            end; :func:`mvm_core.runs.load_run` reopens it); ``None`` keeps the run in memory.
        progress: show a progress bar.
        verbose: print the chosen preset and recipe at start.
        callbacks: extra callbacks (``on_train_start`` / ``on_step_end`` / ``on_train_end``).

    Returns:
        The trained trainer: ``trainer.sample(n)``, ``trainer.state.history``,
        :func:`mvm_core.evaluation.evaluate_trainer` for the quality numbers.
    """
    from .build import build_trainer, describe_start
    from .data import tensor_dataset
    from .data.sources import kind_of
    from .runconfig import build_run_config

    values = {**overrides, "preset": preset, "steps": steps}
    dataset = kind = None
    if isinstance(data, Path):
        data = str(data)
    if isinstance(data, str):
        values["data"] = data
    elif isinstance(data, (torch.Tensor, np.ndarray)):
        dataset = tensor_dataset(data, labels)
        values["data"] = IN_MEMORY
    elif isinstance(data, torch.utils.data.Dataset):
        dataset = data
        values["data"] = getattr(data, "name", IN_MEMORY)
    else:
        raise TypeError(f"data must be a name, a path, a tensor or an array; got {type(data).__name__}.")
    if dataset is not None:
        kind = kind_of(dataset)
    config = build_run_config({}, values, kind=kind)
    extra = list(callbacks)
    if run_dir is not None:
        from .callbacks import Checkpointer

        Path(run_dir).mkdir(parents=True, exist_ok=True)
        extra.append(Checkpointer(every=config.checkpoint_every))
    if progress:
        from .callbacks import ProgressBar

        extra.append(ProgressBar())
    trainer = build_trainer(config, run_dir=run_dir, callbacks=extra, dataset=dataset)
    if verbose:
        print(f"mvm_core.train: {describe_start(config, trainer.dataset)}", file=sys.stderr, flush=True)
    trainer.fit()
    return trainer


__all__ = ["train"]
