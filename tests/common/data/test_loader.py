from __future__ import annotations

import torch

from common.data import EpochBatchSampler, build_loader
from common.data.fixtures import tiny_array_dataset


def _flat(sampler: EpochBatchSampler) -> list[int]:
    return [i for batch in sampler for i in batch]


def test_epoch_order_depends_only_on_seed_and_epoch() -> None:
    a = EpochBatchSampler(50, 8, shuffle=True, seed=1)
    b = EpochBatchSampler(50, 8, shuffle=True, seed=1)
    a.set_epoch(3)
    b.set_epoch(0)
    b.set_epoch(3)
    assert _flat(a) == _flat(b)
    b.set_epoch(4)
    assert _flat(a) != _flat(b)
    assert sorted(_flat(a)) == list(range(50))
    assert len(a) == 7


def test_ranks_get_disjoint_shards() -> None:
    train = [EpochBatchSampler(10, 2, shuffle=True, seed=0, rank=r, world_size=3) for r in range(3)]
    idx = [_flat(s) for s in train]
    assert all(len(i) == 4 for i in idx)  # padded to 12 = 3 x 4
    assert set().union(*map(set, idx)) == set(range(10))
    evals = [
        EpochBatchSampler(10, 4, shuffle=False, rank=r, world_size=3, pad=False) for r in range(3)
    ]
    assert sorted(i for s in evals for i in _flat(s)) == list(range(10))


def test_batch_indexing_loader_yields_whole_batches() -> None:
    ds = tiny_array_dataset(70)
    loader = build_loader(ds, batch_size=32, shuffle=False)
    batches = list(loader)
    assert [b[0].shape[0] for b in batches] == [32, 32, 6]
    x0, y0 = ds[0]
    assert torch.equal(batches[0][0][0], x0) and int(batches[0][1][0]) == int(y0)
