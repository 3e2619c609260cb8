"""C code generation for int8 graphs: a TinyEngine-style generator and a TF-Lite Micro baseline.

:func:`generate` writes a self-contained, freestanding C project for one :class:`~common.mcu.graph.Graph`:

* ``model.h`` / ``model.c``: the contract with any runner. ``model.h`` defines
  ``MODEL_INPUT_BYTES``, ``MODEL_OUTPUT_BYTES``, ``MODEL_ARENA_BYTES`` and declares
  ``model_input()`` (where the caller writes the input, inside the arena), ``model_output()`` and
  ``model_invoke()``. ``model.c`` holds weights, biases and per-channel requantization multipliers
  and shifts as ``static const`` arrays (flash), one 8-byte aligned static arena holding every
  activation at its memory-plan offset plus the kernels' scratch, and the operator sequence.
* kernel sources (``kernels_ref.c/.h``, ``kernels_te.h``, ``te_common.h``, ``arm_simd.h`` and the
  generated ``te_dw_unrolled.h``, ``te_wide.h``, ``te_dwk.h`` from :mod:`common.mcu.asm`): only
  ``<stdint.h>``/``<stddef.h>``, no libc calls, no floating point; everything numeric is
  precomputed here in Python.
* ``main_host.c`` (stdin -> model -> stdout harness, the only file using libc) and a ``Makefile``
  (:mod:`common.mcu.host` builds and runs it).

Every kernel is bit-exact with :func:`common.mcu.reference.run` (TF-Lite integer semantics).
Each operator's code comes from its module in :mod:`common.mcu.ops` (registered in
:data:`~common.mcu.ops.OPS`), which also documents the optimisations of its kernels; this module
drives them.

``kernels="reference"`` mirrors TF-Lite Micro's portable reference kernels
(``reference_integer_ops::ConvPerChannel``, ``DepthwiseConvPerChannel``, ``FullyConnected``,
``AddElementwise``, ``AveragePool``/``MaxPool``, ``reference::Pad``): run-time shapes in
parameter structs, the TFLM loop order (out_y, out_x, out_channel, filter_y, filter_x, in_channel)
with the is-point-inside-image test inside the filter loops, the input offset added to every input
value, one requantization per output, PAD kept as its own operator, RESHAPE as a copy, and the
:func:`~common.mcu.memory.plan_tflm` arena (a buffer per tensor, nothing in place).

``kernels="specialized"`` implements TinyEngine's (MCUNet, Section 3.2) code-generation
optimisations, each behind a :class:`CodegenOptions` switch for ablations:

* **specialization** (``specialize``): per-layer shapes, strides, paddings, offsets and activation
  bounds are literal constants at each call site and the kernels are forced inline, so the
  compiler emits per-layer code with static loop bounds. Each operator is its own ``noipa``
  function, so the compiler allocates registers per layer.
* **fused padding** (``fuse_pad``; :mod:`common.mcu.ops.pad`) and **fused max pool**
  (``fuse_pool``; :mod:`common.mcu.ops.conv2d`): the graph the code runs
  (:func:`~common.mcu.planning.run_graph`) has PAD folded into convolutions and
  non-overlapping max pools into the convolutions before them.
* convolutions (:mod:`common.mcu.ops.conv2d`): **1x1 convolution without im2col**, **SIMD**
  (``simd``), **input offset folding** (``fold_offset``), **per-channel code**
  (``per_channel``, ``channel_flash``), **two pixels per pass** (``pixel_pairs``) and the
  **weight-cached 1x1 GEMM** (``gemm_cache``); fully connected layers share the GEMM
  (:mod:`common.mcu.ops.fully_connected`).
* depthwise (:mod:`common.mcu.ops.depthwise`): **in-place** (``inplace``), on a **padded
  channel plane** with unrolled taps (``unroll``), on **int16 row rings** (``dw_rows``) and
  **valid taps on tiny planes** (``dw_small``); ADD writes into a dying operand and rescales by
  table (``add_table``; :mod:`common.mcu.ops.add`), RESHAPE is a view
  (:mod:`common.mcu.ops.reshape`).
* fused requantization + activation clamp in every kernel's epilogue, with the fast SMMLAR
  sequence where it is exact (:func:`~common.mcu.emit._fast_requant`).
* **patch-based inference** (``patch_ops``, ``patches``; MCUNetV2): the first operators run
  inside a loop over a ``p x p`` grid of tiles of the stage output. Each tile's regions come
  from the receptive field (:func:`~common.mcu.memory.patch_regions`); the input frame's tile is
  copied into a tile buffer, each operator runs the same kernels on tile buffers with the tile's
  own extents and paddings (a per-tile table, :class:`_PatchStage`; values equal for all tiles
  stay literals), an ADD whose operands carry a halo runs row by row, and the output tile is
  copied into the whole stage output. The rest runs per layer.
  :func:`~common.mcu.planning.best_patch_split` picks the split.
* **streamed input** (``stream_input``, with patches; MCUNetV2's analytic convention): the input
  frame is not held in the arena; each tile's input region is requested from the caller
  (``model_read_input``: a camera or sensor interface that delivers rows of a window, here the
  host harness or a semihosting call under emulation), so the patch stage holds only tiles.

The arena is the real SRAM for activations: ``MODEL_ARENA_BYTES`` = the plan's activation bytes
(8-byte aligned) + the scratch that fits no gap. Each operator's scratch (im2col rows with the
widened int16 rows, a padded depthwise channel plane, ...) is placed where no tensor alive during
that operator lies (:func:`~common.mcu.planning.place_scratch`), so most of it costs no SRAM.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.mcu.asm import _dw_unrolled_header, _dwk_header, _wide_header
from common.mcu.emit import (
    TILE,
    CodegenOptions,
    ReferenceOp,
    SpecializedModel,
    SpecializedOp,
    _align,
    _Emitter,
)
from common.mcu.emit import _fast_requant as _fast_requant
from common.mcu.graph import Graph, Op, UnsupportedOperatorError
from common.mcu.host import HOST_OPT as HOST_OPT
from common.mcu.host import MAKEFILE
from common.mcu.host import build_arm as build_arm
from common.mcu.host import build_host as build_host
from common.mcu.host import run_host as run_host
from common.mcu.host import run_host_batch as run_host_batch
from common.mcu.host import time_host as time_host
from common.mcu.memory import MemoryPlan, Region, patch_regions
from common.mcu.ops import OPS
from common.mcu.ops.add import _add_table as _add_table
from common.mcu.ops.conv2d import _channel_choices as _channel_choices
from common.mcu.ops.conv2d import _channel_extra as _channel_extra
from common.mcu.ops.depthwise import _dw_ring as _dw_ring
from common.mcu.ops.depthwise import _dw_small as _dw_small
from common.mcu.ops.depthwise import _dwk_ring as _dwk_ring
from common.mcu.planning import _patch_memory as _patch_memory
from common.mcu.planning import _plan, largest_gap, place_scratch
from common.mcu.planning import best_patch_split as best_patch_split
from common.mcu.planning import run_graph as run_graph
from common.mcu.quant import activation_range

__all__ = [
    "HOST_OPT",
    "CProject",
    "CodegenOptions",
    "best_patch_split",
    "build_arm",
    "build_host",
    "generate",
    "run_graph",
    "run_host",
    "run_host_batch",
    "time_host",
]

CSRC = Path(__file__).with_name("csrc")
COMMON_FILES = ("arm_simd.h", "te_common.h", "softmax.h", "main_host.c")
REFERENCE_FILES = ("kernels_ref.h", "kernels_ref.c")
SPECIALIZED_FILES = ("kernels_te.h",)
# The operators' kernel-selection rules, looked up here when code is generated: a test replaces
# one in this module (monkeypatch) to force a kernel onto every layer.
KERNEL_RULES = ("_channel_choices", "_dw_ring", "_dwk_ring", "_dw_small")


@dataclass
class CProject:
    """A generated C project and what it needs at run time.

    Attributes:
        out_dir: the project directory.
        sources: the ``.c`` files (``main_host.c`` included; an MCU runner compiles the others).
        headers: the ``.h`` files.
        options: the options it was generated with.
        graph: the graph the code runs (after PAD fusion in specialized mode).
        plan: the activation memory plan (offsets into the arena).
        arena_bytes: ``MODEL_ARENA_BYTES``: activations + scratch, the SRAM the model needs.
        activation_bytes: the plan's activation part of the arena.
        scratch_bytes: the kernel scratch that fits no gap between the live activations and
            extends the arena past them (im2col columns, padded depthwise channel plane, ...).
        weight_bytes: bytes of ``static const`` data (weights, biases, requantization params).
        input_bytes: ``MODEL_INPUT_BYTES``.
        output_bytes: ``MODEL_OUTPUT_BYTES``.
        scratch_placement: per operator index with scratch, ``(arena offset, bytes)``.
    """

    out_dir: Path
    sources: list[Path]
    headers: list[Path]
    options: CodegenOptions
    graph: Graph
    plan: MemoryPlan
    arena_bytes: int
    activation_bytes: int
    scratch_bytes: int
    weight_bytes: int
    input_bytes: int
    output_bytes: int
    inplace_ops: list[str] = field(default_factory=list)
    channel_bytes: int = 0  # estimated flash the per-channel code adds over the int8 GEMM
    scratch_placement: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def scratch_ops(self) -> list[tuple[int, str, int]]:
        """The operators whose scratch extends the arena past the activations, as ``(index,
        kind, bytes past the activations)``, largest first."""
        past = [
            (i, self.graph.ops[i].kind, off + n - self.activation_bytes)
            for i, (off, n) in self.scratch_placement.items()
            if off + n > self.activation_bytes
        ]
        return sorted(past, key=lambda t: (-t[2], t[0]))

    @property
    def mcu_sources(self) -> list[Path]:
        """The ``.c`` files an MCU build compiles (all but the host harness)."""
        return [p for p in self.sources if p.name != "main_host.c"]


class _PatchStage:
    """Emission state of the patch stage: per-tile values become columns of one table.

    ``col(values)`` takes one value per tile and returns a C expression: a literal when every
    tile has the same value (so the code stays specialized there), else ``T[k]``, the k-th
    entry of the current tile's row of ``patch_tab``.
    """

    def __init__(self, g: Graph, options: CodegenOptions) -> None:
        self.n = options.patch_ops
        self.stream = options.stream_input
        self.regions = patch_regions(g, self.n, options.patches) if self.n else []
        self.cols: list[list[int]] = []

    def col(self, values: list[int]) -> str:
        vals = [int(v) for v in values]
        if len(set(vals)) == 1:
            return str(vals[0])
        if vals not in self.cols:  # one column per distinct list: equal extents compare equal
            self.cols.append(vals)
        return f"T[{self.cols.index(vals)}]"

    def of(self, t: str) -> list[Region]:
        return [r[t] for r in self.regions]

    def window(self, g: Graph, op: Op, sh: int, sw: int, pt: int, pl: int) -> dict[str, str]:
        """Tile geometry of a windowed op: input/output extents and the tile's own padding."""
        rin, rout = self.of(op.inputs[0]), self.of(op.outputs[0])  # checked by _patch_memory
        return {
            "h": self.col([r[1] - r[0] for r in rin]),
            "w": self.col([r[3] - r[2] for r in rin]),
            "oh": self.col([r[1] - r[0] for r in rout]),
            "ow": self.col([r[3] - r[2] for r in rout]),
            "pt": self.col([ri[0] + pt - ro[0] * sh for ri, ro in zip(rin, rout, strict=True)]),
            "pl": self.col([ri[2] + pl - ro[2] * sw for ri, ro in zip(rin, rout, strict=True)]),
            "max_oh": str(max(r[1] - r[0] for r in rout)),
            "max_ow": str(max(r[3] - r[2] for r in rout)),
        }

    def copy_in(self, g: Graph, plan: MemoryPlan) -> str:
        """Copy the current tile of the input frame into its tile buffer (streamed: ask the
        caller for it)."""
        x = g.inputs[0]
        _, _, w, c = g.tensors[x].shape
        r = self.of(x)
        rows, cols = self.col([b[1] - b[0] for b in r]), self.col([b[3] - b[2] for b in r])
        if self.stream:
            y0, x0 = self.col([b[0] for b in r]), self.col([b[2] for b in r])
            return f"model_read_input(arena + {plan.offset(x + TILE)}, {y0}, {x0}, {rows}, {cols});"
        start = self.col([(b[0] * w + b[2]) * c for b in r])
        return (
            f"te_copy_rows(arena + {plan.offset(x + TILE)}, {cols} * {c}, "
            f"arena + {plan.offset(x)} + {start}, {w * c}, {rows}, {cols} * {c});"
        )

    def copy_out(self, g: Graph, plan: MemoryPlan, t: str) -> str:
        """Copy the current tile of the stage output into the whole tensor."""
        _, _, w, c = g.tensors[t].shape
        r = self.of(t)
        rows, cols = self.col([b[1] - b[0] for b in r]), self.col([b[3] - b[2] for b in r])
        start = self.col([(b[0] * w + b[2]) * c for b in r])
        return (
            f"te_copy_rows(arena + {plan.offset(t)} + {start}, {w * c}, "
            f"arena + {plan.offset(t + TILE)}, {cols} * {c}, {rows}, {cols} * {c});"
        )


def _emit_specialized(
    g: Graph,
    plan: MemoryPlan,
    options: CodegenOptions,
    em: _Emitter,
    scratch_off: int,
    wc_scratch: int = 0,
    pair_scratch: int | None = 0,
    scratch_at: dict[int, int] | None = None,
    room: dict[int, int] | None = None,
) -> tuple[dict[int, int], list[str]]:
    """Emit the TinyEngine-style operator sequence; returns (scratch bytes per operator index,
    in-place op names). ``scratch_at``: per operator, the arena offset of its scratch (default
    ``scratch_off``).

    ``wc_scratch``: the scratch bytes the weight-cached 1x1 GEMM (te_conv1x1_wc) may use for its
    pixel blocks (0: none; :func:`generate` passes what the other layers need anyway), and
    ``pair_scratch`` the scratch the two-pixel per-channel code may use (0: none; None: as much
    as it needs).

    Each operator's code comes from its :class:`~common.mcu.ops.base.OpSpec`'s
    ``emit_specialized`` and (with ``specialize``) goes into a function of its own. With
    ``options.patch_ops`` the first operators run inside a loop over the tiles of the stage
    output (MCUNetV2): the input frame's tile is copied in, every stage operator runs on its tile
    buffers with per-tile shapes and paddings (read from a table), and the output tile is copied
    into the whole stage output.
    """
    ps = _PatchStage(g, options)
    m = SpecializedModel(g, plan, options, em, scratch_off, wc_scratch, pair_scratch, ps)
    m.scratch_at = dict(scratch_at or {})
    m.room = room
    m.rules = {name: globals()[name] for name in KERNEL_RULES}
    for kind, spec in OPS.items():  # whole-model decisions (the convolutions' per-channel code)
        if spec.prepare is not None:
            m.state[kind] = spec.prepare(m)
    body = em.body
    for i, op in enumerate(g.ops):
        in_stage = i < ps.n
        if in_stage and i == 0:
            body = []
        body.append(f"    /* {i}: {op.kind} {op.name}{' (one tile)' if in_stage else ''} */")
        op_start = len(body)
        spec = OPS.get(op.kind)
        if in_stage and (spec is None or not spec.tiled_kernel):
            raise ValueError(f"patch stage: no tiled {op.kind} kernel; choose a shorter stage")
        if spec is None:
            raise UnsupportedOperatorError(f"the C code generator has no {op.kind!r} kernel")
        spec.emit_specialized(SpecializedOp(m, i, op, body, in_stage))
        code = body[op_start:]
        if options.specialize and code and not all(line.strip().startswith("/*") for line in code):
            # each operator in a function of its own: the compiler allocates registers per
            # layer (one huge model_invoke spills in the hot loops), at the cost of one call;
            # noipa: GCC 12's pure-const analysis can misread an induction variable's address
            # as a NULL access and drop the call to a function it then believes has no effect
            param = "const int32_t *T" if in_stage else "void"
            em.funcs.append(
                "\n".join(
                    [
                        f"static void __attribute__((noipa)) op_{i}({param}) {{",
                        *(["    (void)T;"] if in_stage else []),
                        *code,
                        "}",
                    ]
                )
            )
            body[op_start:] = [f"    op_{i}({'T' if in_stage else ''});"]
        if in_stage and i == ps.n - 1:  # close the loop over tiles
            first = ps.copy_in(g, plan)
            last = ps.copy_out(g, plan, op.outputs[0])
            n_tiles = len(ps.regions)
            if ps.cols:
                table = np.asarray(ps.cols, dtype=np.int64).T  # (tiles, columns)
                em.array("patch_tab", "int32_t", table)
                row = f"        const int32_t *T = patch_tab + t * {table.shape[1]};"
            else:
                row = "        const int32_t *T = (const int32_t *)0; /* same geometry */"
            em.body += [
                f"    /* patch stage (MCUNetV2): ops 0..{ps.n - 1} on {n_tiles} tiles */",
                f"    for (int32_t t = 0; t < {n_tiles}; ++t) {{",
                row,
                "        /* patch: copy the input tile in */",
                f"        {first}",
                *("    " + line for line in body),
                "        /* patch: copy the output tile out */",
                f"        {last}",
                "    }",
            ]
            body = em.body
    em.wide_kps = m.wide_kps
    em.looped_kps = m.looped_kps
    em.pair_kps = m.pair_kps
    return m.needs, m.inplace


def _emit_reference(g: Graph, plan: MemoryPlan, em: _Emitter) -> None:
    """Emit calls to the TF-Lite Micro style reference kernels (run-time shapes in structs)."""
    for i, op in enumerate(g.ops):
        out = g.tensors[op.outputs[0]]
        lo, hi = activation_range(op.options.get("activation", "none"), out.s, out.zp)
        em.body.append(f"    /* {i}: {op.kind} {op.name} */")
        spec = OPS.get(op.kind)
        if spec is None:
            raise UnsupportedOperatorError(f"the C code generator has no {op.kind!r} kernel")
        spec.emit_reference(ReferenceOp(g, plan, em, i, op, lo, hi))


def generate(
    g: Graph,
    out_dir: str | Path,
    options: CodegenOptions = CodegenOptions(),  # noqa: B008 (frozen: a safe default)
) -> CProject:
    """Write a self-contained C project computing ``g`` into ``out_dir``.

    Args:
        g: a validated int8 graph with one input and one output.
        out_dir: the project directory (created; generated files are overwritten).
        options: kernel flavour and optimisation switches.

    Returns:
        The :class:`CProject` (files, arena / scratch / weight bytes, the plan).

    Raises:
        UnsupportedOperatorError: an operator has no C kernel (depthwise with depth multiplier != 1).
    """
    g.validate()
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise ValueError("the code generator handles graphs with one input and one output")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    code_graph, plan = _plan(g, options)
    activation_bytes = _align(plan.arena_bytes, 8)
    em = _Emitter()
    inplace: list[str] = []
    placement: dict[int, tuple[int, int]] = {}
    files = list(COMMON_FILES)
    if options.kernels == "reference":
        files += REFERENCE_FILES
        _emit_reference(code_graph, plan, em)
        scratch = 0
        config = ['#include "kernels_ref.h"', '#include "softmax.h"']
    else:
        files += SPECIALIZED_FILES
        # a dry run sizes the scratch without te_conv1x1_wc and the two-pixel code; the first
        # then uses up to that much
        base_needs, _ = _emit_specialized(code_graph, plan, options, _Emitter(), 0)
        base_scratch = _align(max(base_needs.values(), default=0), 8)
        allow = {
            # per layer (the latency build) te_conv1x1_wc may take up to cache_scratch and
            # every eligible convolution runs two pixels per pass; patch by patch (the memory
            # build) both stay within the scratch the model needs anyway; the weight cache
            # (and patch by patch the pairs) only take room no tensor alive then uses
            "wc_scratch": base_scratch
            if options.patch_ops
            else max(base_scratch, options.cache_scratch),
            "pair_scratch": base_scratch if options.patch_ops else None,
            "room": {i: largest_gap(plan, i, activation_bytes) for i in range(len(code_graph.ops))},
        }
        # the kernels' choices do not depend on where their scratch is: size it, place each
        # operator's scratch in a gap of the arena, then emit with those offsets
        needs, _ = _emit_specialized(
            code_graph, plan, options, _Emitter(), activation_bytes, **allow
        )
        scratch_at = place_scratch(plan, needs)
        placed, inplace = _emit_specialized(
            code_graph, plan, options, em, activation_bytes, scratch_at=scratch_at, **allow
        )
        if placed != needs:  # pragma: no cover - a kernel choice that depends on the offset
            raise AssertionError("the operators' scratch changed with its placement")
        placement = {i: (scratch_at[i], n) for i, n in needs.items() if n > 0}
        scratch = max([0, *(off + n - activation_bytes for off, n in placement.values())])
        taps = [
            int(np.prod(code_graph.tensors[op.inputs[1]].shape[1:3]))
            for op in code_graph.ops
            if op.kind == "depthwise_conv2d"
        ]
        config = [
            f"#define TE_SPECIALIZE {int(options.specialize)}",
            f"#define TE_SIMD {int(options.simd)}",
            f"#define TE_UNROLL {int(options.unroll)}",
            f"#define TE_DW_MAX_TAPS {max([49, *taps])}",
            '#include "kernels_te.h"',
            '#include "softmax.h"',
        ]
        (out_dir / "te_dw_unrolled.h").write_text(_dw_unrolled_header())
        (out_dir / "te_wide.h").write_text(_wide_header(em.wide_kps, em.looped_kps, em.pair_kps))
        (out_dir / "te_dwk.h").write_text(_dwk_header())
    for name in files:
        shutil.copyfile(CSRC / name, out_dir / name)
    scratch = _align(scratch, 8)
    arena = activation_bytes + scratch
    x_t, y_t = code_graph.tensors[g.inputs[0]], code_graph.tensors[g.outputs[0]]
    stream_decl = ""
    if options.stream_input:
        _, ih, iw, ic = x_t.shape
        stream_decl = f"""/* Streamed input (patch-based inference): the frame is not in the arena. The caller
 * provides model_read_input, which copies rows [y0, y0 + rows) x columns [x0, x0 + cols) of
 * the int8 NHWC frame (MODEL_INPUT_H x MODEL_INPUT_W x MODEL_INPUT_C) to dst, row after row. */
#define MODEL_STREAMS_INPUT 1
#define MODEL_INPUT_H {ih}
#define MODEL_INPUT_W {iw}
#define MODEL_INPUT_C {ic}
void model_read_input(int8_t *dst, int32_t y0, int32_t x0, int32_t rows, int32_t cols);

"""

    header = f"""\
/* Generated model interface ({options.kernels} kernels). */
#ifndef MODEL_H
#define MODEL_H

#include <stdint.h>

#define MODEL_INPUT_BYTES {x_t.nbytes}
#define MODEL_OUTPUT_BYTES {y_t.nbytes}
#define MODEL_ARENA_BYTES {max(arena, 8)}
#define MODEL_ACTIVATION_BYTES {activation_bytes}
#define MODEL_SCRATCH_BYTES {scratch}

{stream_decl}/* Where the caller writes the int8 input (NHWC), inside the arena (NULL when streamed). */
int8_t *model_input(void);
/* Where the int8 output is after model_invoke(). */
const int8_t *model_output(void);
/* Run the network once. */
void model_invoke(void);

#endif /* MODEL_H */
"""
    (out_dir / "model.h").write_text(header)
    source = "\n".join(
        [
            f"/* Generated model: {len(code_graph.ops)} operators, {options}. */",
            *config,
            '#include "model.h"',
            "",
            *em.consts,
            "",
            "static int8_t arena[MODEL_ARENA_BYTES] __attribute__((aligned(8)));",
            "",
            "int8_t *model_input(void) { return (int8_t *)0; }"
            if options.stream_input
            else f"int8_t *model_input(void) {{ return arena + {plan.offset(g.inputs[0])}; }}",
            "",
            f"const int8_t *model_output(void) {{ return arena + {plan.offset(g.outputs[0])}; }}",
            "",
            *(f + "\n" for f in em.funcs),
            "void model_invoke(void) {",
            *em.body,
            "}",
            "",
        ]
    )
    (out_dir / "model.c").write_text(source)
    (out_dir / "Makefile").write_text(MAKEFILE)
    sources = sorted(p for p in out_dir.glob("*.c"))
    headers = sorted(p for p in out_dir.glob("*.h"))
    return CProject(
        out_dir=out_dir,
        sources=sources,
        headers=headers,
        options=options,
        graph=code_graph,
        plan=plan,
        arena_bytes=max(arena, 8),
        activation_bytes=activation_bytes,
        scratch_bytes=scratch,
        weight_bytes=em.weight_bytes,
        input_bytes=x_t.nbytes,
        output_bytes=y_t.nbytes,
        inplace_ops=inplace,
        channel_bytes=em.channel_bytes,
        scratch_placement=placement,
    )
