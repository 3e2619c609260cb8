"""One-dimensional k-means for weight sharing (Deep Compression, Section 3.1).

Deep Compression clusters the surviving weights of each layer into ``k`` shared values by
minimising the within-cluster sum of squares, ``sum_i sum_{w in c_i} |w - c_i|^2``, and compares
three initialisations (Section 3.2, Figure 4):

* **linear**: centroids evenly spaced between the smallest and largest weight. It keeps the few
  large weights, which matter most, and is the paper's choice;
* **density**: evenly spaced on the weights' cumulative distribution (quantiles), so centroids
  crowd around zero where most weights are;
* **random** (Forgy): ``k`` weights drawn at random.

In one dimension the assignment step is a binary search between sorted centroids (``O(n log k)``),
so layers with millions of weights cluster in seconds.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Init = Literal["linear", "density", "random"]


def init_centroids(
    values: Tensor, k: int, init: Init, *, generator: torch.Generator | None = None
) -> Tensor:
    """Initial centroids (sorted, float64) for 1-D ``values``."""
    v = values.detach().double().flatten()
    if init == "linear":
        return torch.linspace(float(v.min()), float(v.max()), k, dtype=torch.float64)
    if init == "density":
        # Evenly spaced on the CDF's y axis, excluding the extremes 0 and 1 themselves.
        qs = (torch.arange(k, dtype=torch.float64) + 0.5) / k
        return (
            torch.quantile(v, qs)
            if v.numel() <= 16_000_000
            else torch.sort(v).values[(qs * (v.numel() - 1)).long()]
        )
    if init == "random":
        idx = torch.randperm(v.numel(), generator=generator)[:k]
        return torch.sort(v[idx]).values
    raise ValueError(f"unknown init {init!r}; use linear, density or random")


def assign(values: Tensor, centroids: Tensor) -> Tensor:
    """Index of the nearest centroid for every value (``centroids`` sorted ascending)."""
    mids = (centroids[1:] + centroids[:-1]) / 2
    return torch.bucketize(values.double(), mids)


def kmeans_1d(
    values: Tensor,
    k: int,
    *,
    init: Init = "linear",
    max_iter: int = 100,
    tol: float = 1e-10,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Lloyd's algorithm on a 1-D tensor.

    Args:
        values: the weights to cluster (any shape; flattened).
        k: number of clusters (fewer distinct values than ``k`` gives duplicate centroids,
            which is harmless).
        init: ``linear``, ``density`` or ``random``.
        max_iter: iteration cap.
        tol: stop when no centroid moves more than this.
        seed: seed of the random initialisation.

    Returns:
        ``(centroids (k,) float32 sorted, assignment (n,) int64)``.
    """
    v = values.detach().double().flatten()
    if v.numel() == 0:
        return torch.zeros(k), torch.zeros(0, dtype=torch.long)
    k_eff = min(k, v.numel())
    g = torch.Generator().manual_seed(seed)
    c = init_centroids(v, k_eff, init, generator=g)
    for _ in range(max_iter):
        a = assign(v, c)
        sums = torch.zeros(k_eff, dtype=torch.float64).index_add_(0, a, v)
        counts = torch.bincount(a, minlength=k_eff).double()
        # An empty cluster keeps its centroid (it may catch weights again after others move).
        new = torch.where(counts > 0, sums / counts.clamp(min=1), c)
        new, _ = torch.sort(new)
        moved = float((new - c).abs().max())
        c = new
        if moved <= tol:
            break
    a = assign(v, c)
    if k_eff < k:  # pad so callers always get k centroids
        c = torch.cat([c, c[-1:].expand(k - k_eff)])
    return c.float(), a


def wcss(values: Tensor, centroids: Tensor, assignment: Tensor) -> float:
    """Within-cluster sum of squares, the objective k-means minimises."""
    return float(((values.double().flatten() - centroids.double()[assignment]) ** 2).sum())
