"""Where a run's samples come from, and what kind of samples they are.

A data spec is one of: ``digits``, ``mnist``, ``stacked-mnist``, ``ring``, ``grid``, ``folder:PATH`` (a folder of images), a
``.npy`` / ``.pt`` file holding a tensor of samples, a dataset registry name (``mvm:ring``,
``sr:skimage``: built-ins and plugins' datasets), or an in-memory tensor / array.

The *kind* of the samples chooses a preset's recipe: ``"points"`` for vectors (one sample of shape
``(D,)``, e.g. an ``(N, 2)`` array of 2D points) and ``"images"`` for ``(C, H, W)`` samples. It is
read from the samples' shape, never from the spec's name, so a user's own ``(N, 2)`` array gets
the same recipe as the built-in ring.
"""

from __future__ import annotations

import difflib
import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .datasets import digits_dataset, image_folder_dataset, mixture_dataset, tensor_dataset
from .toy import MIXTURES

KINDS = ("points", "images")
BUILTIN_NAMES = ("digits", "mnist", "stacked-mnist", *MIXTURES)


def kind_of_shape(shape: tuple[int, ...]) -> str:
    """``"points"`` for samples of shape ``(D,)``, ``"images"`` for ``(C, H, W)``."""
    if len(shape) == 1:
        return "points"
    if len(shape) == 3:
        return "images"
    raise ValueError(f"samples must have shape (D,) (points) or (C, H, W) (images); got {tuple(shape)}.")


def kind_of(dataset: Any) -> str:
    """The kind of a dataset's samples (its ``sample_shape``, the shape of one generated sample)."""
    return kind_of_shape(tuple(dataset.sample_shape))


def _load_pt(path: Path):
    return torch.load(path, weights_only=True, map_location="cpu")


def data_kind(spec: Any, data_kwargs: dict[str, Any] | None = None, *, image_size: int = 8,
              channels: int = 3) -> str:
    """The kind of the samples ``spec`` names, reading as little as possible.

    Built-in names and folders are known without loading; a ``.npy`` file is read through its
    header (memory-mapped); a ``.pt`` file and a registry dataset are loaded to see their shape.
    """
    if isinstance(spec, (torch.Tensor, np.ndarray)):
        return kind_of_shape(tuple(spec.shape[1:]))
    if not isinstance(spec, str):  # a dataset object
        return kind_of(spec)
    if spec in MIXTURES:
        return "points"
    if spec in ("digits", "mnist", "stacked-mnist") or spec.startswith("folder:"):
        return "images"
    path = Path(spec)
    if path.suffix == ".npy" and path.exists():
        return kind_of_shape(np.load(path, mmap_mode="r", allow_pickle=False).shape[1:])
    if path.suffix == ".pt" and path.exists():
        return kind_of_shape(tuple(torch.as_tensor(_load_pt(path)).shape[1:]))
    return kind_of(load_data(spec, data_kwargs, image_size=image_size, channels=channels))


def unknown_data(spec: str) -> ValueError:
    """The error for a data spec that names nothing, with the nearest name when there is one."""
    from ..registry import list_datasets

    names = [*BUILTIN_NAMES, *list_datasets()]
    near = difflib.get_close_matches(spec, names, n=1, cutoff=0.6)
    hint = f" Did you mean {near[0]!r}?" if near else ""
    path_hint = " (no such file)" if spec.endswith((".npy", ".pt")) else ""
    return ValueError(
        f"unknown data {spec!r}{path_hint}.{hint} Use digits, mnist, stacked-mnist, ring, grid, folder:PATH (a folder of"
        " images), a .npy / .pt file holding a tensor of samples, or a dataset name"
        " (`mvm list datasets`)."
    )


def load_data(spec: str, data_kwargs: dict[str, Any] | None = None, *, image_size: int = 8,
              channels: int = 3, seed: int = 0):
    """The dataset ``spec`` names (see the module docstring); ``data_kwargs`` go to ring, grid and
    registry datasets, ``image_size`` / ``channels`` to image folders (digits take the size)."""
    data_kwargs = dict(data_kwargs or {})
    if data_kwargs and (":" not in spec or spec.startswith("folder:")) and spec not in MIXTURES \
            and spec != "stacked-mnist":
        raise ValueError(
            f"data_kwargs {data_kwargs} apply to ring, grid, stacked-mnist and datasets named in the registry"
            f" (like 'sr:skimage'); the built-in data {spec!r} takes none. Remove --data-kwargs."
        )
    if spec == "digits":
        return digits_dataset(image_size, labels=True)
    if spec == "mnist":
        from .mnist import mnist_dataset

        return mnist_dataset(image_size)
    if spec == "stacked-mnist":  # data_kwargs: n (number of triples), seed of the triples
        from .mnist import stacked_mnist_dataset

        try:
            return stacked_mnist_dataset(image_size, **data_kwargs)
        except TypeError:
            raise ValueError(f"--data-kwargs for stacked-mnist take n and seed; got {data_kwargs}.") from None
    if spec in MIXTURES:  # kwargs of mvm_core.data.toy.ring / grid: modes, spacing, std, weights
        try:
            return mixture_dataset(MIXTURES[spec](**data_kwargs), seed=seed)
        except TypeError as error:
            params = ", ".join(inspect.signature(MIXTURES[spec]).parameters)
            raise ValueError(f"--data-kwargs for {spec} take {params}; got {data_kwargs} ({error}).") from None
    if spec.startswith("folder:"):
        return image_folder_dataset(spec[len("folder:"):], image_size, channels)
    path = Path(spec)
    if path.suffix == ".npy" and path.exists():
        return tensor_dataset(np.load(path, allow_pickle=False), name=path.name)
    if path.suffix == ".pt" and path.exists():
        return tensor_dataset(_load_pt(path), name=path.name)
    if ":" in spec:  # a registered dataset (built-in mvm: names or a plugin's)
        from ..registry import get_registry, resolve

        registry = get_registry("datasets")
        if spec not in registry:
            raise unknown_data(spec)
        return resolve("datasets", spec, **data_kwargs)
    raise unknown_data(spec)


__all__ = ["BUILTIN_NAMES", "KINDS", "data_kind", "kind_of", "kind_of_shape", "load_data", "unknown_data"]
