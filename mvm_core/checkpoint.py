"""Checkpoints: one safetensors file, written atomically, loaded without unpickling anything.

Tensors (network weights, optimizer moments, RNG states, data order) are stored as safetensors;
everything else (config, step, optimizer hyperparameters) as JSON in the file's metadata. The file
is written to a temporary name in the same folder, flushed to disk, then renamed over the old one:
a kill at any moment leaves either the previous checkpoint or the new one, never a partial file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

META_KEY = "mvm_core_state"
FILENAME = "checkpoint.safetensors"


def flatten_tensors(tree: Any, prefix: str = "", out: dict | None = None) -> tuple[dict, Any]:
    """Split a nested dict/list of tensors and plain values into ``{key: tensor}`` and a JSON tree.

    Tensors are replaced in the tree by ``{"__tensor__": key}``.
    """
    out = {} if out is None else out
    if isinstance(tree, torch.Tensor):
        key = prefix.rstrip(".") or "tensor"
        out[key] = tree.detach().cpu().contiguous()
        return out, {"__tensor__": key}
    if isinstance(tree, dict):
        skeleton = {}
        for k, v in tree.items():
            _, skeleton[str(k)] = flatten_tensors(v, f"{prefix}{k}.", out)
        if any(not isinstance(k, str) for k in tree):
            skeleton = {"__intkeys__": skeleton}
        return out, skeleton
    if isinstance(tree, (list, tuple)):
        items = [flatten_tensors(v, f"{prefix}{i}.", out)[1] for i, v in enumerate(tree)]
        return out, {"__tuple__": items} if isinstance(tree, tuple) else items
    return out, tree


def unflatten_tensors(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_tensors`."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__tensor__"}:
            return tensors[skeleton["__tensor__"]]
        if set(skeleton) == {"__tuple__"}:
            return tuple(unflatten_tensors(v, tensors) for v in skeleton["__tuple__"])
        if set(skeleton) == {"__intkeys__"}:
            return {int(k): unflatten_tensors(v, tensors) for k, v in skeleton["__intkeys__"].items()}
        return {k: unflatten_tensors(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten_tensors(v, tensors) for v in skeleton]
    return skeleton


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (nested dicts of tensors and JSON values) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors, skeleton = flatten_tensors(state)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={META_KEY: json.dumps(skeleton)})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (no pickle: tensors + JSON only)."""
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    if not path.exists():
        raise FileNotFoundError(
            f"no checkpoint at {str(path)!r}; pass a run folder written by `mvm train` or its"
            f" {FILENAME}."
        )
    tensors = {}
    with safe_open(str(path), framework="pt", device=str(device)) as f:
        metadata = f.metadata() or {}
        if META_KEY not in metadata:
            raise ValueError(f"{str(path)!r} is a safetensors file but not an mvm-core checkpoint.")
        for key in f.keys():
            tensors[key] = f.get_tensor(key)
    return unflatten_tensors(json.loads(metadata[META_KEY]), tensors)
