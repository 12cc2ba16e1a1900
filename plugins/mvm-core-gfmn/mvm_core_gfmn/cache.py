"""On-disk cache of real-data feature statistics (safetensors + JSON), reused across runs.

Real statistics are computed once per (dataset, extractor) pair: for VGG19 on a large dataset that
is a full pass over the data. The cache key is a SHA-256 over:

* the dataset identity: a string the caller chooses (name, path, version) that must change when
  the data changes (:func:`tensor_fingerprint` makes one from an in-memory tensor);
* the extractor: its class, a hash of every weight and buffer (so two random initializations,
  or fine-tuned weights, never share an entry), and the selected layers;
* the preprocessing: input size, channels, normalization mean and std;
* the format version of this module.

Files: ``<cache_dir>/<key>.safetensors`` (``<layer>/mean``, ``<layer>/var``, float64) and
``<key>.json`` (count, the key's ingredients, readable). Both are written to temporary files and
renamed, JSON last, so a reader never sees a half-written entry. The directory is, in order: the
``cache_dir`` argument, ``$MVM_CORE_CACHE_DIR/gfmn``, ``~/.cache/mvm-core/gfmn``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
from mvm_core.features import FeatureExtractor
from safetensors.torch import load_file, save_file

from .statistics import FeatureStatistics, compute_real_statistics

CACHE_DIR_ENV = "MVM_CORE_CACHE_DIR"
FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """``$MVM_CORE_CACHE_DIR/gfmn`` if set, else ``~/.cache/mvm-core/gfmn``."""
    root = os.environ.get(CACHE_DIR_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "mvm-core"
    return base / "gfmn"


def tensor_fingerprint(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes: a dataset identity for in-memory data."""
    digest = hashlib.sha256()
    _hash_tensor(digest, "data", tensor)
    return digest.hexdigest()


def _hash_tensor(digest: hashlib._Hash, name: str, tensor: torch.Tensor) -> None:
    t = tensor.detach().cpu().contiguous()
    digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
    if t.numel():
        digest.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))


def extractor_identity(extractor: FeatureExtractor) -> dict:
    """What determines an extractor's features: class, weights hash, layers, preprocessing."""
    digest = hashlib.sha256()
    for name, tensor in extractor.state_dict().items():
        _hash_tensor(digest, name, tensor)
    cls = type(extractor)
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "weights_sha256": digest.hexdigest(),
        "layers": list(extractor.selected),
        "preprocessing": {
            "input_size": extractor.input_size,
            "input_channels": extractor.input_channels,
            "mean": [float(m) for m in extractor.mean],
            "std": [float(s) for s in extractor.std],
        },
    }


def statistics_key(dataset_key: str, extractor: FeatureExtractor) -> tuple[str, dict]:
    """The cache key (hex) and the JSON-able description it hashes."""
    if not isinstance(dataset_key, str) or not dataset_key:
        raise ValueError(
            "dataset_key must be a non-empty string identifying the real data (e.g."
            " 'cifar10-train-v1' or tensor_fingerprint(images)); got"
            f" {dataset_key!r}."
        )
    description = {
        "format": FORMAT_VERSION,
        "dataset": dataset_key,
        "extractor": extractor_identity(extractor),
    }
    blob = json.dumps(description, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:32], description


def save_statistics(stats: FeatureStatistics, path_stem: str | Path, metadata: dict) -> None:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` atomically (JSON last)."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for layer in stats.layers:
        tensors[f"{layer}/mean"] = stats.mean[layer].detach().cpu().contiguous()
        tensors[f"{layer}/var"] = stats.var[layer].detach().cpu().contiguous()
    tmp = stem.with_name(f"{stem.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, stem.with_suffix(".safetensors"))
    info = dict(metadata, count=stats.count, layers=list(stats.layers))
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True))
    os.replace(tmp, stem.with_suffix(".json"))


def load_statistics(path_stem: str | Path) -> tuple[FeatureStatistics, dict]:
    """Read statistics written by :func:`save_statistics`; returns them and the JSON metadata."""
    stem = Path(path_stem)
    info = json.loads(stem.with_suffix(".json").read_text())
    tensors = load_file(str(stem.with_suffix(".safetensors")))
    layers = info["layers"]
    stats = FeatureStatistics(
        {layer: tensors[f"{layer}/mean"] for layer in layers},
        {layer: tensors[f"{layer}/var"] for layer in layers},
        int(info["count"]),
    )
    return stats, info


def cached_real_statistics(
    extractor: FeatureExtractor,
    batches: Iterable,
    *,
    dataset_key: str,
    cache_dir: str | Path | None = None,
    refresh: bool = False,
    device: torch.device | str | None = None,
) -> FeatureStatistics:
    """Real statistics from the cache, or computed by :func:`compute_real_statistics` and stored.

    Args:
        extractor: the frozen extractor (its weights, layers and preprocessing enter the key).
        batches: iterable of real image batches; not touched on a cache hit.
        dataset_key: identity of the real data; change it when the data changes.
        cache_dir: cache folder (default :func:`default_cache_dir`).
        refresh: recompute and overwrite even if an entry exists.
        device: where to run the extractor on a miss.
    """
    key, description = statistics_key(dataset_key, extractor)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    stem = folder / key
    if not refresh and stem.with_suffix(".json").is_file():
        try:
            stats, info = load_statistics(stem)
            if info.get("format") == FORMAT_VERSION and info.get("dataset") == dataset_key:
                return stats
        except Exception as error:  # corrupt or foreign entry: recompute and overwrite it
            warnings.warn(
                f"ignoring unreadable GFMN statistics cache entry {str(stem)!r} ({error});"
                " recomputing.",
                stacklevel=2,
            )
    stats = compute_real_statistics(extractor, batches, device=device)
    save_statistics(stats, stem, description)
    return stats
