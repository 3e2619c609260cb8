"""Token sequences for the shared training loop: padded batches with masks, batched by token count.

* :class:`TokenSequences` holds examples as token-id tensors (targets, and sources for
  sequence-to-sequence tasks), stored without BOS/EOS. A batch feeds the decoder ``[BOS] + y``
  and asks it for ``y + [EOS]`` (teacher forcing); sources get an EOS.
* :class:`TokenBatchSampler` groups examples of similar length so that a batch holds at most
  ``max_tokens`` tokens *with* padding (the longest sequence times the batch's size), the way
  fairseq batches translation data. The batches are fixed once (sorted by length); each epoch
  visits them in an order that depends only on ``(seed, epoch)``, so an epoch has the same number
  of steps every time and a resumed run sees exactly the batches an uninterrupted one would.
  Under DDP each rank takes every ``world_size``-th batch (training repeats a few batches so
  that every rank takes as many steps; evaluation visits each batch once).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from common.seed import derive_seed


@dataclass
class TokenBatch:
    """A padded batch. ``inputs``/``targets`` are the decoder's (``[B, T]``), ``source`` the
    encoder's (``[B, S]``, ``None`` for language modelling); padding is ``pad_id``."""

    inputs: Tensor
    targets: Tensor
    pad_id: int
    source: Tensor | None = None

    @property
    def target_padding_mask(self) -> Tensor:
        """``True`` where ``targets`` is padding."""
        return self.targets.eq(self.pad_id)

    @property
    def source_padding_mask(self) -> Tensor | None:
        return None if self.source is None else self.source.eq(self.pad_id)

    @property
    def ntokens(self) -> int:
        """Target tokens that count (not padding)."""
        return int(self.targets.ne(self.pad_id).sum())

    def __len__(self) -> int:
        return self.targets.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> TokenBatch:
        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device, non_blocking=non_blocking)

        return TokenBatch(move(self.inputs), move(self.targets), self.pad_id, move(self.source))


def pad_stack(seqs: Sequence[Tensor], pad_id: int) -> Tensor:
    """``[len(seqs), max length]`` with ``pad_id`` after each sequence."""
    out = torch.full((len(seqs), max(len(s) for s in seqs)), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


class TokenSequences(Dataset):
    """Examples as token ids: ``targets[i]`` (and ``sources[i]`` for sequence-to-sequence)."""

    def __init__(
        self,
        targets: Sequence[Tensor],
        sources: Sequence[Tensor] | None = None,
        *,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
    ) -> None:
        if sources is not None and len(sources) != len(targets):
            raise ValueError(f"{len(sources)} sources for {len(targets)} targets")
        self.targets = [torch.as_tensor(t, dtype=torch.long) for t in targets]
        self.sources = (
            None if sources is None else [torch.as_tensor(s, dtype=torch.long) for s in sources]
        )
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[Tensor | None, Tensor]:
        return (None if self.sources is None else self.sources[i]), self.targets[i]

    def lengths(self) -> list[int]:
        """Tokens per example as batched (the longer side, with its BOS/EOS)."""
        src = self.sources or [torch.empty(0)] * len(self.targets)
        return [max(len(t), len(s)) + 1 for s, t in zip(src, self.targets, strict=True)]

    def collate(self, items: list[tuple[Tensor | None, Tensor]]) -> TokenBatch:
        bos = torch.tensor([self.bos_id])
        eos = torch.tensor([self.eos_id])
        inputs = pad_stack([torch.cat([bos, t]) for _, t in items], self.pad_id)
        targets = pad_stack([torch.cat([t, eos]) for _, t in items], self.pad_id)
        source = None
        if items and items[0][0] is not None:
            source = pad_stack([torch.cat([s, eos]) for s, _ in items], self.pad_id)
        return TokenBatch(inputs, targets, self.pad_id, source)


class TokenBatchSampler(Sampler[list[int]]):
    """Index batches of at most ``max_tokens`` padded tokens (see the module docstring)."""

    def __init__(
        self,
        lengths: Sequence[int],
        max_tokens: int,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        too_long = [i for i, n in enumerate(lengths) if n > max_tokens]
        if too_long:
            raise ValueError(
                f"example {too_long[0]} has {lengths[too_long[0]]} tokens, more than "
                f"max_tokens={max_tokens}: raise max_tokens or drop long examples"
            )
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for i in order:
            n = max(longest, lengths[i])
            if current and n * (len(current) + 1) > max_tokens:
                batches.append(current)
                current, n = [], lengths[i]
            current.append(i)
            longest = n
        if current:
            batches.append(current)
        if world_size > 1 and shuffle:  # training: every rank takes the same number of steps
            total = math.ceil(len(batches) / world_size) * world_size
            batches += batches[: total - len(batches)]
        self.batches = batches
        self.shuffle, self.seed, self.rank, self.world_size = shuffle, seed, rank, world_size
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _order(self) -> list[list[int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(derive_seed(self.seed, "epoch", self.epoch))
            perm = torch.randperm(len(self.batches), generator=g).tolist()
            ordered = [self.batches[i] for i in perm]
        else:
            ordered = list(self.batches)
        return ordered[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._order()[self.start :]

    def __len__(self) -> int:
        return len(self.batches[self.rank :: self.world_size])


def build_token_loader(
    dataset: TokenSequences,
    *,
    max_tokens: int,
    shuffle: bool,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
) -> DataLoader:
    """A DataLoader of :class:`TokenBatch` (call ``loader.batch_sampler_.set_epoch(e)``)."""
    sampler = TokenBatchSampler(
        dataset.lengths(),
        max_tokens,
        shuffle=shuffle,
        seed=seed,
        rank=rank,
        world_size=world_size,
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=dataset.collate,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
    loader.batch_sampler_ = sampler  # type: ignore[attr-defined]
    return loader
