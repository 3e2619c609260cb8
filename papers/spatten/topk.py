"""SpAtten's top-k engine in software: quick-select finds the k-th largest score, then an
order-preserving compaction (the hardware's zero eliminator: a prefix sum gives every survivor
its new slot) keeps the survivors in their original order.

Average O(n) like the hardware's; the tests hold it equal to ``torch.topk`` as a set.
"""

from __future__ import annotations

import random

import torch
from torch import Tensor


def kth_largest(values: list[float], k: int, seed: int = 0) -> float:
    """The ``k``-th largest of ``values`` (1-based) by quick-select (random pivots, three-way
    partition so ties cannot loop)."""
    if not 1 <= k <= len(values):
        raise ValueError(f"k must be in 1..{len(values)}, got {k}")
    rng = random.Random(seed)
    items = list(values)
    while True:
        pivot = items[rng.randrange(len(items))]
        above = [v for v in items if v > pivot]
        if k <= len(above):
            items = above
            continue
        equal = sum(1 for v in items if v == pivot)
        if k <= len(above) + equal:
            return pivot
        k -= len(above) + equal
        items = [v for v in items if v < pivot]


def compact(keep: list[bool]) -> list[int]:
    """The indices where ``keep`` is true, in order, placed by an exclusive prefix sum (each
    survivor's slot is the number of survivors before it)."""
    slots = [0] * len(keep)
    total = 0
    for i, flag in enumerate(keep):
        slots[i] = total
        total += int(flag)
    out = [0] * total
    for i, flag in enumerate(keep):
        if flag:
            out[slots[i]] = i
    return out


def topk_keep_order(scores: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` largest of a 1-D ``scores``, in their original order. Ties at the
    threshold go to the earliest positions, so exactly ``k`` survive."""
    values = scores.tolist()
    if k >= len(values):
        return torch.arange(len(values), device=scores.device)
    threshold = kth_largest(values, k)
    above = sum(1 for v in values if v > threshold)
    ties = k - above
    keep = []
    for v in values:
        if v > threshold:
            keep.append(True)
        elif v == threshold and ties > 0:
            keep.append(True)
            ties -= 1
        else:
            keep.append(False)
    return torch.tensor(compact(keep), dtype=torch.long, device=scores.device)
