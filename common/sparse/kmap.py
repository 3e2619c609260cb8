"""Kernel maps: which input site feeds which output site through which kernel offset.

A sparse convolution computes ``y[o] = sum_k sum_{i: c_i = c_o + d_k} x[i] @ W[k]`` over the
kernel offsets ``d_k`` (in stride-1 voxel units, already multiplied by the tensor stride). The
*kernel map* lists those ``(i, o)`` pairs for every ``k``; the convolution is then gathers,
matrix products and scatter-adds over the pairs.

Coordinates are hashed by packing ``[batch, x, y, z]`` into one int64 (:func:`pack`); the map is
built vectorised (:func:`build_kernel_map`): sort the ``N`` input keys once and look up the
shifted output keys of all ``M`` outputs with ``torch.searchsorted`` (one search per ``(dx, dy)``
column of the kernel; the z offsets are adjacent in key order). :func:`build_kernel_map_naive` is
the dict-and-loops version a first implementation would write (the baseline of the benchmark).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "BATCH_BITS",
    "BATCH_MAX",
    "COORD_BITS",
    "COORD_MAX",
    "COORD_MIN",
    "KernelMap",
    "build_kernel_map",
    "build_kernel_map_naive",
    "downsample_coords",
    "kernel_offsets",
    "pack",
    "unpack",
]

# Key layout (63 bits, so keys are non-negative and sort like the tuples they pack):
#   [batch: 15 bits][x + 2^15: 16 bits][y + 2^15: 16 bits][z + 2^15: 16 bits]
# Batch is the most significant field, so sorting keys sorts sites by (batch, x, y, z).
COORD_BITS = 16
BATCH_BITS = 63 - 3 * COORD_BITS
COORD_MIN = -(1 << (COORD_BITS - 1))  # -32768
COORD_MAX = (1 << (COORD_BITS - 1)) - 1  # 32767
BATCH_MAX = (1 << BATCH_BITS) - 1  # 32767
_BIAS = 1 << (COORD_BITS - 1)
_MASK = (1 << COORD_BITS) - 1
# Shifts of x, y, z; a coordinate delta (dx, dy, dz) changes a key by dx<<32 + dy<<16 + dz as long
# as no field leaves its range, which build_kernel_map checks once for the whole query box.
_SHIFTS = (2 * COORD_BITS, COORD_BITS, 0)


def _check_range(coords: Tensor, what: str = "coords") -> None:
    if coords.numel() == 0:
        return
    batch, xyz = coords[:, 0], coords[:, 1:]
    lo_b, hi_b = int(batch.min()), int(batch.max())
    lo, hi = int(xyz.min()), int(xyz.max())
    if lo_b < 0 or hi_b > BATCH_MAX:
        raise ValueError(
            f"{what}: batch index must be in [0, {BATCH_MAX}] to pack into an int64 key, "
            f"got [{lo_b}, {hi_b}]"
        )
    if lo < COORD_MIN or hi > COORD_MAX:
        raise ValueError(
            f"{what}: x, y, z must be in [{COORD_MIN}, {COORD_MAX}] to pack into an int64 key, "
            f"got [{lo}, {hi}]"
        )


def pack(coords: Tensor) -> Tensor:
    """Packs ``(N, 4)`` ``[batch, x, y, z]`` into ``(N,)`` int64 keys that sort like the rows.

    Valid for batch in ``[0, 32767]`` and x, y, z in ``[-32768, 32767]``.

    Raises:
        ValueError: a coordinate is outside that range (the key would collide with another).
    """
    if coords.dim() != 2 or coords.shape[1] != 4:
        raise ValueError(f"coords must be (N, 4) [batch, x, y, z], got {tuple(coords.shape)}")
    coords = coords.long()
    _check_range(coords)
    key = coords[:, 0] << (3 * COORD_BITS)
    for axis, shift in enumerate(_SHIFTS, start=1):
        key = key | ((coords[:, axis] + _BIAS) << shift)
    return key


def unpack(keys: Tensor) -> Tensor:
    """Inverse of :func:`pack`: ``(N,)`` keys -> ``(N, 4)`` ``[batch, x, y, z]``."""
    cols = [keys >> (3 * COORD_BITS)]
    cols += [((keys >> shift) & _MASK) - _BIAS for shift in _SHIFTS]
    return torch.stack(cols, dim=1)


def kernel_offsets(kernel_size: int, tensor_stride: int = 1) -> Tensor:
    """``(K, 3)`` int64 offsets, ``K = kernel_size**3``, in stride-1 units (times the stride).

    Odd kernels are centred (``{-1, 0, 1}`` per axis for 3, the centre at ``K // 2``); even ones
    start at 0 (``{0, 1}`` for 2, the taps of a kernel-2 stride-2 downsampling). Order: x slowest,
    z fastest, the order of a dense ``conv3d`` weight's ``(kx, ky, kz)`` axes flattened.
    """
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
    start = -(kernel_size // 2) if kernel_size % 2 else 0
    taps = range(start, start + kernel_size)
    offsets = torch.tensor(list(itertools.product(taps, taps, taps)), dtype=torch.int64)
    return offsets * tensor_stride


@dataclass(eq=False)  # tensors: compare maps field by field (see the tests), not with ==
class KernelMap:
    """The ``(in, out)`` pairs of a sparse convolution, grouped by kernel offset.

    Attributes:
        in_idx: ``(P,)`` input row of each pair.
        out_idx: ``(P,)`` output row of each pair.
        offset_ptr: ``(K + 1,)`` pairs of offset ``k`` are ``[offset_ptr[k], offset_ptr[k+1])``.
        pairs_per_offset: ``K`` Python ints (no tensor sync when slicing per offset).
        num_in: number of input sites ``N``.
        num_out: number of output sites ``M``.
        derived: what the convolutions derive from the pairs (the optimized implementation's
            plan and scatter matrices), cached with the map.
    """

    in_idx: Tensor
    out_idx: Tensor
    offset_ptr: Tensor
    pairs_per_offset: tuple[int, ...]
    num_in: int
    num_out: int
    derived: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def num_pairs(self) -> int:
        """Total pairs ``P``: the MACs of a convolution are ``P * C_in * C_out``."""
        return int(self.in_idx.numel())

    @property
    def kernel_volume(self) -> int:
        """Number of offsets ``K``."""
        return len(self.pairs_per_offset)

    def pairs(self, k: int) -> tuple[Tensor, Tensor]:
        """``(in_idx, out_idx)`` of offset ``k`` (views)."""
        start = sum(self.pairs_per_offset[:k])
        stop = start + self.pairs_per_offset[k]
        return self.in_idx[start:stop], self.out_idx[start:stop]


def _empty_map(num_in: int, num_out: int, k_count: int) -> KernelMap:
    empty = torch.zeros(0, dtype=torch.int64)
    return KernelMap(
        in_idx=empty,
        out_idx=empty.clone(),
        offset_ptr=torch.zeros(k_count + 1, dtype=torch.int64),
        pairs_per_offset=(0,) * k_count,
        num_in=num_in,
        num_out=num_out,
    )


def _take(values: Tensor, index: Tensor) -> Tensor:
    """``values[index]`` for 1-D ``values``; ``index_select`` is ~2.5x faster than ``[]`` here."""
    return values.index_select(0, index.reshape(-1)).view(index.shape)


def _key_delta(offsets: Tensor) -> Tensor:
    """``(K, 3)`` offsets -> ``(K,)`` key deltas (valid while no field leaves its range)."""
    return sum(offsets[:, a] << s for a, s in enumerate(_SHIFTS))


def _z_step(in_coords: Tensor, out_coords: Tensor, offsets: Tensor) -> int:
    """The z spacing ``g`` that keeps z-neighbours close in key order, or 0 if there is none.

    When every input z, output z and z offset is a multiple of ``g``, at most ``|dz| / g`` input
    keys lie between ``key(b, x, y, z)`` and ``key(b, x, y, z + dz)``, so after one search for
    ``(b, x + dx, y + dy, z)`` the match for ``dz`` is within that many positions of it. At tensor
    stride ``s`` (coordinates and offsets are multiples of ``s``) ``g = s``.
    """
    dz = offsets[:, 2].abs()
    g = int(dz[dz > 0].min()) if bool((dz > 0).any()) else 1
    off_grid = (dz % g).any() | (in_coords[:, 3] % g).any() | (out_coords[:, 3] % g).any()
    return 0 if bool(off_grid) else g


def build_kernel_map(in_coords: Tensor, out_coords: Tensor, offsets: Tensor) -> KernelMap:
    """Pairs ``(i, o)`` with ``in_coords[i] == out_coords[o] + offsets[k]`` (same batch), per ``k``.

    Vectorised: one sort of the ``N`` input keys, then ``searchsorted`` of the shifted output
    keys of all ``M`` outputs at once. Within an offset, pairs are in increasing output order,
    except for a submanifold map (same sites in and out, offsets symmetric about a zero centre):
    there the pairs of offset ``K - 1 - k`` (``-d_k``) are those of ``k`` swapped, so the second
    half of the offsets is not searched at all, and their pairs are in increasing input order
    (also increasing output order when the sites are sorted, as :func:`downsample_coords` and
    ``voxelize`` sort them).

    Args:
        in_coords: ``(N, 4)`` unique input sites.
        out_coords: ``(M, 4)`` output sites.
        offsets: ``(K, 3)`` offsets in stride-1 units (:func:`kernel_offsets`).

    Raises:
        ValueError: coordinates, or output sites plus offsets, outside the range of :func:`pack`.
    """
    in_keys = pack(in_coords)
    out_keys = in_keys if out_coords is in_coords else pack(out_coords)
    offsets = offsets.long()
    num_in, num_out, k_count = in_coords.shape[0], out_coords.shape[0], offsets.shape[0]
    if num_in == 0 or num_out == 0 or k_count == 0:
        return _empty_map(num_in, num_out, k_count)
    # Every query out + offset must stay packable, so that key(out + d) = key(out) + key-delta(d).
    lo = int((out_coords[:, 1:].min(0).values + offsets.min(0).values).min())
    hi = int((out_coords[:, 1:].max(0).values + offsets.max(0).values).max())
    if lo < COORD_MIN or hi > COORD_MAX:
        raise ValueError(
            f"out_coords + offsets span [{lo}, {hi}], outside the packable range "
            f"[{COORD_MIN}, {COORD_MAX}]"
        )
    # in = out + d  <=>  out = in + (-d): with the same sites in and out, offset -d's pairs are
    # offset d's swapped, and the zero centre maps every site to itself.
    symmetric = (
        k_count % 2 == 1
        and (out_coords is in_coords or torch.equal(out_coords, in_coords))
        and torch.equal(offsets.flip(0), -offsets)
    )
    searched = offsets[: k_count // 2] if symmetric else offsets
    in_parts: list[Tensor] = []
    out_parts: list[Tensor] = []
    if searched.shape[0]:
        in_parts, out_parts = _search_pairs(in_coords, out_coords, in_keys, out_keys, searched)
    if symmetric:
        identity = torch.arange(num_in)
        in_parts.append(identity)
        out_parts.append(identity)
        for k in range(k_count // 2 - 1, -1, -1):
            in_parts.append(out_parts[k])
            out_parts.append(in_parts[k])
    counts = [p.numel() for p in out_parts]
    offset_ptr = torch.zeros(k_count + 1, dtype=torch.int64)
    offset_ptr[1:] = torch.tensor(counts, dtype=torch.int64).cumsum(0)
    return KernelMap(
        in_idx=torch.cat(in_parts),
        out_idx=torch.cat(out_parts),
        offset_ptr=offset_ptr,
        pairs_per_offset=tuple(counts),
        num_in=num_in,
        num_out=num_out,
    )


def _search_pairs(
    in_coords: Tensor, out_coords: Tensor, in_keys: Tensor, out_keys: Tensor, offsets: Tensor
) -> tuple[list[Tensor], list[Tensor]]:
    """Per offset, ``(in_idx, out_idx)`` of the matches, in increasing output order."""
    sorted_keys, order = torch.sort(in_keys)
    last = in_keys.numel() - 1
    delta = _key_delta(offsets)  # (K,)
    step = _z_step(in_coords, out_coords, offsets)
    if step:
        # One (M,) batch of binary searches per (dx, dy) column instead of per offset: 9, not 27,
        # for a 3x3x3 kernel (searchsorted runs on one thread and dominated the build). Within a
        # column the key for dz = -g sits just before the insertion point of the dz = 0 key, and
        # the one for dz = +g at it or just after it (after it when the dz = 0 key is present).
        columns, column_of = torch.unique(offsets[:, :2], dim=0, return_inverse=True)
        col_offsets = torch.cat([columns, torch.zeros_like(columns[:, :1])], dim=1)
        col_keys = out_keys[None, :] + _key_delta(col_offsets)[:, None]  # (C, M)
        steps = (offsets[:, 2] // step).tolist()
    else:  # z off a common grid: search every offset
        column_of = torch.arange(offsets.shape[0])
        col_keys = out_keys[None, :] + delta[:, None]
        steps = [0] * offsets.shape[0]
    starts = torch.searchsorted(sorted_keys, col_keys)  # (C, M), in [0, N]
    present = _take(sorted_keys, starts.clamp(max=last)) == col_keys  # (C, M): dz = 0 key exists
    delta_list = delta.tolist()
    in_parts: list[Tensor] = []
    out_parts: list[Tensor] = []
    for k, m in enumerate(steps):
        col = int(column_of[k])
        start = starts[col]  # (M,) insertion point of the column's dz = 0 key
        if m == 0:
            cand, hit = start.clamp(max=last), present[col]
        else:
            if m == -1:
                cand = (start - 1).clamp_(min=0)
            elif m == 1:
                cand = (start + present[col]).clamp_(max=last)
            else:  # |dz| > g (kernels wider than 3): scan the |m| candidates
                query = out_keys + delta_list[k]
                cand = start.clamp(max=last)
                for j in range(0, m + 1) if m > 0 else range(m, 0):
                    c = (start + j).clamp_(0, last)
                    cand = torch.where(_take(sorted_keys, c) == query, c, cand)
            hit = _take(sorted_keys, cand) == out_keys + delta_list[k]
        out_k = hit.nonzero().squeeze(1)  # ascending output rows
        out_parts.append(out_k)
        in_parts.append(_take(order, _take(cand, out_k)))
    return in_parts, out_parts


def build_kernel_map_naive(in_coords: Tensor, out_coords: Tensor, offsets: Tensor) -> KernelMap:
    """:func:`build_kernel_map` with a Python dict from coordinate tuple to row and two loops:
    the baseline a first implementation would write (same pairs, same order)."""
    table = {tuple(c): i for i, c in enumerate(in_coords.tolist())}
    in_idx: list[int] = []
    out_idx: list[int] = []
    counts: list[int] = []
    out_list = out_coords.tolist()
    for dx, dy, dz in offsets.tolist():
        before = len(in_idx)
        for o, (b, x, y, z) in enumerate(out_list):
            i = table.get((b, x + dx, y + dy, z + dz))
            if i is not None:
                in_idx.append(i)
                out_idx.append(o)
        counts.append(len(in_idx) - before)
    offset_ptr = torch.zeros(len(counts) + 1, dtype=torch.int64)
    offset_ptr[1:] = torch.tensor(counts, dtype=torch.int64).cumsum(0)
    return KernelMap(
        in_idx=torch.tensor(in_idx, dtype=torch.int64),
        out_idx=torch.tensor(out_idx, dtype=torch.int64),
        offset_ptr=offset_ptr,
        pairs_per_offset=tuple(counts),
        num_in=in_coords.shape[0],
        num_out=out_coords.shape[0],
    )


def downsample_coords(coords: Tensor, tensor_stride: int, stride: int) -> Tensor:
    """Output sites of a strided convolution: ``floor(xyz / (s * stride)) * (s * stride)``,
    unique per batch, sorted by ``(batch, x, y, z)``.

    Args:
        coords: ``(N, 4)`` sites at tensor stride ``tensor_stride``.
        tensor_stride: stride of ``coords``.
        stride: convolution stride; the output tensor stride is ``tensor_stride * stride``.
    """
    step = tensor_stride * stride
    out = coords.clone()
    out[:, 1:] = torch.div(coords[:, 1:], step, rounding_mode="floor") * step
    return unpack(torch.unique(pack(out)))  # unique() sorts; keys sort like (batch, x, y, z)
