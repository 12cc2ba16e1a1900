"""Trainer callbacks: logs, progress bar, TensorBoard, samples, evaluation, checkpoints.

A callback is any object with some of ``on_train_start(trainer)``, ``on_step_end(trainer, record)``,
``on_step(trainer, step)``, ``on_train_end(trainer)`` and ``on_diverged(trainer, error)`` (called
when a loss becomes NaN/inf, before :class:`~mvm_core.trainer.TrainingDiverged` propagates).
``on_step_end`` runs on logged steps (every ``log_every`` steps, the last step, and the multiples of
any callback's ``record_every``) with ``record``, the dict logged at that step; ``on_step`` runs
after every step, after ``on_step_end``, so a cadence such as "checkpoint every 7 steps" is kept
exactly whatever ``log_every`` is. Under DDP, ask ``trainer.stop()`` from ``on_step_end`` (where
the ranks agree on it), not from ``on_step``.

Under DDP (torchrun) the trainer runs callbacks on rank 0 only, so logs, samples, plots,
evaluations and checkpoints are written once; a callback that must run on every rank (one that
takes part in a collective) sets ``all_ranks = True``. A stop asked by a callback stops all ranks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .files import own_file
from .plotting import save_image_grid, save_loss_curves, save_scatter


class Callback:
    """Base class with no-op hooks (subclassing is optional)."""

    all_ranks: bool = False  # under DDP: run on every rank, not on rank 0 only

    def on_train_start(self, trainer) -> None: ...

    def on_step_end(self, trainer, record: dict) -> None: ...

    def on_train_end(self, trainer) -> None: ...

    def on_diverged(self, trainer, error: Exception) -> None: ...


def read_log(path: str | Path) -> list[dict]:
    """The records of a ``log.jsonl``; a torn last line (a kill or a full disk mid-write) is
    skipped. A damaged line elsewhere raises a ``ValueError`` naming it."""
    path = Path(path)
    lines = path.read_text(errors="replace").splitlines()
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if i == len(lines) - 1:  # the torn end of an interrupted write
                break
            raise ValueError(f"{str(path)!r} line {i + 1} is not a JSON record: {line[:80]!r}.") from None
        if isinstance(record, dict) and "step" in record:
            records.append(record)
    return records


class JSONLLogger(Callback):
    """Appends every logged record as one JSON line to ``path`` (flushed at each line).

    A write that fails (e.g. a full disk) is undone, so the log never ends in a torn line from
    this writer; the error propagates and ends the run.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file = None

    def on_train_start(self, trainer) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # on resume, drop lines past the checkpoint's step (and a torn last line): no duplicates
        kept = []
        if self.path.exists() and not self.path.is_symlink():
            kept = [r for r in read_log(self.path) if r["step"] <= trainer.state.step]
        own_file(self.path).write_text("".join(json.dumps(r) + "\n" for r in kept))
        self._file = self.path.open("a")

    def on_step_end(self, trainer, record: dict) -> None:
        end = self._file.tell()
        try:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        except OSError as error:  # the run ends: undo the partial line, close the log
            _close_truncated(self._file, self.path, end)
            self._file = None
            raise OSError(error.errno, error.strerror, str(self.path)) from error

    def on_train_end(self, trainer) -> None:
        if self._file:
            self._file.close()
            self._file = None


def _close_truncated(file, path: Path, size: int) -> None:
    """Close ``file`` (dropping what it could not write) and cut ``path`` back to ``size`` bytes."""
    try:
        file.close()
    except OSError:  # the buffered rest fails again: it is dropped with the truncation below
        pass
    with open(path, "r+b") as f:
        f.truncate(size)


class ProgressBar(Callback):
    """A tqdm bar showing the live losses and, with a :class:`~mvm_core.health.HealthMonitor`
    placed before it, the run's health status (``health=ok``, ``health=gen collapse@1200``)."""

    def __init__(self, keys=("matching", "loss_m", "hausdorff"), disable: bool | None = None):
        self.keys = keys
        self.disable = disable
        self.bar = None

    def on_train_start(self, trainer) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=trainer.config.steps, initial=trainer.state.step, disable=self.disable,
                        dynamic_ncols=True, desc="mvm train")
        self._last = trainer.state.step

    def on_step_end(self, trainer, record: dict) -> None:
        self.bar.update(record["step"] - self._last)
        self._last = record["step"]
        postfix = {k: f"{record[k]:.4g}" for k in self.keys if k in record}
        if getattr(trainer, "health_status", None):
            postfix["health"] = trainer.health_status
        self.bar.set_postfix(postfix)

    def on_train_end(self, trainer) -> None:
        self.bar.close()


class TensorBoardLogger(Callback):
    """Scalars to TensorBoard when it is installed (a clear error otherwise)."""

    def __init__(self, log_dir: str | Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ImportError("TensorBoard logging needs `pip install tensorboard`.") from err
        self.writer = SummaryWriter(str(log_dir))

    def on_step_end(self, trainer, record: dict) -> None:
        for k, v in record.items():
            if k not in ("step", "time"):
                self.writer.add_scalar(k, v, record["step"])

    def on_train_end(self, trainer) -> None:
        self.writer.flush()


class Checkpointer(Callback):
    """Saves an atomic checkpoint every ``every`` steps and at the end."""

    def __init__(self, every: int = 500):
        self.every = every
        self._saved_step: int | None = None

    def on_step(self, trainer, step: int) -> None:
        if self.every and step % self.every == 0:
            trainer.save_checkpoint()
            self._saved_step = step

    def on_train_end(self, trainer) -> None:
        if self._saved_step != trainer.state.step:  # not saved already by the cadence
            trainer.save_checkpoint()
            self._saved_step = trainer.state.step


class SampleWriter(Callback):
    """Writes a sample picture (image grid or 2D scatter) every ``every`` steps and at the end;
    for a paired task, held-out (input, output, target) rows."""

    def __init__(self, folder: str | Path, every: int = 0, n: int = 64):
        self.folder = Path(folder)
        self.every = every
        self.n = n

    def write(self, trainer, name: str) -> Path:
        if getattr(trainer.config, "task", "generate") == "paired":
            return self._write_pairs(trainer, name)
        samples = trainer.sample(self.n)
        if samples.ndim == 4:
            return save_image_grid(samples, self.folder / name)
        mixture = getattr(trainer.dataset, "mixture", None)
        return save_scatter(samples, self.folder / name, means=None if mixture is None else mixture.means,
                            extent=None if mixture is None else mixture.extent(),
                            title=f"step {trainer.state.step}")

    def _write_pairs(self, trainer, name: str) -> Path:
        """Held-out pairs as rows of (input resized to the target's size, output, target)."""
        import torch
        import torch.nn.functional as F

        inputs, targets = trainer.dataset.heldout(max(1, self.n // 3))
        outputs = trainer.predict(inputs)
        if targets.ndim != 4:  # 2D points: outputs over targets
            return save_scatter(outputs, self.folder / name, real=targets.float().cpu())
        columns = [outputs.clamp(-1, 1), targets.float().cpu()]
        if inputs.ndim == 4 and inputs.shape[1] == targets.shape[1]:
            columns.insert(0, F.interpolate(inputs.float().cpu(), size=targets.shape[-2:], mode="nearest"))
        grid = torch.stack(columns, dim=1).flatten(0, 1)
        scale = 4 if targets.shape[-1] <= 16 else 2
        return save_image_grid(grid, self.folder / name, nrow=2 * len(columns), scale=scale)

    def on_step(self, trainer, step: int) -> None:
        if self.every and step % self.every == 0:
            self.write(trainer, f"samples_{step:07d}.png")

    def on_train_end(self, trainer) -> None:
        self.write(trainer, "samples.png")


class LossPlot(Callback):
    """Writes the plot of both objectives over steps at the end of training."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_train_end(self, trainer) -> None:
        if trainer.state.history:
            save_loss_curves(trainer.state.history, self.path)


class Evaluator(Callback):
    """Runs ``evaluate(trainer) -> dict`` every ``every`` steps (added to the record) and at the end.

    The evaluation runs on forked random streams (torch's global CPU and CUDA generators are
    restored afterwards), so evaluating never changes training: a run with ``every=500`` trains
    the same weights as one with ``every=0``, and resumes the same way.
    """

    def __init__(self, evaluate: Callable[[object], dict[str, float]], every: int = 0,
                 final_path: str | Path | None = None):
        self.evaluate = evaluate
        self.every = every
        self.final_path = None if final_path is None else Path(final_path)
        self.last: dict[str, float] = {}

    @property
    def record_every(self) -> int:
        """The trainer records the evaluation steps, so every evaluation is in the log."""
        return self.every

    def _evaluate(self, trainer) -> dict[str, float]:
        import torch

        devices = [trainer.device] if getattr(trainer, "device", None) is not None and trainer.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            return self.evaluate(trainer)

    def on_step_end(self, trainer, record: dict) -> None:
        if self.every and record["step"] % self.every == 0:
            self.last = self._evaluate(trainer)
            record.update(self.last)

    def on_train_end(self, trainer) -> None:
        self.last = self._evaluate(trainer)
        if self.final_path is not None:
            trainer.write_json(self.final_path.name, {"step": trainer.state.step, **self.last})
