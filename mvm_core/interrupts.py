"""Ctrl-C and SIGTERM end a training run cleanly: the step in progress finishes, the run's
checkpoint and outputs are written as at a normal end, and the caller prints how to resume.

A second signal while the run winds down is not caught (the default action: Ctrl-C raises
``KeyboardInterrupt``); checkpoints are written atomically, so even then none is left half-written.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s)


class Interrupt:
    """What :func:`stop_on_signals` caught: ``signum`` (None when none came) and its exit status."""

    def __init__(self):
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + the signal number."""
        return 128 + int(self.signum) if self.signum else 0


@contextmanager
def stop_on_signals(trainer) -> Iterator[Interrupt]:
    """Within the block, SIGINT/SIGTERM ask ``trainer`` to stop after its current step.

    Outside the main thread (where handlers cannot be installed) the block runs unchanged.
    """
    caught = Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}

    def handle(signum, frame):
        caught.signum = signum
        trainer.request_stop()  # under DDP all ranks stop at the same (logged) step
        for s, handler in previous.items():  # a second signal is not caught
            signal.signal(s, handler)

    for s in SIGNALS:
        signal.signal(s, handle)
    try:
        yield caught
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
