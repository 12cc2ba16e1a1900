"""The named errors of mvm-core: what went wrong with a run's inputs or files, and how to fix it.

Each is a ``ValueError`` (or ``FileExistsError``) subclass, so code that caught the broad type
keeps working; the ``mvm`` command prints them as one line and exits with status 2.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value (file, flag or keyword) has the wrong type or is out of range."""


class CheckpointError(ValueError):
    """A checkpoint file is not a complete, intact mvm-core checkpoint (empty, truncated,
    corrupted, tampered with, or holding non-finite or mismatched tensors)."""


class RunFolderError(FileExistsError):
    """A run folder already holds a run, and starting a new one there would destroy it."""


#: the errors the ``mvm`` command reports as one line (exit status 2) instead of a traceback
USER_ERRORS = (ConfigError, CheckpointError, RunFolderError)
