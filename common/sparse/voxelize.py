"""Point clouds to sparse voxels, and sparse tensors to dense grids and bird's-eye views.

:func:`voxelize` keeps the points inside ``bounds`` (half-open: ``xmin <= x < xmax``), assigns
each to the voxel ``floor((p - min) / voxel_size)`` of a grid of
``ceil((max - min) / voxel_size)`` voxels per axis, and gives each occupied voxel of each sample
``VOXEL_FEATURES = 5`` channels:

====  ===========================================================================================
0-2   mean offset of its points from the voxel centre, in voxel units, per axis (in [-0.5, 0.5))
3     mean height of its points, ``(z - zmin) / (zmax - zmin)`` (absolute height, in [0, 1))
4     ``log(1 + number of points)`` (point density; log so that near, dense voxels do not dominate)
====  ===========================================================================================

Columns of the points past x, y, z (e.g. LiDAR intensity) are averaged per voxel and appended as
channels ``5, 6, ...``.

:func:`to_dense` scatters a sparse tensor into ``(B, C, X / s, Y / s, Z / s)`` (``s`` the tensor
stride, sizes rounded up); :func:`to_bev` stacks its z-slices as channels, ``(B, C * Z / s, X / s,
Y / s)`` with channel ``c * (Z / s) + z``, the hand-over from a sparse 3-D encoder to a 2-D
bird's-eye-view network. :func:`dense_voxels` is the same features on the dense grid directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from common.sparse.kmap import pack, unpack
from common.sparse.tensor import SparseTensor

__all__ = [
    "VOXEL_FEATURES",
    "dense_to_bev",
    "dense_voxels",
    "grid_shape",
    "to_bev",
    "to_dense",
    "voxelize",
]

VOXEL_FEATURES = 5

Bounds = tuple[float, float, float, float, float, float]


def grid_shape(voxel_size: float, bounds: Bounds) -> tuple[int, int, int]:
    """``(X, Y, Z)`` voxels of the grid covering ``bounds`` = (xmin, xmax, ymin, ymax, zmin, zmax)."""
    if voxel_size <= 0:
        raise ValueError(f"voxel_size must be > 0, got {voxel_size}")
    if len(bounds) != 6:
        raise ValueError(f"bounds must be (xmin, xmax, ymin, ymax, zmin, zmax), got {bounds}")
    shape = []
    for axis, (lo, hi) in enumerate(zip(bounds[0::2], bounds[1::2], strict=True)):
        if not hi > lo:
            raise ValueError(f"bounds of axis {'xyz'[axis]} must have max > min, got {lo}, {hi}")
        # The small tolerance keeps an extent that is a multiple of voxel_size from gaining a
        # voxel through float rounding (e.g. 0.3 / 0.1 = 2.9999999999999996).
        shape.append(max(1, math.ceil((hi - lo) / voxel_size - 1e-6)))
    return shape[0], shape[1], shape[2]


def voxelize(
    points: Sequence[Tensor | np.ndarray],
    *,
    voxel_size: float,
    bounds: Bounds,
    dtype: torch.dtype = torch.float32,
) -> SparseTensor:
    """One sparse tensor for a batch of point clouds (see the module doc for the features).

    Args:
        points: one ``(N_i, 3 + E)`` array per sample (x, y, z in metres, then ``E`` extra
            columns).
        voxel_size: voxel edge in metres.
        bounds: ``(xmin, xmax, ymin, ymax, zmin, zmax)`` in metres; points outside are dropped.
        dtype: feature dtype.

    Returns:
        Tensor stride 1, sites sorted by ``(batch, x, y, z)``, ``5 + E`` channels.
    """
    shape = grid_shape(voxel_size, bounds)
    lo = torch.tensor(bounds[0::2], dtype=torch.float64)
    hi = torch.tensor(bounds[1::2], dtype=torch.float64)
    clouds = [torch.as_tensor(p).to(torch.float64) for p in points]
    extra = {c.shape[1] - 3 for c in clouds if c.dim() == 2}
    if any(c.dim() != 2 or c.shape[1] < 3 for c in clouds) or len(extra) > 1:
        raise ValueError("points must be (N_i, 3 + E) arrays with the same E for every sample")
    n_extra = extra.pop() if extra else 0
    cloud = torch.cat(clouds) if clouds else torch.zeros(0, 3 + n_extra, dtype=torch.float64)
    batch = torch.repeat_interleave(
        torch.arange(len(clouds)), torch.tensor([c.shape[0] for c in clouds], dtype=torch.int64)
    )
    xyz = cloud[:, :3]
    cell = torch.floor((xyz - lo) / voxel_size).long()  # (P, 3)
    keep = ((xyz >= lo) & (xyz < hi) & (cell < torch.tensor(shape))).all(dim=1)
    cloud, xyz, cell, batch = cloud[keep], xyz[keep], cell[keep], batch[keep]

    keys, inverse = torch.unique(
        pack(torch.cat([batch[:, None], cell], dim=1)), return_inverse=True
    )  # sorted keys: sites in (batch, x, y, z) order
    count = torch.bincount(inverse, minlength=keys.numel()).to(torch.float64)  # (V,)
    centre = lo + (cell.to(torch.float64) + 0.5) * voxel_size
    per_point = torch.cat(
        [
            (xyz - centre) / voxel_size,  # offset from the voxel centre, voxel units
            ((xyz[:, 2:] - bounds[4]) / (bounds[5] - bounds[4])),  # height in [0, 1)
            cloud[:, 3:],  # extra columns
        ],
        dim=1,
    )
    sums = per_point.new_zeros(keys.numel(), per_point.shape[1]).index_add_(0, inverse, per_point)
    means = sums / count.clamp(min=1)[:, None]
    feats = torch.cat([means[:, :4], torch.log1p(count)[:, None], means[:, 4:]], dim=1)
    return SparseTensor(
        unpack(keys),
        feats.to(dtype),
        batch_size=len(clouds),
        spatial_shape=shape,
    )


def _strided_shape(x: SparseTensor) -> tuple[int, int, int]:
    s = x.stride
    return tuple(-(-n // s) for n in x.spatial_shape)  # type: ignore[return-value]


def _scatter(x: SparseTensor, bev: bool) -> Tensor:
    """The features of ``x`` written into a grid whose memory is site-major (the features of one
    site side by side, as they come), returned as a channels-first *view* with channels-last
    strides: no transposed copy of the whole grid (at fine voxels the grid is mostly empty, and
    that copy dominated), and convolutions take channels-last input as it is. Differentiable
    with respect to ``x.feats``."""
    sx, sy, sz = _strided_shape(x)
    cell = torch.div(x.coords[:, 1:], x.stride, rounding_mode="floor")
    b, c = x.coords[:, 0], x.num_channels
    if bev:  # memory (B, X', Y', C, Z') = (B, X', Y', C * Z'), channel c * Z' + z
        grid = x.feats.new_zeros(x.batch_size, sx, sy, c, sz)
        grid[b, cell[:, 0], cell[:, 1], :, cell[:, 2]] = x.feats
        return grid.view(x.batch_size, sx, sy, c * sz).permute(0, 3, 1, 2)
    grid = x.feats.new_zeros(x.batch_size, sx, sy, sz, c)  # memory (B, X', Y', Z', C)
    grid[b, cell[:, 0], cell[:, 1], cell[:, 2]] = x.feats
    return grid.permute(0, 4, 1, 2, 3)


def to_dense(x: SparseTensor) -> Tensor:
    """``(B, C, X', Y', Z')`` grid with the features at the active sites and zeros elsewhere,
    ``X' = ceil(X / stride)`` etc. (channels-last strides; ``.contiguous()`` gives the
    channels-first layout). Differentiable with respect to ``x.feats``."""
    return _scatter(x, bev=False)


def to_bev(x: SparseTensor) -> Tensor:
    """Bird's-eye view ``(B, C * Z', X', Y')``: the z-slices of :func:`to_dense` stacked as
    channels, channel ``c * Z' + z`` (channels-last strides, as :func:`to_dense`)."""
    return _scatter(x, bev=True)


def dense_to_bev(dense: Tensor) -> Tensor:
    """:func:`to_bev`'s layout for a dense ``(B, C, X, Y, Z)`` grid: ``(B, C * Z, X, Y)``."""
    b, c, sx, sy, sz = dense.shape
    return dense.permute(0, 1, 4, 2, 3).reshape(b, c * sz, sx, sy)


def dense_voxels(
    points: Sequence[Tensor | np.ndarray],
    *,
    voxel_size: float,
    bounds: Bounds,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """The features of :func:`voxelize` on the dense grid, ``(B, C, X, Y, Z)`` (zeros in empty
    voxels): the input of a dense 3-D convolution baseline."""
    return to_dense(voxelize(points, voxel_size=voxel_size, bounds=bounds, dtype=dtype))
