"""The shipped classifier files: where they live, their metadata, and the checksum check.

Each shipped classifier is ``<stem>.safetensors`` plus ``<stem>.json`` (architecture, split, seed,
accuracy, sha256) in ``mvm_core/assets``, written by ``scripts/train_<stem>.py``.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path


def asset_path(name: str) -> Path:
    """A file shipped in ``mvm_core/assets``."""
    return Path(str(resources.files("mvm_core") / "assets" / name))


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shipped_metadata(stem: str, what: str) -> dict:
    """The metadata of the shipped ``stem`` classifier (``what`` names it in errors)."""
    path = asset_path(f"{stem}.json")
    if not path.is_file():
        raise FileNotFoundError(
            f"the {what} metadata {path} is missing from the installation; reinstall"
            f" mvm-core or regenerate it with `python scripts/train_{stem}.py`."
        )
    return json.loads(path.read_text())


def classifier_weights(stem: str, what: str, weights: str | Path | None) -> tuple[Path, dict]:
    """``(path, metadata)`` of the weights to load: the shipped file, checked against the sha256
    in its metadata, or the user's ``weights`` file (with the JSON of the same stem beside it when
    there is one, else the shipped architecture)."""
    if weights is None:
        path = asset_path(f"{stem}.safetensors")
        metadata = shipped_metadata(stem, what)
        if not path.is_file():
            raise FileNotFoundError(
                f"the {what} weights {path} are missing; reinstall mvm-core or run"
                f" `python scripts/train_{stem}.py` to regenerate them."
            )
        digest = sha256_of(path)
        if digest != metadata.get("sha256"):
            raise RuntimeError(
                f"{path} has sha256 {digest}, but its metadata records {metadata.get('sha256')};"
                " the file is corrupt or was replaced. Reinstall mvm-core or retrain with"
                f" scripts/train_{stem}.py."
            )
        return path, metadata
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(
            f"no {what} weights at {path}; pass a .safetensors file written by"
            f" scripts/train_{stem}.py, or weights=None for the shipped ones."
        )
    sidecar = path.with_suffix(".json")
    return path, json.loads(sidecar.read_text()) if sidecar.is_file() else shipped_metadata(stem, what)


def write_classifier(net, out: str | Path, stem: str, metadata: dict) -> dict:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` into ``out`` (what the loaders read): the
    weights, then ``metadata`` with their sha256 and the script that wrote them. Returns it."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights_path = out / f"{stem}.safetensors"
    save_file({name: tensor.detach().contiguous() for name, tensor in net.state_dict().items()},
              str(weights_path))
    metadata = {**metadata, "sha256": sha256_of(weights_path), "script": f"scripts/train_{stem}.py"}
    (out / f"{stem}.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


__all__ = ["asset_path", "classifier_weights", "sha256_of", "shipped_metadata", "write_classifier"]
