"""Batch transforms for :class:`~common.data.arrays.ArrayDataset` (``transform(x, generator)``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F


def resize(size: int) -> Callable[[Tensor, torch.Generator | None], Tensor]:
    """Bilinear resize of a normalised ``(B, C, H, W)`` batch to ``size x size``.

    The MCU tables upsample the 32-pixel colour digits to the resolutions where activation memory
    binds on a microcontroller (96-176 px), as the papers' ImageNet models run at 128-224 px.
    """

    def apply(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.shape[-1] == size and x.shape[-2] == size:
            return x
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)

    apply.size = size  # type: ignore[attr-defined]  (read by fingerprints and reports)
    return apply
