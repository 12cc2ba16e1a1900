"""Checkpoints: one safetensors file, written atomically, loaded without unpickling anything.

Tensors (network weights, optimizer moments, RNG states, data order) are stored as safetensors;
everything else (config, step, optimizer hyperparameters) as JSON in the file's metadata. The file
is written to a temporary name in the same folder, flushed to disk, then renamed over the old one:
a kill at any moment leaves either the previous checkpoint or the new one, never a partial file.

Tensors that share memory (tied weights, one module reachable under two names) are stored once:
the later names point at the first in the JSON tree, so loading hands back one tensor under every
name, tied as it was. A SHA-256 digest of the tensors and the tree is stored with them; loading
checks it and the tensors' finiteness, and any file that is not an intact checkpoint (empty,
truncated, corrupted, tampered with, NaN/inf weights) raises :class:`~mvm_core.errors.CheckpointError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .errors import CheckpointError

META_KEY = "mvm_core_state"
DIGEST_KEY = "mvm_core_sha256"
FILENAME = "checkpoint.safetensors"


def flatten_tensors(tree: Any, prefix: str = "", out: dict | None = None,
                    _seen: dict | None = None) -> tuple[dict, Any]:
    """Split a nested dict/list of tensors and plain values into ``{key: tensor}`` and a JSON tree.

    Tensors are replaced in the tree by ``{"__tensor__": key}``. A tensor met again (the same
    memory, shape and strides: a tied weight) is stored once, its later places pointing at the
    first key; other views into memory already stored are copied, as safetensors needs.
    """
    out = {} if out is None else out
    _seen = {} if _seen is None else _seen  # view identity -> key; storage -> True
    if isinstance(tree, torch.Tensor):
        t = tree.detach()
        storage = (t.device, t.untyped_storage().data_ptr()) if t.numel() else None
        view = (storage, t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)
        if storage is not None and view in _seen:
            return out, {"__tensor__": _seen[view]}
        key = prefix.rstrip(".") or "tensor"
        shared = storage is not None and storage in _seen
        t = t.cpu().contiguous()
        out[key] = t.clone() if shared else t  # safetensors stores no two tensors in one memory
        if storage is not None:
            _seen[view] = key
            _seen[storage] = True
        return out, {"__tensor__": key}
    if isinstance(tree, dict):
        skeleton = {}
        for k, v in tree.items():
            _, skeleton[str(k)] = flatten_tensors(v, f"{prefix}{k}.", out, _seen)
        if any(not isinstance(k, str) for k in tree):
            skeleton = {"__intkeys__": skeleton}
        return out, skeleton
    if isinstance(tree, (list, tuple)):
        items = [flatten_tensors(v, f"{prefix}{i}.", out, _seen)[1] for i, v in enumerate(tree)]
        return out, {"__tuple__": items} if isinstance(tree, tuple) else items
    return out, tree


def _digest(tensors: dict[str, torch.Tensor], skeleton_json: str) -> str:
    """SHA-256 of the JSON tree and every tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256(skeleton_json.encode())
    for key in sorted(tensors):
        t = tensors[key]
        h.update(f"\0{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(memoryview(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()


def unflatten_tensors(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_tensors`."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__tensor__"}:
            if skeleton["__tensor__"] not in tensors:
                raise CheckpointError(f"the checkpoint has no tensor {skeleton['__tensor__']!r}.")
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
        skeleton_json = json.dumps(skeleton)
        metadata = {META_KEY: skeleton_json, DIGEST_KEY: _digest(tensors, skeleton_json)}
        try:
            save_file(tensors, tmp, metadata=metadata)
        except Exception as error:  # safetensors reports I/O errors as its own type
            code = re.search(r"\(os error (\d+)\)", str(error))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from error
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


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", *,
                    check_finite: bool = True) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (no pickle: tensors + JSON only).

    Checks the stored SHA-256 digest and (``check_finite``) that every floating-point tensor is
    finite; a file that fails either, or that is not a readable checkpoint at all, raises
    :class:`~mvm_core.errors.CheckpointError`. Tensors are read onto the CPU and then moved to
    ``device``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    if not path.exists():
        raise FileNotFoundError(
            f"no checkpoint at {str(path)!r}; pass a run folder written by `mvm train` or its"
            f" {FILENAME}."
        )
    damaged = (f"{str(path)!r} is damaged (empty, truncated or overwritten) and cannot be read;"
               " restore it from a copy or train again")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{damaged} (the file is empty).")
    tensors = {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            if META_KEY not in metadata:
                raise CheckpointError(f"{str(path)!r} is a safetensors file but not an mvm-core checkpoint.")
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
        skeleton = json.loads(metadata[META_KEY])
    except CheckpointError:
        raise
    except Exception as error:  # safetensors' header/buffer errors, JSON errors, bad UTF-8
        raise CheckpointError(f"{damaged} ({type(error).__name__}: {error}).") from None
    digest = metadata.get(DIGEST_KEY)
    if digest is None:  # written before checkpoints carried a digest: readable, not verifiable
        warnings.warn(f"{str(path)!r} carries no checksum (written by an older mvm-core): its"
                      " integrity cannot be checked.", stacklevel=2)
    elif _digest(tensors, metadata[META_KEY]) != digest:
        raise CheckpointError(f"{str(path)!r} fails its SHA-256 check: its contents changed after it"
                              " was written (corrupted or edited); restore it from a copy or train again.")
    if check_finite:
        bad = [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        if bad:
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise CheckpointError(f"{str(path)!r} holds NaN/inf values in {shown}; it cannot be"
                                  " sampled from or resumed. Use an earlier checkpoint or train again.")
    if torch.device(device).type != "cpu":
        tensors = {k: t.to(device) for k, t in tensors.items()}
    return unflatten_tensors(skeleton, tensors)
