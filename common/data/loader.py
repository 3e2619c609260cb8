"""Batching that is reproducible per epoch, shards across processes, and is fast in memory.

:class:`EpochBatchSampler` yields lists of indices. The permutation of epoch ``e`` depends only on
``(seed, e)``, so a run resumed at epoch ``e`` sees exactly the batches an uninterrupted run would.
Under DDP every rank takes a disjoint shard of the same permutation.

:func:`build_loader` feeds whole index batches to datasets that support batch indexing (see
:class:`~common.data.arrays.ArrayDataset`) and falls back to per-sample collation otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from common.seed import derive_seed


class EpochBatchSampler(Sampler[list[int]]):
    """Index batches for one process.

    Args:
        n: dataset length.
        batch_size: samples per batch *for this process*.
        shuffle: permute each epoch (training) or keep order (evaluation).
        seed: run seed; the permutation of epoch ``e`` is seeded by ``(seed, e)``.
        drop_last: drop a final incomplete batch.
        rank: this process's rank.
        world_size: number of processes.
        pad: when sharding, repeat indices so every rank gets the same number (training); without
            padding, ranks get ``indices[rank::world_size]`` exactly once (evaluation).
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        pad: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.drop_last, self.rank, self.world_size, self.pad = drop_last, rank, world_size, pad
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch``'s batches from batch ``start`` on (a resume inside an epoch
        skips the batches already trained on without loading them)."""
        self.epoch = epoch
        self.start = start

    def _indices(self) -> torch.Tensor:
        if self.shuffle:
            g = torch.Generator().manual_seed(derive_seed(self.seed, "epoch", self.epoch))
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        if self.world_size > 1:
            if self.pad:
                total = math.ceil(self.n / self.world_size) * self.world_size
                if total > self.n:
                    order = torch.cat([order, order[: total - self.n]])
            order = order[self.rank :: self.world_size]
        return order

    def __iter__(self) -> Iterator[list[int]]:
        order = self._indices()
        for start in range(self.start * self.batch_size, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            if self.drop_last and len(batch) < self.batch_size:
                return
            yield batch.tolist()

    def __len__(self) -> int:
        n = len(self._indices()) if self.world_size > 1 else self.n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


def build_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader over :class:`EpochBatchSampler`; call ``loader.batch_sampler_.set_epoch(e)``.

    ``batch_size`` is per process. Training loaders pad shards to equal length; evaluation
    loaders (``shuffle=False``) visit every sample exactly once across ranks.
    """
    sampler = EpochBatchSampler(
        len(dataset),  # type: ignore[arg-type]
        batch_size,
        shuffle=shuffle,
        seed=seed,
        drop_last=drop_last,
        rank=rank,
        world_size=world_size,
        pad=shuffle,
    )
    common = {
        "num_workers": num_workers,
        "pin_memory": pin_memory,
        "persistent_workers": num_workers > 0,
    }
    if getattr(dataset, "supports_batch_indexing", False):
        # The sampler's index list goes straight to dataset[indices] -> one vectorised batch.
        loader = DataLoader(dataset, sampler=sampler, batch_size=None, **common)
    else:
        loader = DataLoader(dataset, batch_sampler=sampler, **common)
    loader.batch_sampler_ = sampler  # type: ignore[attr-defined]
    return loader
