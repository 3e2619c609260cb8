"""Activation memory plans: where every tensor lives in the SRAM arena, and the peak.

Two planners over the same lifetimes (a tensor lives from the operator that writes it to the last
one that reads it; graph inputs from the start, graph outputs to the end):

* :func:`plan_tflm` behaves like TF-Lite Micro's ``GreedyMemoryPlanner``: every tensor gets its
  own buffer, aligned to 16 bytes; buffers are placed largest first at the lowest offset that does
  not overlap a buffer alive at the same time. No tensor is ever computed in place.
* :func:`plan_tinyengine` adds what TinyEngine (MCUNet, Section 3.2) does: **in-place depthwise
  convolution**, where the output overwrites the input channel by channel and needs one channel of
  temporary space instead of a second tensor ("2N -> N + 1"), in-place add when an operand dies
  there, reshape as a view, and the same lifetime-based reuse with 4-byte alignment (the
  in-place rule of each operator is its ``inplace`` hook in :mod:`common.mcu.ops`).

:func:`patch_plan` (MCUNetV2) computes the peak of running the first stage of a network patch by
patch, from receptive fields, and the MACs that the overlapping halos recompute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.mcu.graph import Graph, Op, fuse_pad
from common.mcu.ops import OPS
from common.mcu.ops.base import Region, unit_region


@dataclass
class Buffer:
    tensor: str
    size: int
    first: int  # index of the producing op (-1 for graph inputs)
    last: int  # index of the last consumer (len(ops) for graph outputs)
    offset: int = -1


@dataclass
class MemoryPlan:
    """Offsets of every activation buffer and the arena they need."""

    buffers: list[Buffer]
    arena_bytes: int
    scratch_bytes: int = 0
    aliases: dict[str, str] = field(default_factory=dict)  # tensor -> tensor whose buffer it reuses

    @property
    def peak_bytes(self) -> int:
        return self.arena_bytes + self.scratch_bytes

    def offset(self, tensor: str) -> int:
        root = tensor
        while root in self.aliases:
            root = self.aliases[root]
        return next(b.offset for b in self.buffers if b.tensor == root)


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def lifetimes(g: Graph, aliases: dict[str, str] | None = None) -> list[Buffer]:
    """One buffer per activation (aliased tensors extend their root's lifetime)."""
    aliases = aliases or {}

    def root(t: str) -> str:
        while t in aliases:
            t = aliases[t]
        return t

    first: dict[str, int] = {root(t): -1 for t in g.inputs}
    last: dict[str, int] = {}
    for i, op in enumerate(g.ops):
        for t in op.inputs:
            if not g.tensors[t].is_constant:
                last[root(t)] = max(last.get(root(t), -1), i)
        for t in op.outputs:
            first.setdefault(root(t), i)
            last[root(t)] = max(last.get(root(t), i), i)
    for t in g.outputs:
        last[root(t)] = len(g.ops)
    return [Buffer(t, g.tensors[t].nbytes, first[t], last[t]) for t in first]


def _place_greedy(
    buffers: list[Buffer], align: int, order: Callable[[Buffer], Any] | None = None
) -> int:
    """Largest first (``order``: the sort key, by default size then first use), lowest offset
    that overlaps no placed buffer alive at the same time."""
    placed: list[Buffer] = []
    for b in sorted(buffers, key=order or (lambda b: (-b.size, b.first))):
        size = _align(b.size, align)
        busy = sorted(
            (p.offset, p.offset + _align(p.size, align))
            for p in placed
            if not (p.last < b.first or b.last < p.first)
        )
        offset = 0
        for start, end in busy:
            if offset + size <= start:
                break
            offset = max(offset, end)
        b.offset = offset
        placed.append(b)
    return max((b.offset + _align(b.size, align) for b in buffers), default=0)


def plan_tflm(g: Graph) -> MemoryPlan:
    """TF-Lite Micro's plan: a buffer per tensor, 16-byte aligned, greedy by size.

    Buffers of equal (aligned) size are placed as its ``GreedyMemoryPlanner`` places them: the
    later tensor of the file (``g.tensors`` keeps the file's order through import and export)
    first. Placing them by first use instead gives a different arena on some converter-style
    files, whose tensors are not in the order of use."""
    index = {name: k for k, name in enumerate(g.tensors)}
    buffers = lifetimes(g)
    arena = _place_greedy(buffers, 16, lambda b: (-_align(b.size, 16), -index[b.tensor]))
    return MemoryPlan(buffers, arena)


def inplace_aliases(g: Graph) -> tuple[dict[str, str], int]:
    """Which outputs reuse their input's buffer in TinyEngine, and the scratch that needs.

    Returns ``(aliases, scratch_bytes)``: in-place depthwise needs one output channel
    (``out_h * out_w`` bytes) of scratch, shared by all of them.
    """
    last_use: dict[str, int] = {}
    for i, op in enumerate(g.ops):
        for t in op.inputs:
            last_use[t] = i
    for t in g.outputs:
        last_use[t] = len(g.ops)
    aliases: dict[str, str] = {}
    scratch = 0
    for i, op in enumerate(g.ops):
        spec = OPS.get(op.kind)
        if spec is None or spec.inplace is None:
            continue
        x, need = spec.inplace(g, op, i, last_use)
        if x is not None:
            aliases[op.outputs[0]] = x
            scratch = max(scratch, need)
    return aliases, scratch


def plan_tinyengine(g: Graph) -> MemoryPlan:
    """TinyEngine's plan for ``fuse_pad(g)``: PAD fused into convolutions, in-place depthwise and
    add, reshape as a view, lifetime-based reuse with 4-byte alignment.

    The greedy placement is a heuristic, so the plan without in-place reuse is computed too and
    the smaller arena kept (in-place never loses by more than its scratch, but packing can).
    """
    g = fuse_pad(g)
    aliases, scratch = inplace_aliases(g)
    with_inplace = lifetimes(g, aliases)
    arena = _place_greedy(with_inplace, 4)
    plain = lifetimes(g)
    arena_plain = _place_greedy(plain, 4)
    if arena + scratch <= arena_plain:
        return MemoryPlan(with_inplace, arena, scratch_bytes=scratch, aliases=aliases)
    return MemoryPlan(plain, arena_plain)


def live_peak(g: Graph, plan_aliases: dict[str, str] | None = None) -> tuple[int, int]:
    """Lower bound of any plan: the most bytes alive during one operator, and that operator."""
    buffers = lifetimes(g, plan_aliases)
    best, at = 0, -1
    for i in range(len(g.ops)):
        live = sum(b.size for b in buffers if b.first <= i <= b.last)
        if live > best:
            best, at = live, i
    return best, at


# ------------------------------------------------------------------ patch-based inference
@dataclass
class PatchPlan:
    """MCUNetV2: the first ``n_ops`` operators run on a ``p x p`` grid of output patches."""

    n_ops: int
    patches: int
    peak_bytes: int  # the larger of the patch stage's and the rest's peak
    patch_stage_peak: int
    rest_peak: int
    macs: int  # with the recomputed halo
    base_macs: int

    @property
    def mac_overhead(self) -> float:
        if self.base_macs == 0:  # no multiply-accumulates at all (pads, adds, pools)
            return 0.0
        return self.macs / self.base_macs - 1.0


# operators that work on a spatial tile of NHWC tensors
PATCH_KINDS = tuple(kind for kind, spec in OPS.items() if spec.tiles)


def needed_region(op: Op, g: Graph, out: Region) -> Region:
    """The input rows and columns ``op`` reads to produce the output region ``out`` (clipped to
    the input: windows reaching outside it read padding, which the kernels supply): each
    operator's ``needed_region`` hook, a 1 x 1 window without one."""
    hook = OPS[op.kind].needed_region
    return unit_region(g, op, out) if hook is None else hook(g, op, out)


def patch_regions(g: Graph, n_ops: int, patches: int) -> list[dict[str, Region]]:
    """For each of the ``patches x patches`` output tiles of op ``n_ops - 1`` of ``g`` (PAD
    already fused), the region every activation of the stage must hold for that tile.

    The regions are found by walking the receptive field backwards; a tensor read by several
    ops (a residual block's input) holds the union. Raises ``ValueError`` when a tensor of the
    stage other than its output is read after it (the split cuts a branch).
    """
    if not 1 <= n_ops <= len(g.ops):
        raise ValueError(f"n_ops={n_ops}: the graph has {len(g.ops)} operators")
    stage = g.ops[:n_ops]
    for op in stage:
        check = OPS[op.kind].tile_check if op.kind in PATCH_KINDS else None
        why = check(g, op) if check is not None else None
        if op.kind not in PATCH_KINDS or why is not None:
            raise ValueError(
                f"{op.kind} {op.name} cannot run patch by patch{f' ({why})' if why else ''}: "
                "choose a shorter stage"
            )
    stage_out = stage[-1].outputs[0]
    # The input is read tile by tile (from the camera or a flash-resident image, as MCUNetV2
    # assumes), so it may not be read again after the stage either.
    produced = {op.outputs[0] for op in stage} | set(g.inputs)
    for op in g.ops[n_ops:]:
        if any(t in produced and t != stage_out for t in op.inputs):
            raise ValueError(
                "a tensor inside the patch stage is read after it: choose another split"
            )
    _, oh, ow, _ = g.tensors[stage_out].shape
    edges_h = np.linspace(0, oh, patches + 1).round().astype(int)
    edges_w = np.linspace(0, ow, patches + 1).round().astype(int)
    tiles = []
    for i in range(patches):
        for j in range(patches):
            region: dict[str, Region] = {
                stage_out: (
                    int(edges_h[i]),
                    int(edges_h[i + 1]),
                    int(edges_w[j]),
                    int(edges_w[j + 1]),
                )
            }
            for op in reversed(stage):
                need = needed_region(op, g, region[op.outputs[0]])
                for t in op.inputs:
                    if g.tensors[t].is_constant:
                        continue
                    old = region.get(t)
                    region[t] = (
                        need
                        if old is None
                        else (
                            min(old[0], need[0]),
                            max(old[1], need[1]),
                            min(old[2], need[2]),
                            max(old[3], need[3]),
                        )
                    )
            tiles.append(region)
    return tiles


def region_bytes(g: Graph, t: str, r: Region) -> int:
    """Bytes of tensor ``t``'s region ``r`` (all channels)."""
    return (r[1] - r[0]) * (r[3] - r[2]) * g.tensors[t].shape[3]


def patch_plan(g: Graph, n_ops: int, patches: int) -> PatchPlan:
    """Peak memory and MACs when ops ``[0, n_ops)`` run patch by patch (MCUNetV2).

    The output of op ``n_ops - 1`` is cut into ``patches x patches`` tiles
    (:func:`patch_regions`); the stage runs on each tile's regions, keeping only one tile's
    tensors alive plus the assembled stage output. MACs count every tile's work, so the
    overlapping halos show up as overhead. This is the analytic plan (no kernel scratch; the
    input frame itself is assumed streamed, only its tiles count).
    """
    g = fuse_pad(g)
    stage = g.ops[:n_ops]
    stage_out = stage[-1].outputs[0]
    out_t = g.tensors[stage_out]
    stage_graph = Graph(g.tensors, stage, [g.inputs[0]], [stage_out])
    lives = lifetimes(stage_graph)
    total_macs = 0
    stage_peak = 0
    for region in patch_regions(g, n_ops, patches):
        for k, op in enumerate(stage):
            live = sum(
                region_bytes(g, b.tensor, region[b.tensor]) for b in lives if b.first <= k <= b.last
            )
            stage_peak = max(stage_peak, live + out_t.nbytes)
            macs = OPS[op.kind].macs
            if macs is not None:
                total_macs += macs(g, op, region[op.outputs[0]])
    rest = Graph(g.tensors, g.ops[n_ops:], [stage_out], g.outputs)
    rest_peak = plan_tinyengine(rest).peak_bytes if rest.ops else 0
    rest_macs = Graph(g.tensors, g.ops[n_ops:], [], []).macs()
    return PatchPlan(
        n_ops,
        patches,
        max(stage_peak, rest_peak),
        stage_peak,
        rest_peak,
        total_macs + rest_macs,
        g.macs(),
    )


def best_patch_plan(
    g: Graph, patches: tuple[int, ...] = (2, 3, 4), max_overhead: float = 0.3
) -> PatchPlan | None:
    """The split and grid with the lowest peak among those within ``max_overhead`` extra MACs."""
    best = None
    for n in range(1, len(fuse_pad(g).ops)):
        for p in patches:
            try:
                plan = patch_plan(g, n, p)
            except ValueError:
                continue
            if plan.mac_overhead <= max_overhead and (
                best is None or plan.peak_bytes < best.peak_bytes
            ):
                best = plan
    return best
