"""Built-in data: 2D mixtures, digits, image folders, user tensors and paired data (all offline)."""

from .batches import BatchSource
from .datasets import (
    GenerativeDataset,
    as_generative_dataset,
    digits_dataset,
    grid_dataset,
    image_folder_dataset,
    mixture_dataset,
    ring_dataset,
    tensor_dataset,
)
from .paired import PairedDataset, PairedTensorDataset, is_paired
from .toy import GaussianMixture2D, grid, ring

__all__ = [
    "BatchSource",
    "GaussianMixture2D",
    "GenerativeDataset",
    "PairedDataset",
    "PairedTensorDataset",
    "as_generative_dataset",
    "digits_dataset",
    "grid",
    "grid_dataset",
    "image_folder_dataset",
    "is_paired",
    "mixture_dataset",
    "ring",
    "ring_dataset",
    "tensor_dataset",
]
