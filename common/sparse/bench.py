"""Timing of the sparse convolution implementations against each other and a dense ``conv3d``.

:func:`benchmark_layers` times the same stack (``layers`` submanifold 3x3x3 convolutions, then
one kernel-2 stride-2 convolution) as ``impl="naive"``, ``"reuse"`` and ``"optimized"``
:class:`~.conv.SparseConv3d` and as ``F.conv3d`` on the dense grid (same weights). Every timed
call gets a fresh input tensor with an empty cache, as a new batch of scans does, so the kernel
maps are built inside the timed region (once per stride for reuse / optimized, once per layer for
naive). Calls of the variants alternate within each repeat so that machine noise hits them alike;
the result is the median over repeats, after one untimed warm-up call per variant.

:func:`lidar_like_coords` makes a realistic input: planar patches (ground, walls, cars) in a grid,
on which a site has about 12 of its 26 neighbours, as on real LiDAR surfaces (uniformly random sites
have almost none, solid blobs almost all).

``python -m common.sparse.bench [--batch 16] [--sites 8000] [--grid 160 160 20] [--channels 16]
[--layers 2] [--repeats 3] [--no-backward] [--variants naive reuse optimized dense] [--threads N]``
prints the result as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.sparse.conv import IMPLS, SparseConv3d
from common.sparse.kmap import build_kernel_map, kernel_offsets, pack, unpack
from common.sparse.tensor import SparseTensor
from common.sparse.voxelize import to_dense

__all__ = ["VARIANTS", "benchmark_layers", "lidar_like_coords", "main"]

VARIANTS = (*IMPLS, "dense")


def lidar_like_coords(
    batch_size: int,
    sites: int,
    spatial_shape: tuple[int, int, int],
    *,
    seed: int = 0,
) -> Tensor:
    """``(batch_size * sites, 4)`` unique ``[batch, x, y, z]``, ``sites`` per sample, sorted.

    Each sample is a sequence of random planar rectangles (random orientation, half sides of 4 to
    20 voxels, 0.3 voxel of noise across the plane) rasterised into the grid until ``sites``
    voxels are occupied (the last rectangle is thinned to hit the count exactly).
    """
    gen = torch.Generator().manual_seed(seed)
    size = torch.tensor(spatial_shape, dtype=torch.float32)
    if sites > int(size.prod()) // 2:
        raise ValueError(f"{sites} sites do not fit half of a grid of {spatial_shape}")
    samples = []
    for b in range(batch_size):
        keys = torch.zeros(0, dtype=torch.int64)
        for _ in range(100 * sites):  # bounded: each patch adds voxels with high probability
            if keys.numel() >= sites:
                break
            centre = torch.rand(3, generator=gen) * size
            normal = F.normalize(torch.randn(3, generator=gen), dim=0)
            u = torch.randn(3, generator=gen)
            u = F.normalize(u - (u @ normal) * normal, dim=0)
            v = torch.linalg.cross(normal, u)
            half = 4 + torch.rand(2, generator=gen) * 16
            m = int(16 * half[0] * half[1])  # ~4 points per voxel of area
            st = (torch.rand(m, 2, generator=gen) * 2 - 1) * half
            pts = centre + st[:, :1] * u + st[:, 1:] * v + 0.3 * torch.randn(m, 3, generator=gen)
            pts = pts.floor().long()
            pts = pts[((pts >= 0) & (pts < size.long())).all(dim=1)]
            new = pack(torch.cat([torch.full((pts.shape[0], 1), b), pts], dim=1)).unique()
            new = new[~torch.isin(new, keys)]
            if keys.numel() + new.numel() > sites:
                pick = torch.randperm(new.numel(), generator=gen)[: sites - keys.numel()]
                new = new[pick]
            keys = torch.cat([keys, new])
        samples.append(unpack(keys.sort().values))
    return torch.cat(samples)


def _sparse_stack(channels: int, layers: int, impl: str) -> nn.Sequential:
    convs = [
        SparseConv3d(in_channels=channels, out_channels=channels, impl=impl) for _ in range(layers)
    ]
    down = SparseConv3d(
        in_channels=channels, out_channels=channels, kernel_size=2, stride=2, impl=impl
    )
    return nn.Sequential(*convs, down)


def _dense_stack(sparse: nn.Sequential) -> nn.Sequential:
    """``nn.Conv3d`` layers with the weights of ``sparse`` (``W[k] = dense[:, :, kx, ky, kz].T``)."""
    dense = []
    for conv in sparse:
        k = conv.kernel_size
        layer = nn.Conv3d(
            conv.in_channels,
            conv.out_channels,
            k,
            stride=conv.stride,
            padding=k // 2 if conv.submanifold else 0,
            bias=False,
        )
        weight = conv.weight.view(k, k, k, conv.in_channels, conv.out_channels)
        with torch.no_grad():  # (kx, ky, kz, Cin, Cout) -> (Cout, Cin, kx, ky, kz)
            layer.weight.copy_(weight.permute(4, 3, 0, 1, 2))
        dense.append(layer)
    return nn.Sequential(*dense)


def _median_ms(times: list[float]) -> float:
    return 1000.0 * statistics.median(times)


def benchmark_layers(
    x: SparseTensor,
    *,
    channels: int,
    layers: int,
    repeats: int,
    backward: bool,
    variants: Sequence[str] = VARIANTS,
    seed: int = 0,
) -> dict[str, float]:
    """Median milliseconds of the stack per variant, and speed-ups; prints nothing.

    Args:
        x: the input sites, tensor stride 1 (its features are replaced by ``channels`` random
            ones; it is left unchanged).
        channels: input and output channels of every layer.
        layers: submanifold convolutions before the strided one.
        repeats: timed calls per variant (median reported).
        backward: also time forward + backward (gradients of the input and the weights).
        variants: a subset of ``("naive", "reuse", "optimized", "dense")``.
        seed: of the features and weights.

    Returns:
        ``forward/<variant>_ms`` (under ``torch.no_grad``) and, if ``backward``,
        ``forward_backward/<variant>_ms``; ``<mode>/<a>_over_<b>`` = time of ``a`` / time of
        ``b`` for (naive, reuse), (naive, optimized), (reuse, optimized), (dense, optimized)
        when both ran; ``sites``, ``pairs`` (of the sparse stack, all layers) and
        ``sparse_over_dense_macs``.
    """
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variants {sorted(unknown)}; known: {VARIANTS}")
    torch.manual_seed(seed)
    feats = torch.randn(x.num_sites, channels)
    reference = _sparse_stack(channels, layers, "optimized")
    stacks: dict[str, nn.Module] = {}
    for impl in IMPLS:
        if impl in variants:
            stacks[impl] = _sparse_stack(channels, layers, impl)
            stacks[impl].load_state_dict(reference.state_dict())
    if "dense" in variants:
        stacks["dense"] = _dense_stack(reference)
        grid = to_dense(x.replace(feats)).detach()  # (B, C, X, Y, Z)

    def fresh_input(variant: str, grad: bool) -> SparseTensor | Tensor:
        if variant == "dense":
            return grid.clone().requires_grad_(grad)
        return SparseTensor(
            x.coords,
            feats.clone().requires_grad_(grad),
            stride=x.stride,
            batch_size=x.batch_size,
            spatial_shape=x.spatial_shape,
        )  # new empty cache: maps are built inside the timed call

    def run(variant: str, grad: bool) -> Callable[[], float]:
        def call() -> float:
            inp = fresh_input(variant, grad)
            start = time.perf_counter()
            if grad:
                out = stacks[variant](inp)
                (out if variant == "dense" else out.feats).sum().backward()
            else:
                with torch.no_grad():
                    stacks[variant](inp)
            return time.perf_counter() - start

        return call

    result: dict[str, float] = {"sites": float(x.num_sites)}
    modes = [("forward", False)] + ([("forward_backward", True)] if backward else [])
    for mode, grad in modes:
        calls = {v: run(v, grad) for v in stacks}
        for call in calls.values():
            call()  # warm-up: allocator, thread pools, first-call overheads
        times: dict[str, list[float]] = {v: [] for v in stacks}
        for _ in range(repeats):
            for v, call in calls.items():
                times[v].append(call())
        ms = {v: _median_ms(t) for v, t in times.items()}
        for v, value in ms.items():
            result[f"{mode}/{v}_ms"] = value
        for a, b in [
            ("naive", "reuse"),
            ("naive", "optimized"),
            ("reuse", "optimized"),
            ("dense", "optimized"),
        ]:
            if a in ms and b in ms:
                result[f"{mode}/{a}_over_{b}"] = ms[a] / ms[b]
    pairs = _stack_pairs(x, reference)
    result["pairs"] = float(pairs)
    dense_macs = _dense_macs(x, reference)
    result["sparse_over_dense_macs"] = pairs * channels * channels / dense_macs
    return result


def _stack_pairs(x: SparseTensor, stack: nn.Sequential) -> int:
    probe = SparseTensor(  # own cache: leave the caller's tensor as it was
        x.coords,
        torch.zeros(x.num_sites, stack[0].in_channels),
        stride=x.stride,
        batch_size=x.batch_size,
        spatial_shape=x.spatial_shape,
    )
    with torch.no_grad():
        stack(probe)
    return sum(conv.last_pairs for conv in stack)


def _dense_macs(x: SparseTensor, stack: nn.Sequential) -> int:
    """MACs of the dense stack on the whole grid (every output voxel, every tap)."""
    shape = list(x.spatial_shape)
    macs = 0
    for conv in stack:
        if conv.stride > 1:
            shape = [(n - conv.kernel_size) // conv.stride + 1 for n in shape]
        volume = shape[0] * shape[1] * shape[2]
        macs += x.batch_size * volume * conv.kernel_volume * conv.in_channels * conv.out_channels
    return macs


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m common.sparse.bench``: times the variants on LiDAR-like sites, prints JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--sites", type=int, default=8000, help="active voxels per sample")
    parser.add_argument("--grid", type=int, nargs=3, default=[160, 160, 20])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-backward", action="store_true")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    shape = (args.grid[0], args.grid[1], args.grid[2])
    coords = lidar_like_coords(args.batch, args.sites, shape, seed=args.seed)
    x = SparseTensor(
        coords, torch.zeros(coords.shape[0], 1), batch_size=args.batch, spatial_shape=shape
    )
    subm = build_kernel_map(coords, coords, kernel_offsets(3))
    result = {
        "threads": float(torch.get_num_threads()),
        "neighbours_per_site": subm.num_pairs / max(coords.shape[0], 1),
        **benchmark_layers(
            x,
            channels=args.channels,
            layers=args.layers,
            repeats=args.repeats,
            backward=not args.no_backward,
            variants=args.variants,
            seed=args.seed,
        ),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
