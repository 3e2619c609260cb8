"""The sparse voxel tensor: active sites (coordinates) and their features.

Coordinates follow MinkowskiEngine / TorchSparse: ``coords[i] = [batch, x, y, z]`` (int64) in
voxel units of the *input* (stride 1) grid. A tensor at tensor stride ``s`` (after strided
convolutions whose strides multiply to ``s``) keeps stride-1 units, so its coordinates are
multiples of ``s``; the voxel it stands for covers ``[x, x + s)`` on each axis of the input grid.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["SparseTensor"]


class SparseTensor:
    """Features on the active voxels of a batch of 3-D grids.

    Args:
        coords: ``(N, 4)`` int64 ``[batch, x, y, z]`` in stride-1 voxel units, unique rows.
        feats: ``(N, C)`` features, row ``i`` belongs to ``coords[i]``.
        stride: tensor stride; coordinates are multiples of it.
        batch_size: number of samples (batch indices are in ``[0, batch_size)``).
        spatial_shape: ``(X, Y, Z)`` of the stride-1 grid (coordinates are in ``[0, X)`` etc.).
        cache: shared by every tensor derived from the same input: kernel maps and output
            coordinates per stride, so that layers at the same stride build them once. A new
            empty dict when not given.
    """

    def __init__(
        self,
        coords: Tensor,
        feats: Tensor,
        *,
        stride: int = 1,
        batch_size: int,
        spatial_shape: tuple[int, int, int],
        cache: dict[Any, Any] | None = None,
    ) -> None:
        if coords.dim() != 2 or coords.shape[1] != 4:
            raise ValueError(f"coords must be (N, 4) [batch, x, y, z], got {tuple(coords.shape)}")
        if coords.dtype != torch.int64:
            raise ValueError(f"coords must be int64, got {coords.dtype}")
        if feats.dim() != 2 or feats.shape[0] != coords.shape[0]:
            raise ValueError(
                f"feats must be (N, C) with N = {coords.shape[0]} rows, got {tuple(feats.shape)}"
            )
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.coords = coords
        self.feats = feats
        self.stride = int(stride)
        self.batch_size = int(batch_size)
        self.spatial_shape = tuple(int(s) for s in spatial_shape)
        self.cache: dict[Any, Any] = {} if cache is None else cache

    def replace(self, feats: Tensor) -> SparseTensor:
        """The same sites, stride and cache with new ``(N, C')`` features (norms, activations,
        residual sums)."""
        return SparseTensor(
            self.coords,
            feats,
            stride=self.stride,
            batch_size=self.batch_size,
            spatial_shape=self.spatial_shape,
            cache=self.cache,
        )

    @property
    def num_sites(self) -> int:
        """Number of active voxels ``N``."""
        return self.coords.shape[0]

    @property
    def num_channels(self) -> int:
        """Feature channels ``C``."""
        return self.feats.shape[1]

    def __add__(self, other: SparseTensor) -> SparseTensor:
        """Residual sum of two tensors on the same sites (same coordinate tensor or equal rows)."""
        if not isinstance(other, SparseTensor):
            return NotImplemented
        if other.coords is not self.coords and not torch.equal(other.coords, self.coords):
            raise ValueError("can only add sparse tensors on the same sites in the same order")
        return self.replace(self.feats + other.feats)

    def __repr__(self) -> str:
        return (
            f"SparseTensor(sites={self.num_sites}, channels={self.num_channels}, "
            f"stride={self.stride}, batch_size={self.batch_size}, "
            f"spatial_shape={self.spatial_shape})"
        )
