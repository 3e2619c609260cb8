"""SpAtten's layer schedules: how much of the tokens and heads each layer keeps.

No token pruning in the first max(3, 15%) layers, no head pruning in the first 30%, then the
kept fraction falls linearly to its final value at the last layer (the schedule SpAtten's paper
describes, as re-implemented by LTP: "the first 3 or 15% of layers, whichever is greater").
"""

from __future__ import annotations

import math


def linear_schedule(layers: int, final_keep: float, protect: int) -> tuple[float, ...]:
    """1.0 for the first ``protect`` layers, then linearly down to ``final_keep`` at the last."""
    if protect >= layers:
        return (1.0,) * layers
    rest = layers - protect
    return tuple(
        1.0 if i < protect else 1.0 - (1.0 - final_keep) * (i - protect + 1) / rest
        for i in range(layers)
    )


def token_schedule(layers: int, final_keep: float, protect: int | None = None) -> tuple[float, ...]:
    """Token keep fractions per layer (``protect`` default: max(3, ceil(15% of the layers)))."""
    protect = max(3, math.ceil(0.15 * layers)) if protect is None else protect
    return linear_schedule(layers, final_keep, protect)


def head_schedule(layers: int, final_keep: float, protect_share: float = 0.3) -> tuple[float, ...]:
    """Head keep fractions per layer, none pruned in the first ``protect_share`` of the layers."""
    return linear_schedule(layers, final_keep, math.ceil(protect_share * layers - 1e-9))


def mean_keep(schedule: tuple[float, ...]) -> float:
    return sum(schedule) / len(schedule)
