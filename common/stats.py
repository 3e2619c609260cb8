"""Small statistics shared by the replicated experiments (seeds as replicates)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample standard deviation / sqrt(n)) of ``values``;
    the standard error is NaN for fewer than two values (it is not defined)."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_se: no values")
    mean = math.fsum(values) / n
    if n < 2:
        return mean, float("nan")
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)
