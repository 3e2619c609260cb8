"""The benchmark's input generator, its dense twin of the sparse stack, and its result keys."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from common.sparse import SparseTensor, build_kernel_map, kernel_offsets, to_dense
from common.sparse.bench import (
    VARIANTS,
    _dense_stack,
    _sparse_stack,
    benchmark_layers,
    lidar_like_coords,
)


def test_lidar_like_coords_are_unique_sorted_in_grid_and_surface_like() -> None:
    shape = (40, 40, 10)
    coords = lidar_like_coords(3, 500, shape, seed=1)
    assert coords.shape == (1500, 4)
    assert torch.bincount(coords[:, 0]).tolist() == [500, 500, 500]
    rows = [tuple(c) for c in coords.tolist()]
    assert rows == sorted(set(rows))
    assert (coords[:, 1:] >= 0).all() and (coords[:, 1:] < torch.tensor(shape)).all()
    # Surfaces: a site has several neighbours, far from both a random scatter and a solid block.
    per_site = build_kernel_map(coords, coords, kernel_offsets(3)).num_pairs / len(coords)
    assert 4 < per_site < 20
    assert torch.equal(coords, lidar_like_coords(3, 500, shape, seed=1))  # seeded


def test_dense_twin_computes_the_same_layer() -> None:
    coords = lidar_like_coords(2, 200, (16, 16, 8))
    x = SparseTensor(coords, torch.randn(len(coords), 4), batch_size=2, spatial_shape=(16, 16, 8))
    sparse = _sparse_stack(4, 1, "optimized")
    dense = _dense_stack(sparse)
    with torch.no_grad():
        y = sparse[0](x)
        d = dense[0](to_dense(x))
        cell = y.coords
        got = d.permute(0, 2, 3, 4, 1)[cell[:, 0], cell[:, 1], cell[:, 2], cell[:, 3]]
        torch.testing.assert_close(y.feats, got, atol=1e-5, rtol=1e-5)
        down = sparse[1](y)
        d2 = F.conv3d(to_dense(y), dense[1].weight, stride=2)
        c2 = down.coords[:, 1:] // 2
        got2 = d2.permute(0, 2, 3, 4, 1)[down.coords[:, 0], c2[:, 0], c2[:, 1], c2[:, 2]]
        torch.testing.assert_close(down.feats, got2, atol=1e-5, rtol=1e-5)


def test_benchmark_returns_every_timing_and_ratio() -> None:
    coords = lidar_like_coords(2, 150, (16, 16, 8))
    x = SparseTensor(coords, torch.zeros(len(coords), 1), batch_size=2, spatial_shape=(16, 16, 8))
    result = benchmark_layers(x, channels=4, layers=1, repeats=1, backward=True)
    for mode in ("forward", "forward_backward"):
        for variant in VARIANTS:
            assert result[f"{mode}/{variant}_ms"] > 0
        ratio = result[f"{mode}/naive_ms"] / result[f"{mode}/optimized_ms"]
        assert abs(result[f"{mode}/naive_over_optimized"] - ratio) < 1e-9
        assert f"{mode}/dense_over_optimized" in result
    assert result["sites"] == 300 and result["pairs"] > 300
    assert 0 < result["sparse_over_dense_macs"] < 1
    assert x.cache == {}  # the caller's tensor is left as it was
    only = benchmark_layers(x, channels=4, layers=1, repeats=1, backward=False, variants=["reuse"])
    assert "forward/reuse_ms" in only and "forward/naive_ms" not in only
