"""Anycost GAN's channel rules, as data: the generator's channel table, the uniform-ratio rule with
its cap, and the flexible / sandwich sampling of sub-generators.

The reference code (``mit-han-lab/anycost-gan``, ``models/dynamic_channel.py``) gives every
resolution ``min(cap, int(base[res] * ratio * multiplier))`` channels, with StyleGAN2 config-F's
``base`` table (``BASE``), ``multiplier = 2`` and ``cap = 512``. So a uniform ratio only narrows
the layers whose scaled width falls below the cap: at 0.5 the 4-32 px layers of config-F keep 512.
A *configuration* is one width per convolution of the generator (the constant input and the first
4x4 convolution share the first entry's width, then two convolutions per resolution), the layout
of the reference repository's ``set_sub_channel_config``.
"""

from __future__ import annotations

import math
import random

# StyleGAN2 config-F's table before the multiplier (the reference's G_CHANNEL_CONFIG).
BASE = {4: 4096, 8: 2048, 16: 1024, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
RATIOS = (0.25, 0.5, 0.75, 1.0)


def resolutions(size: int) -> list[int]:
    """4, 8, ..., ``size``."""
    if size < 4 or size & (size - 1):
        raise ValueError(f"the resolution must be a power of two >= 4, got {size}")
    return [2**i for i in range(2, int(math.log2(size)) + 1)]


def full_channels(
    size: int, *, multiplier: float = 2.0, cap: int = 512, base: dict[int, int] | None = None
) -> dict[int, int]:
    """The full generator's channels per resolution."""
    table = base or BASE
    return {r: min(cap, int(table[r] * multiplier)) for r in resolutions(size)}


def n_convs(size: int) -> int:
    """The generator's 3x3 convolutions: one at 4 px, two at every higher resolution."""
    return 2 * len(resolutions(size)) - 1


def layer_resolutions(size: int) -> list[int]:
    """The resolution of each convolution, in order."""
    return [4] + [r for r in resolutions(size)[1:] for _ in range(2)]


def uniform(
    size: int, ratio: float, *, multiplier: float = 2.0, cap: int = 512,
    base: dict[int, int] | None = None,
) -> list[int]:  # fmt: skip
    """The widths of every convolution at a uniform ``ratio`` (the cap applies after scaling)."""
    table = base or BASE
    per_res = {r: min(cap, int(table[r] * ratio * multiplier)) for r in resolutions(size)}
    return [per_res[r] for r in layer_resolutions(size)]


def flexible(
    size: int, rng: random.Random, *, multiplier: float = 2.0, cap: int = 512,
    base: dict[int, int] | None = None, min_channel: int = 8, divided_by: int = 4,
) -> list[int]:  # fmt: skip
    """A random flexible configuration: per convolution a ratio of ``RATIOS``, never narrower than
    the uniform 0.25 width, rounded down to a multiple of ``divided_by``, at least
    ``min_channel``."""
    full = uniform(size, 1.0, multiplier=multiplier, cap=cap, base=base)
    floor = uniform(size, RATIOS[0], multiplier=multiplier, cap=cap, base=base)
    out = []
    for f, lo in zip(full, floor, strict=True):
        c = int(f * rng.choice(RATIOS)) // divided_by * divided_by
        out.append(max(c, lo, min_channel))
    return out


def sample(size: int, mode: str, rng: random.Random, **kw) -> list[int]:
    """A sub-generator configuration for one training step: ``uniform`` (a random ratio for
    every layer), ``flexible`` (a random ratio per layer) or ``sandwich`` (a quarter of the
    draws the full network, a quarter the smallest, half flexible)."""
    if mode == "uniform":
        return uniform(size, rng.choice(RATIOS), **{k: v for k, v in kw.items() if k in _U})
    if mode == "flexible":
        return flexible(size, rng, **kw)
    if mode == "sandwich":
        u = rng.random()
        if u < 0.25:
            return uniform(size, 1.0, **{k: v for k, v in kw.items() if k in _U})
        if u < 0.5:
            return uniform(size, RATIOS[0], **{k: v for k, v in kw.items() if k in _U})
        return flexible(size, rng, **kw)
    raise ValueError(f"mode must be uniform, flexible or sandwich, got {mode!r}")


_U = ("multiplier", "cap", "base")


def arch_one_hot(config: list[int], full: list[int]) -> list[float]:
    """The generator-conditioned discriminator's input: per convolution a one-hot over
    ``RATIOS`` of the ratio closest to ``width / full width``."""
    out: list[float] = []
    for c, f in zip(config, full, strict=True):
        nearest = min(range(len(RATIOS)), key=lambda i: abs(RATIOS[i] - c / f))
        out += [1.0 if i == nearest else 0.0 for i in range(len(RATIOS))]
    return out
