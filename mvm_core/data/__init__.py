"""Built-in data: 2D mixtures, digits, MNIST and Stacked MNIST, image folders, user tensors and paired data (all offline)."""

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
from .mnist import mnist_dataset, mnist_split, stacked_mnist_dataset
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
    "mnist_dataset",
    "mnist_split",
    "ring",
    "ring_dataset",
    "stacked_mnist_dataset",
    "tensor_dataset",
]
