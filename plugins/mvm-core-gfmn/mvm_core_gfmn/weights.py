"""Pretrained weights from local files: a documented lookup order, downloads only on request.

Lookup order for a torchvision file such as ``vgg19-dcbb9e9d.pth`` (first hit wins):

1. the explicit path the caller passes (``weights="/path/to/file.pth"``, or a folder holding the
   file under its torchvision name); a missing explicit path is an error, never a fall-through;
2. ``$MVM_CORE_WEIGHTS_DIR/<file name>`` (a folder of weights shared by mvm-core plugins);
3. the framework's own cache, ``$TORCH_HOME/hub/checkpoints/<file name>`` (``torch.hub.get_dir()``,
   ``~/.cache/torch/hub/checkpoints`` by default), where torchvision itself stores downloads;
4. a download into that cache, only when the caller passes ``allow_download=True``.

Otherwise loading fails at once with the file name expected, every place looked at, and how to
supply the file. Torch files are read with ``torch.load(weights_only=True)`` (no unpickling of
code); ``.safetensors`` files are read with safetensors.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

WEIGHTS_DIR_ENV = "MVM_CORE_WEIGHTS_DIR"


@dataclass(frozen=True)
class WeightsSpec:
    """A published weights file: its canonical file name and where it can be downloaded."""

    file_name: str
    url: str
    description: str = ""

    @property
    def hash_prefix(self) -> str | None:
        """The SHA-256 prefix torchvision embeds in its file names (``name-<hex>.pth``)."""
        stem = self.file_name.split(".", 1)[0]
        if "-" not in stem:
            return None
        candidate = stem.rsplit("-", 1)[1]
        return candidate if all(c in "0123456789abcdef" for c in candidate) else None


class WeightsNotFoundError(FileNotFoundError):
    """Raised when a pretrained weights file is not available locally and downloads are off."""


def torch_hub_checkpoints_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (honours ``torch.hub.set_dir`` and ``TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def candidate_paths(spec: WeightsSpec) -> list[Path]:
    """The implicit locations searched for ``spec.file_name``, in lookup order."""
    paths = []
    env_dir = os.environ.get(WEIGHTS_DIR_ENV)
    if env_dir:
        paths.append(Path(env_dir).expanduser() / spec.file_name)
    paths.append(torch_hub_checkpoints_dir() / spec.file_name)
    return paths


def resolve_weights(
    spec: WeightsSpec,
    path: str | os.PathLike[str] | None = None,
    *,
    allow_download: bool = False,
    owner: str = "extractor",
) -> Path:
    """Find the local file for ``spec`` following the lookup order of this module.

    Args:
        spec: the expected file (name and download URL).
        path: explicit file, or folder containing ``spec.file_name``; must exist when given.
        allow_download: download into the torch hub cache when no local copy exists.
        owner: name used in error messages (the extractor class).
    """
    if path is not None:
        explicit = Path(path).expanduser()
        if explicit.is_dir():
            explicit = explicit / spec.file_name
        if not explicit.is_file():
            raise WeightsNotFoundError(
                f"{owner}: weights={str(path)!r} does not exist (expected the file"
                f" {spec.file_name!r}, or a folder containing it). Fix the path, or pass"
                f" weights='imagenet' to use the default lookup order, or weights=None for"
                " random initialization."
            )
        return explicit
    searched = candidate_paths(spec)
    for candidate in searched:
        if candidate.is_file():
            return candidate
    if allow_download:
        target = torch_hub_checkpoints_dir() / spec.file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(spec.url, str(target), hash_prefix=spec.hash_prefix)
        return target
    env_note = (
        f"${WEIGHTS_DIR_ENV} is not set"
        if not os.environ.get(WEIGHTS_DIR_ENV)
        else f"${WEIGHTS_DIR_ENV}={os.environ[WEIGHTS_DIR_ENV]}"
    )
    looked = "\n".join(f"  - {p}" for p in searched)
    raise WeightsNotFoundError(
        f"{owner}: pretrained weights file {spec.file_name!r} not found ({env_note}). Looked in:\n"
        f"{looked}\n"
        "Supply it in one of these ways:\n"
        f"  - pass weights='/path/to/{spec.file_name}' (or a folder containing it);\n"
        f"  - put it in a folder and set {WEIGHTS_DIR_ENV}=/that/folder;\n"
        f"  - put it in {torch_hub_checkpoints_dir()} (torchvision's cache);\n"
        f"  - allow a download from {spec.url} with allow_download=True;\n"
        "  - or pass weights=None for random initialization (tests, debugging)."
    )


def verify_hash_prefix(path: Path, spec: WeightsSpec) -> None:
    """Check the SHA-256 of ``path`` against the prefix in ``spec.file_name`` (if it has one)."""
    prefix = spec.hash_prefix
    if prefix is None:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if not digest.hexdigest().startswith(prefix):
        raise ValueError(
            f"weights file {str(path)!r} has SHA-256 {digest.hexdigest()[:16]}..., expected a"
            f" hash starting with {prefix!r} (the file {spec.file_name!r}). The file is corrupt or"
            " a different model; replace it with the published file."
        )


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file (``weights_only=True``) on CPU."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"{str(path)!r} does not hold a state dict (a mapping of names to tensors); got"
            f" {type(state).__name__}. Save weights with torch.save(model.state_dict(), path)."
        )
    return state
