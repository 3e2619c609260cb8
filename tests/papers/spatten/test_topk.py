"""The software top-k engine equals torch.topk as a set and keeps the original order."""

from __future__ import annotations

import random

import pytest
import torch

from papers.spatten.topk import compact, kth_largest, topk_keep_order


@pytest.mark.parametrize("seed", range(20))
def test_topk_equals_torch_topk_as_a_set_in_original_order(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 60)
    scores = torch.tensor(
        [float(rng.randint(0, 9)) if seed % 2 else rng.random() for _ in range(n)]
    )
    k = rng.randint(1, n)
    got = topk_keep_order(scores, k)
    assert got.tolist() == sorted(got.tolist()) and len(got) == k
    want = torch.topk(scores, k).values
    assert sorted(scores[got].tolist()) == sorted(want.tolist())


def test_kth_largest_and_compaction() -> None:
    assert kth_largest([3.0, 1.0, 2.0, 5.0], 1) == 5.0
    assert kth_largest([3.0, 1.0, 2.0, 5.0], 3) == 2.0
    assert kth_largest([2.0, 2.0, 2.0], 2) == 2.0
    assert compact([False, True, True, False, True]) == [1, 2, 4]
    with pytest.raises(ValueError, match=r"k must be in 1\.\.2"):
        kth_largest([1.0, 2.0], 3)
