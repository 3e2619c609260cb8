"""Which graph the generated code runs and where its tensors live: PAD and pool fusion, the
memory plan per engine configuration, and the split of patch-based inference.

* **patch-based inference** (``patch_ops``, ``patches``; MCUNetV2): the first operators run
  inside a loop over a ``p x p`` grid of tiles of the stage output (the driver is
  :func:`common.mcu.codegen.generate`). Each tile's regions come from the receptive field
  (:func:`~common.mcu.memory.patch_regions`); :func:`_patch_memory` plans the arena of the
  stage (the input frame unless streamed, the stage output, one tile of every stage tensor) and
  of the rest (per layer), and :func:`best_patch_split` picks the split with the smallest
  generated arena.
* **kernel scratch** (:func:`place_scratch`): each operator's scratch (im2col rows, widened
  rows, a padded depthwise plane) goes into a gap of the arena that no tensor alive during that
  operator uses, as TF-Lite Micro plans a kernel's scratch buffer with the lifetime of its
  operator; only scratch that fits no gap extends the arena past the activations.
* **streamed input** (``stream_input``, with patches; MCUNetV2's analytic convention): the input
  frame is not held in the arena; each tile's input region is requested from the caller
  (``model_read_input``), so the patch stage holds only tiles.
"""

from __future__ import annotations

import copy

from common.mcu.emit import TILE, CodegenOptions
from common.mcu.graph import Graph, Op, fuse_pad, fuse_pool
from common.mcu.memory import (
    Buffer,
    MemoryPlan,
    _align,
    _place_greedy,
    inplace_aliases,
    lifetimes,
    needed_region,
    patch_plan,
    patch_regions,
    plan_tflm,
    plan_tinyengine,
    region_bytes,
)
from common.mcu.ops import OPS
from common.mcu.ops.conv2d import fuses_pool


def _patch_memory(g: Graph, options: CodegenOptions) -> MemoryPlan:
    """Arena plan of patch-based inference for the PAD-fused graph ``g``.

    During the patch stage (ops ``[0, n)``, times ``0 .. n-1``) the whole input frame (unless
    ``options.stream_input``), the assembled stage output and one tile of every stage tensor (``name@tile``, sized for the
    largest tile, with the stage's own lifetimes) are alive; afterwards the rest of the network
    runs per layer (TinyEngine in-place rules), its times shifted by ``n``. One greedy placement
    over all of them, so the rest reuses the input frame's and the tiles' space.
    """
    n = options.patch_ops
    if n > len(g.ops):
        raise ValueError(f"patch_ops={n} but the graph has {len(g.ops)} operators")
    regions = patch_regions(g, n, options.patches)
    for op in g.ops[:n]:  # the analytic plan tiles an unfused PAD; the C code cannot
        if not OPS[op.kind].tiled_kernel:
            raise ValueError(
                f"patch stage: no tiled {op.kind} kernel ({op.name}); choose a shorter stage "
                "(patch_ops)"
            )
    for op in g.ops[:n]:  # the kernels read whole tiles: no window may start inside one
        if not OPS[op.kind].tile_halo and any(
            needed_region(op, g, r[op.outputs[0]]) != r[op.inputs[0]] for r in regions
        ):
            raise ValueError(
                f"patch stage: {op.kind} {op.name} would read part of a shared tile; "
                "choose another split (patch_ops)"
            )
    x, stage_out = g.inputs[0], g.ops[n - 1].outputs[0]
    stage = Graph(g.tensors, g.ops[:n], [x], [stage_out])
    buffers = [
        Buffer(
            b.tensor + TILE,
            max(region_bytes(g, b.tensor, r[b.tensor]) for r in regions),
            b.first,
            min(b.last, n - 1),
        )
        for b in lifetimes(stage)
    ]
    if not options.stream_input:  # streamed: the frame stays with the caller
        buffers.append(Buffer(x, g.tensors[x].nbytes, -1, n - 1))
    rest = Graph(g.tensors, g.ops[n:], [stage_out], g.outputs)
    aliases = inplace_aliases(rest)[0] if options.inplace else {}
    for b in lifetimes(rest, aliases):
        first = -1 if b.tensor == stage_out else b.first + n
        buffers.append(Buffer(b.tensor, b.size, first, b.last + n))
    return MemoryPlan(buffers, _place_greedy(buffers, 4), aliases=aliases)


def best_patch_split(
    g: Graph,
    patches: tuple[int, ...] = (2, 3, 4),
    max_overhead: float = 0.3,
    *,
    stream_input: bool = False,
) -> tuple[int, int, float] | None:
    """``(patch_ops, patches, mac_overhead)`` with the smallest generated activation arena among
    the splits that cost at most ``max_overhead`` extra MACs, or None when none does.

    Unlike :func:`~common.mcu.memory.best_patch_plan` (MCUNetV2's analytic peak, input frame
    streamed) this counts what the generated C code holds: the whole input frame in the arena
    during the patch stage (unless ``stream_input``), the tiles, the stage output, then the
    rest per layer.
    """
    fused = run_graph(g, CodegenOptions())
    best: tuple[int, int, float, int] | None = None
    for n in range(1, len(fused.ops)):
        for p in patches:
            try:
                overhead = patch_plan(fused, n, p).mac_overhead
                if overhead > max_overhead:
                    continue
                cg = CodegenOptions(patch_ops=n, patches=p, stream_input=stream_input)
                arena = _patch_memory(fused, cg).arena_bytes
            except ValueError:  # the split cuts a branch, or holds an operator without tiles
                continue
            if best is None or arena < best[3]:
                best = (n, p, overhead, arena)
    return None if best is None else best[:3]


def run_graph(g: Graph, options: CodegenOptions) -> Graph:
    """The graph the specialized code runs: PAD fused into convolutions (``fuse_pad``) and max
    pools into the convolutions before them where those run per-channel code (``fuse_pool``)."""
    out = fuse_pad(g) if options.fuse_pad or options.patch_ops else copy.deepcopy(g)
    if options.fuse_pool and options.per_channel and options.simd:

        def accept(graph: Graph, conv: Op) -> bool:
            return fuses_pool(graph, conv, options)

        out = fuse_pool(out, accept)
    return out


def place_scratch(plan: MemoryPlan, needs: dict[int, int]) -> dict[int, int]:
    """Arena offsets of the operators' scratch: for operator ``i`` needing ``needs[i]`` bytes,
    the lowest 8-byte aligned offset whose range overlaps no buffer of ``plan`` alive at ``i``
    (from the op that writes it to the last that reads it; the patch stage's tiles, frame and
    stage output included). Past the last busy byte when no gap is large enough."""
    at: dict[int, int] = {}
    for i, need in sorted(needs.items()):
        if need <= 0:
            continue
        busy = sorted(
            (b.offset, b.offset + _align(b.size, 4)) for b in plan.buffers if b.first <= i <= b.last
        )
        offset = 0
        for start, end in busy:
            if offset + need <= start:
                break
            offset = max(offset, _align(end, 8))
        at[i] = offset
    return at


def largest_gap(plan: MemoryPlan, i: int, end: int) -> int:
    """Bytes of the largest 8-byte aligned range below ``end`` that no buffer of ``plan`` alive at
    operator ``i`` uses (the most scratch operator ``i`` can take without growing the arena)."""
    busy = sorted(
        (b.offset, b.offset + _align(b.size, 4)) for b in plan.buffers if b.first <= i <= b.last
    )
    best, offset = 0, 0
    for start, stop in [*busy, (end, end)]:
        best = max(best, min(start, end) - offset)
        offset = max(offset, _align(stop, 8))
    return max(best, 0)


def _plan(g: Graph, options: CodegenOptions) -> tuple[Graph, MemoryPlan]:
    """The graph the code runs and its memory plan for ``options``."""
    if options.kernels == "reference":
        return g, plan_tflm(g)
    run = run_graph(g, options)
    if options.patch_ops:
        return run, _patch_memory(run, options)
    if options.inplace and options.fuse_pad:
        return run, plan_tinyengine(run)
    aliases = inplace_aliases(run)[0] if options.inplace else {}
    buffers = lifetimes(run, aliases)
    return run, MemoryPlan(buffers, _place_greedy(buffers, 4), aliases=aliases)
