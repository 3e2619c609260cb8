"""Coordinate packing, kernel offsets, output sites and kernel maps: the vectorised builder
against the dict-based one and against the definition."""

from __future__ import annotations

import itertools

import pytest
import torch

from common.sparse.kmap import (
    COORD_MAX,
    COORD_MIN,
    build_kernel_map,
    build_kernel_map_naive,
    downsample_coords,
    kernel_offsets,
    pack,
    unpack,
)


def random_sites(
    batch: int, shape: tuple[int, int, int], density: float, seed: int = 0, step: int = 1
) -> torch.Tensor:
    """Unique sorted ``[b, x, y, z]`` on a grid, each cell active with probability ``density``;
    xyz multiples of ``step``."""
    gen = torch.Generator().manual_seed(seed)
    grid = torch.rand(batch, *shape, generator=gen) < density
    coords = grid.nonzero()
    coords[:, 1:] *= step
    return coords


def pair_set(kmap) -> set[tuple[int, int, int]]:
    """``{(k, in, out)}`` of a kernel map."""
    pairs = set()
    for k in range(kmap.kernel_volume):
        i, o = kmap.pairs(k)
        pairs |= {(k, a, b) for a, b in zip(i.tolist(), o.tolist(), strict=True)}
    return pairs


def test_pack_round_trips_and_sorts_like_tuples() -> None:
    coords = torch.tensor(
        [[0, 0, 0, 0], [1, -5, 3, 7], [0, COORD_MAX, COORD_MIN, 2], [32767, 1, 2, 3], [0, 0, 0, -1]]
    )
    keys = pack(coords)
    assert torch.equal(unpack(keys), coords)
    assert (keys >= 0).all()
    order = sorted(range(len(coords)), key=lambda i: tuple(coords[i].tolist()))
    assert torch.argsort(keys).tolist() == order


@pytest.mark.parametrize(
    "row",
    [
        [0, COORD_MAX + 1, 0, 0],
        [0, 0, COORD_MIN - 1, 0],
        [0, 0, 0, 10**6],
        [-1, 0, 0, 0],
        [1 << 15, 0, 0, 0],
    ],
)
def test_pack_raises_outside_its_range(row: list[int]) -> None:
    with pytest.raises(ValueError, match="pack into an int64 key"):
        pack(torch.tensor([[0, 1, 2, 3], row]))


def test_kernel_map_raises_when_queries_leave_the_range() -> None:
    edge = torch.tensor([[0, COORD_MAX, 0, 0]])
    with pytest.raises(ValueError, match="outside the packable range"):
        build_kernel_map(edge, edge, kernel_offsets(3))


def test_kernel_offsets_order_and_stride() -> None:
    off = kernel_offsets(3, 2)
    assert off.shape == (27, 3)
    assert off[0].tolist() == [-2, -2, -2] and off[13].tolist() == [0, 0, 0]
    assert off[1].tolist() == [-2, -2, 0]  # z fastest, as a dense weight's (kx, ky, kz) flattened
    expected = [[2 * a, 2 * b, 2 * c] for a, b, c in itertools.product((-1, 0, 1), repeat=3)]
    assert off.tolist() == expected
    assert kernel_offsets(2).tolist() == list(map(list, itertools.product((0, 1), repeat=3)))


@pytest.mark.parametrize(
    ("kernel", "tensor_stride", "out_stride"),
    [(3, 1, 1), (2, 1, 1), (5, 1, 1), (3, 1, 2), (2, 1, 2), (3, 2, 4), (2, 2, 4), (3, 2, 2)],
)
def test_vectorised_map_equals_the_naive_map(
    kernel: int, tensor_stride: int, out_stride: int
) -> None:
    coords = random_sites(2, (9, 8, 7), 0.3, step=tensor_stride)
    out = (
        coords
        if out_stride == tensor_stride
        else downsample_coords(coords, tensor_stride, out_stride // tensor_stride)
    )
    offsets = kernel_offsets(kernel, tensor_stride)
    fast = build_kernel_map(coords, out, offsets)
    slow = build_kernel_map_naive(coords, out, offsets)
    assert fast.num_pairs > 0
    assert pair_set(fast) == pair_set(slow)
    assert fast.pairs_per_offset == slow.pairs_per_offset
    assert torch.equal(fast.offset_ptr, slow.offset_ptr)
    assert (fast.num_in, fast.num_out) == (len(coords), len(out))


def test_map_is_the_definition() -> None:
    """Every pair satisfies in = out + offset in the same sample, and no pair is missing."""
    coords = random_sites(2, (6, 5, 4), 0.4, seed=3)
    offsets = kernel_offsets(3)
    kmap = build_kernel_map(coords, coords, offsets)
    got = pair_set(kmap)
    rows = {tuple(c): i for i, c in enumerate(coords.tolist())}
    want = set()
    for o, (b, x, y, z) in enumerate(coords.tolist()):
        for k, (dx, dy, dz) in enumerate(offsets.tolist()):
            i = rows.get((b, x + dx, y + dy, z + dz))
            if i is not None:
                want.add((k, i, o))
    assert got == want
    # The centre offset of a submanifold map is the identity.
    i, o = kmap.pairs(13)
    assert torch.equal(i, torch.arange(len(coords))) and torch.equal(o, i)


def test_map_with_coordinates_off_a_common_z_grid() -> None:
    """Arbitrary offsets and odd z (the fallback that searches every offset)."""
    coords = random_sites(2, (7, 7, 9), 0.3, seed=5)
    coords[:, 1:] -= 2  # negative coordinates too
    offsets = torch.tensor([[0, 0, 0], [1, 2, 3], [0, 0, -2], [-1, 0, 1], [0, 0, 5]])
    assert pair_set(build_kernel_map(coords, coords, offsets)) == pair_set(
        build_kernel_map_naive(coords, coords, offsets)
    )


def test_empty_inputs() -> None:
    empty = torch.zeros(0, 4, dtype=torch.int64)
    some = random_sites(1, (3, 3, 3), 0.5)
    for a, b in [(empty, some), (some, empty), (empty, empty)]:
        kmap = build_kernel_map(a, b, kernel_offsets(3))
        assert kmap.num_pairs == 0 and kmap.pairs_per_offset == (0,) * 27


def test_downsample_coords() -> None:
    coords = torch.tensor([[1, 3, 0, 1], [0, 2, 2, 2], [0, 3, 3, 3], [0, 0, 1, 0], [1, 2, 1, 0]])
    out = downsample_coords(coords, 1, 2)
    assert out.tolist() == [[0, 0, 0, 0], [0, 2, 2, 2], [1, 2, 0, 0]]
    # Stride 2 then 2 equals stride 4 directly (the sites at a stride depend on the input only).
    big = random_sites(2, (16, 16, 8), 0.2)
    twice = downsample_coords(downsample_coords(big, 1, 2), 2, 2)
    assert torch.equal(twice, downsample_coords(big, 1, 4))
    assert (twice[:, 1:] % 4 == 0).all()
