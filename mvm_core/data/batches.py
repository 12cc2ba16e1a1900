"""Endless, reproducible, resumable mini-batches from any dataset.

Epochs are random permutations drawn from the source's own generator, so the batch sequence
depends only on the seed, and the state (generator, permutation, position) is saved in
checkpoints: resuming continues with exactly the batches an uninterrupted run would have seen.
In-memory datasets are indexed directly on the training device (no DataLoader overhead, which
dominates small 2D models); other datasets are read item by item and collated.

Under DDP (``world_size > 1``) ``batch_size`` is the global batch: every rank walks the same
seeded order and yields its contiguous slice of each global batch (rank r: rows ``[r n, (r+1) n)``),
so each sample is read by one rank only, like ``DistributedSampler``, and the data order is the
same for any number of processes (a checkpoint resumes under any world size).
"""

from __future__ import annotations

import torch
from torch.utils.data import default_collate

from .datasets import GenerativeDataset
from .paired import PairedTensorDataset, is_paired


class BatchSource:
    """Yields ``(x, y)`` batches of ``batch_size`` forever (``y`` is None for unlabelled data;
    for a paired dataset ``x`` holds the inputs and ``y`` the targets)."""

    def __init__(self, dataset: torch.utils.data.Dataset, batch_size: int, seed: int = 0,
                 device: torch.device | str = "cpu", rank: int = 0, world_size: int = 1):
        n = len(dataset)
        if world_size > 1 and (batch_size % world_size or not 0 <= rank < world_size):
            raise ValueError(
                f"batch_size={batch_size} is the global batch and must be a multiple of the number of"
                f" processes ({world_size}), with 0 <= rank < {world_size} (got rank {rank}); use"
                f" batch_size={world_size * max(2, round(batch_size / world_size))}."
            )
        self.rank, self.world_size = rank, world_size
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (sets of embeddings are matched); got {batch_size}.")
        if n < batch_size:
            raise ValueError(
                f"the dataset has {n} samples, fewer than batch_size={batch_size}; lower the batch size."
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        self.paired = is_paired(dataset)  # (input, target) items: the second is never a label
        self.in_memory = isinstance(dataset, (GenerativeDataset, PairedTensorDataset))
        if isinstance(dataset, PairedTensorDataset):
            self._data, self._labels = dataset.inputs.to(self.device), dataset.targets.to(self.device)
        elif self.in_memory:
            self._data = dataset.data.to(self.device)
            self._labels = None if dataset.labels is None else dataset.labels.to(self.device)
        self.epoch = 0
        self._perm = torch.randperm(n, generator=self.generator)
        self._pos = 0

    def __iter__(self):
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self._pos + self.batch_size > len(self._perm):  # drop the last partial batch
            self._perm = torch.randperm(len(self._perm), generator=self.generator)
            self._pos = 0
            self.epoch += 1
        index = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        if self.world_size > 1:  # the same global batch on every rank; this rank reads its slice
            per = self.batch_size // self.world_size
            index = index[self.rank * per : (self.rank + 1) * per]
        if self.in_memory:
            idx = index.to(self.device)
            return self._data[idx], None if self._labels is None else self._labels[idx]
        items = default_collate([self.dataset[int(i)] for i in index])
        x, y = (items[0], items[1]) if isinstance(items, (list, tuple)) else (items, None)
        if y is not None and not self.paired and (y < 0).all():
            y = None
        return x.to(self.device), None if y is None else y.to(self.device)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            "generator": self.generator.get_state(),
            "perm": self._perm.clone(),
            "pos": torch.tensor(self._pos),
            "epoch": torch.tensor(self.epoch),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if len(state["perm"]) != len(self._perm):
            raise ValueError(
                f"checkpoint was made with a dataset of {len(state['perm'])} samples; this one has"
                f" {len(self._perm)}. Resume with the same data."
            )
        self.generator.set_state(state["generator"].cpu())  # a CPU generator's state
        self._perm = state["perm"].cpu().clone()
        self._pos = int(state["pos"])
        self.epoch = int(state["epoch"])
