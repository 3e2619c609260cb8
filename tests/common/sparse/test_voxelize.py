"""Voxelisation of known points, bounds, dense grids and bird's-eye views."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from common.sparse import (
    VOXEL_FEATURES,
    SparseTensor,
    dense_to_bev,
    dense_voxels,
    downsample_coords,
    grid_shape,
    to_bev,
    to_dense,
    voxelize,
)

BOUNDS = (0.0, 2.0, 0.0, 2.0, 0.0, 1.0)  # grid (4, 4, 2) at 0.5 m


def known_points() -> list:
    sample0 = torch.tensor(
        [
            [0.1, 0.1, 0.1],  # voxel (0, 0, 0), centre (0.25, 0.25, 0.25)
            [0.3, 0.2, 0.4],  # voxel (0, 0, 0)
            [1.9, 0.6, 0.9],  # voxel (3, 1, 1), centre (1.75, 0.75, 0.75)
            [2.0, 0.5, 0.5],  # x == xmax: dropped (bounds are half-open)
            [-0.1, 0.5, 0.5],  # dropped
            [0.5, 0.5, 1.5],  # z above zmax: dropped
        ]
    )
    sample1 = np.array([[1.0, 1.0, 0.0]])  # voxel (2, 2, 0), centre (1.25, 1.25, 0.25); numpy
    return [sample0, sample1]


def test_known_points_land_in_known_voxels_with_known_features() -> None:
    x = voxelize(known_points(), voxel_size=0.5, bounds=BOUNDS)
    assert x.spatial_shape == (4, 4, 2) and x.batch_size == 2 and x.stride == 1
    assert x.coords.tolist() == [[0, 0, 0, 0], [0, 3, 1, 1], [1, 2, 2, 0]]
    assert VOXEL_FEATURES == 5 and x.feats.shape == (3, VOXEL_FEATURES)
    assert x.feats.dtype == torch.float32
    expected = torch.tensor(
        [
            # mean offset / voxel size; mean height / 1 m; log(1 + count)
            [(-0.3 + 0.1) / 2, (-0.3 - 0.1) / 2, (-0.3 + 0.3) / 2, 0.25, math.log(3)],
            [0.3, -0.3, 0.3, 0.9, math.log(2)],
            [-0.5, -0.5, -0.5, 0.0, math.log(2)],
        ]
    )
    torch.testing.assert_close(x.feats, expected, atol=1e-6, rtol=0)


def test_extra_columns_are_averaged_and_appended() -> None:
    pts = [torch.tensor([[0.1, 0.1, 0.1, 10.0], [0.2, 0.2, 0.2, 20.0], [1.1, 1.1, 0.6, 5.0]])]
    x = voxelize(pts, voxel_size=0.5, bounds=BOUNDS)
    assert x.feats.shape == (2, VOXEL_FEATURES + 1)
    assert x.feats[:, 5].tolist() == [15.0, 5.0]


def test_empty_sample_and_validation() -> None:
    x = voxelize(
        [torch.zeros(0, 3), torch.tensor([[0.1, 0.1, 0.1]])], voxel_size=0.5, bounds=BOUNDS
    )
    assert x.batch_size == 2 and x.coords.tolist() == [[1, 0, 0, 0]]
    with pytest.raises(ValueError, match="voxel_size"):
        voxelize([torch.zeros(1, 3)], voxel_size=0.0, bounds=BOUNDS)
    with pytest.raises(ValueError, match="max > min"):
        voxelize([torch.zeros(1, 3)], voxel_size=0.5, bounds=(0, 1, 0, 1, 1, 0))
    with pytest.raises(ValueError, match="3 \\+ E"):
        voxelize([torch.zeros(4, 2)], voxel_size=0.5, bounds=BOUNDS)


def test_grid_shape_rounding() -> None:
    assert grid_shape(0.1, (0, 0.3, 0, 1, -0.2, 0.1)) == (3, 10, 3)  # 0.3 / 0.1 < 3 in floats
    assert grid_shape(0.4, (0, 1, 0, 1, 0, 1)) == (3, 3, 3)  # partial voxels count


def test_large_random_cloud_is_sorted_unique_and_counts_every_point() -> None:
    gen = torch.Generator().manual_seed(0)
    clouds = [torch.rand(5000, 3, generator=gen) * 4 - 0.5 for _ in range(3)]
    x = voxelize(clouds, voxel_size=0.25, bounds=(0, 3, 0, 3, 0, 3))
    keys = [tuple(c) for c in x.coords.tolist()]
    assert keys == sorted(set(keys))
    inside = sum(int(((c >= 0) & (c < 3)).all(1).sum()) for c in clouds)
    assert round(float(torch.expm1(x.feats[:, 4].double()).sum())) == inside
    assert x.feats[:, :3].abs().max() <= 0.5
    assert x.feats[:, 3].min() >= 0 and x.feats[:, 3].max() < 1


def test_to_dense_and_bev() -> None:
    x = voxelize(known_points(), voxel_size=0.5, bounds=BOUNDS)
    dense = to_dense(x)
    assert dense.shape == (2, VOXEL_FEATURES, 4, 4, 2)
    for (b, i, j, k), f in zip(x.coords.tolist(), x.feats, strict=True):
        assert torch.equal(dense[b, :, i, j, k], f)
    assert int((dense.abs().sum(1) > 0).sum()) == 3  # zeros elsewhere
    bev = to_bev(x)
    assert bev.shape == (2, VOXEL_FEATURES * 2, 4, 4)
    for c in range(VOXEL_FEATURES):
        for z in range(2):
            assert torch.equal(bev[:, c * 2 + z], dense[:, c, :, :, z])
    assert torch.equal(dense_voxels(known_points(), voxel_size=0.5, bounds=BOUNDS), dense)


def test_to_dense_at_a_tensor_stride_and_gradient() -> None:
    coords = torch.tensor([[0, 0, 0, 0], [0, 2, 4, 2], [1, 4, 0, 0]])
    feats = torch.arange(6.0).view(3, 2).requires_grad_()
    x = SparseTensor(coords, feats, stride=2, batch_size=2, spatial_shape=(5, 6, 3))
    assert torch.equal(downsample_coords(coords, 2, 1), coords)
    dense = to_dense(x)
    assert dense.shape == (2, 2, 3, 3, 2)  # ceil(5/2), ceil(6/2), ceil(3/2)
    assert dense[0, :, 1, 2, 1].tolist() == [2.0, 3.0]
    assert dense[1, :, 2, 0, 0].tolist() == [4.0, 5.0]
    assert to_bev(x).shape == (2, 4, 3, 3)
    (dense * torch.arange(dense.numel()).view(dense.shape)).sum().backward()
    assert feats.grad is not None and feats.grad.abs().sum() > 0


def test_scatter_layouts_on_random_sites_with_gradients() -> None:
    """Random sites of a non-cubic grid at stride 2: every feature lands where a per-site loop
    puts it, the BEV is the dense grid's z-slices as channels, and each feature's gradient is
    the weight at its own cell."""
    g = torch.Generator().manual_seed(3)
    shape, stride, c, batch = (7, 5, 3), 2, 3, 2
    cells = {(b, i, j, k) for b, i, j, k in torch.stack([
        torch.randint(0, batch, (40,), generator=g), torch.randint(0, 4, (40,), generator=g),
        torch.randint(0, 3, (40,), generator=g), torch.randint(0, 2, (40,), generator=g),
    ], 1).tolist()}  # fmt: skip
    cells_t = torch.tensor(sorted(cells))
    coords = torch.cat([cells_t[:, :1], cells_t[:, 1:] * stride], 1)
    feats = torch.randn(len(cells_t), c, generator=g, requires_grad=True)
    x = SparseTensor(coords, feats, stride=stride, batch_size=batch, spatial_shape=shape)
    dense = to_dense(x)
    expected = torch.zeros(batch, c, 4, 3, 2)
    for (b, i, j, k), f in zip(cells_t.tolist(), feats.detach(), strict=True):
        expected[b, :, i, j, k] = f
    assert torch.equal(dense, expected)
    bev = to_bev(x)
    assert torch.equal(bev, dense_to_bev(dense))
    assert torch.equal(bev[:, 1 * 2 + 1], dense[:, 1, :, :, 1])
    weight = torch.randn(bev.shape, generator=g)
    (bev * weight).sum().backward()
    grid_weight = weight.view(batch, c, 2, 4, 3).permute(0, 1, 3, 4, 2)  # back to (B, C, X, Y, Z)
    b, i, j, k = cells_t.T
    assert torch.allclose(feats.grad, grid_weight[b, :, i, j, k])
