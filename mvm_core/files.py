"""Run files are written in place, never through a symbolic link.

A link planted in a run folder (``log.jsonl -> ~/.bashrc``) must not make a run write elsewhere:
:func:`own_file` removes such a link before the file is written, so a regular file takes its place.
"""

from __future__ import annotations

from pathlib import Path


def own_file(path: str | Path) -> Path:
    """``path`` with its parent made and any symbolic link at ``path`` removed (not followed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    return path
