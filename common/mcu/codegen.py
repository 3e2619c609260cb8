"""C code generation for int8 graphs: a TinyEngine-style generator and a TF-Lite Micro baseline.

:func:`generate` writes a self-contained, freestanding C project for one :class:`~common.mcu.graph.Graph`:

* ``model.h`` / ``model.c``: the contract with any runner. ``model.h`` defines
  ``MODEL_INPUT_BYTES``, ``MODEL_OUTPUT_BYTES``, ``MODEL_ARENA_BYTES`` and declares
  ``model_input()`` (where the caller writes the input, inside the arena), ``model_output()`` and
  ``model_invoke()``. ``model.c`` holds weights, biases and per-channel requantization multipliers
  and shifts as ``static const`` arrays (flash), one 8-byte aligned static arena holding every
  activation at its memory-plan offset plus the kernels' scratch, and the operator sequence.
* kernel sources (``kernels_ref.c/.h``, ``kernels_te.h``, ``te_common.h``, ``arm_simd.h`` and the
  generated ``te_dw_unrolled.h``): only ``<stdint.h>``/``<stddef.h>``, no libc calls, no floating
  point; everything numeric is precomputed here in Python.
* ``main_host.c`` (stdin -> model -> stdout harness, the only file using libc) and a ``Makefile``.

Every kernel is bit-exact with :func:`common.mcu.reference.run` (TF-Lite integer semantics).

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
  compiler emits per-layer code with static loop bounds.
* **fused padding** (``fuse_pad``): PAD + VALID convolution becomes one convolution with explicit
  padding (:func:`~common.mcu.graph.fuse_pad`); no padded copy is ever materialised.
* **fused max pool** (``fuse_pool``): a non-overlapping VALID max pool after a convolution with
  per-channel code (LeNet-5's 2x2 / 2) becomes part of it (:func:`~common.mcu.graph.fuse_pool`):
  each pooled pixel is the byte-wise maximum (``SSUB8`` + ``SEL``) of its window's convolution
  pixels, computed one after the other, so the full-size map is never stored.
* **1x1 convolution without im2col**: a 1x1 stride-1 convolution is a GEMM over the input pixels
  read in place; other convolutions gather two pixels at a time into a small im2col buffer.
  Both compute a 2-pixel x 2-output-channel register block.
* **SIMD** (``simd``): ``SXTB16`` splits four int8 values into two halfword pairs, ``SMLAD`` does
  two MACs per instruction (``arm_simd.h``; bit-identical portable C on the host). Convolutions
  and FC layers widen each pixel's K values to int16 once (in SXTB16 order, two pixels side by
  side) and store the weights of each output-channel pair interleaved, K padded to a multiple of
  4, so one ``LDRD`` fetches a group for both pixels or both channels: the inner loop is 15
  instructions per 16 MACs (written out in inline assembly, as GCC splits the loads otherwise).
  5x5 and 7x7 depthwise windows take a row's taps four at a time with ``SMLAD`` as well.
* **input offset folding** (``fold_offset``): for convolutions and fully connected layers the
  input zero point's contribution ``-zp * sum(w)`` is folded into the bias (im2col pads with the
  zero point, which then contributes exactly zero), removing the per-MAC offset add; without it the
  offset is added to pairs with ``SADD16``.
* **in-place depthwise** (``inplace``): the output overwrites the input channel by channel (each
  channel is first copied into a zero-padded plane in scratch), and ADD writes into a dying
  operand, as planned by :func:`~common.mcu.memory.plan_tinyengine`; RESHAPE is a view.
* **depthwise on a padded channel plane**: every depthwise layer gathers one channel at a time into
  a ``PH x PW`` plane bordered with the input zero point, so no tap is bounds-checked; with
  ``unroll`` the 3x3/5x5/7x7 taps are fully unrolled (offset term precomputed per channel), and
  with ``simd`` as well a 3x3 window uses SMLAD on tap pairs (two outputs at a time for stride 1).
* fused requantization + activation clamp in every kernel's epilogue; where it is provably exact
  (right shift >= 1, ``|acc| < 2^30`` from the weights and bias, no int32 overflow) a short
  SMMLAR-based sequence (``te_output_fast``, per-channel ``{multiplier, e, r}`` arrays) replaces
  the 64-bit MultiplyByQuantizedMultiplier; ADD rescales its inputs the same way when their shifts
  allow it.

* **per-channel code** (``per_channel``, ``channel_flash``): for convolutions (1x1, and
  im2col windows such as the stem) each output channel's weights are stored pre-widened to int16
  (times two) in one record with 2 * bias and its requantization constants; the pixel is widened
  once and each channel is one or a few LDMs, SMLADs and a three-instruction requantization
  (the factor two of ``te_output_fast`` is in the weights). Unrolled over the channels with the
  shift as a literal SSAT operand (K <= 8: the pixel held in registers), or looped with the shift
  in the record; each layer takes the option that saves the most estimated instructions per
  byte of flash, within ``channel_flash`` extra bytes (deploy shrinks it when an image would
  overflow the target's flash). Each operator is its own ``noipa`` function, so the compiler
  allocates registers per layer.
* **two pixels per pass** (``pixel_pairs``): for convolutions with a gathered window (kernel
  larger than 1x1, K > 8) the unrolled per-channel code widens two output pixels into one
  interleaved buffer, so each LDM of four weight words serves both: LDM + 2 LDM + 8 SMLAD per
  16 MACs (TE_WIDE2_CH, generated into ``te_wide.h``), where the two pixels fit in the scratch
  the model needs anyway.
* **depthwise on int16 row rings** (``dw_rows``): rows of the padded channel plane are widened
  to int16 once (LDRSB/STRH) into a small ring instead of a whole int8 plane; LDRD fetches two
  value pairs and SMLAD / SMLATB / SMLABT against (w0, w1) and (w1, w2) pairs compute two
  outputs per window row; 3x3 stride 1 runs two output rows at a time as one asm loop with the
  requantization and the stores (literal extents), stride 2 and 5x5 / 7x7 (generated
  ``te_dwk.h``) a whole output row; te_dw3_ring's bias comes with ``off * sum(w)`` folded in.
* **valid-tap depthwise on tiny planes** (``dw_small``): for small output planes each channel is
  widened to int16 with the input offset added, so taps in the padding are skipped instead of
  multiplied by zero (te_dw_small; per-column tap ranges are literals, SMLAD on weight pairs).
* **weight-cached 1x1 GEMM** (``gemm_cache``): a block of pixels is widened once, and each
  output-channel pair's weights are widened once per block (LDRD, SXTB16 x4, STM), so the inner
  loop is LDM + 2 LDRD + 8 SMLAD per 16 MACs.
* **patch-based inference** (``patch_ops``, ``patches``; MCUNetV2): the first operators run
  inside a loop over a ``p x p`` grid of tiles of the stage output. Each tile's regions come
  from the receptive field (:func:`~common.mcu.memory.patch_regions`); the input frame's tile is
  copied into a tile buffer, each operator runs the same kernels on tile buffers with the tile's
  own extents and paddings (a per-tile table; values equal for all tiles stay literals), an ADD
  whose operands carry a halo runs row by row, and the output tile is copied into the whole
  stage output. The rest runs per layer. :func:`best_patch_split` picks the split.
* **streamed input** (``stream_input``, with patches; MCUNetV2's analytic convention): the input
  frame is not held in the arena; each tile's input region is requested from the caller
  (``model_read_input``: a camera or sensor interface that delivers rows of a window, here the
  host harness or a semihosting call under emulation), so the patch stage holds only tiles.

The arena is the real SRAM for activations: ``MODEL_ARENA_BYTES`` = the plan's activation bytes
(8-byte aligned) + the scratch (the largest im2col buffer with the widened int16 rows, or padded
depthwise channel plane).
"""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.mcu.graph import (
    Graph,
    Op,
    UnsupportedOperatorError,
    fuse_pad,
    fuse_pool,
    resolve_padding,
)
from common.mcu.memory import (
    Buffer,
    MemoryPlan,
    Region,
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
from common.mcu.quant import activation_range, quantize_multiplier, softmax_params
from common.mcu.reference import requant_params

CSRC = Path(__file__).with_name("csrc")
COMMON_FILES = ("arm_simd.h", "te_common.h", "softmax.h", "main_host.c")
REFERENCE_FILES = ("kernels_ref.h", "kernels_ref.c")
SPECIALIZED_FILES = ("kernels_te.h",)
HOST_CFLAGS = ("-std=c99", "-Wall", "-Wextra")
# The host build is a checking harness (integer C: every -O level gives the same outputs); -O1
# compiles the large specialized models in half the time of -O2 and runs nearly as fast.
HOST_OPT = "-O1"
ARM_CFLAGS = (
    "-mcpu=cortex-m7",
    "-mthumb",
    "-mfpu=fpv5-d16",
    "-mfloat-abi=hard",
    "-ffreestanding",
    "-std=c99",
    "-Wall",
    "-Wextra",
)
UNROLLED_DW = (3, 5, 7)
MAX_CHANNEL_KP = 2040  # per-channel code: the pixel's words within LDR's reach
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class CodegenOptions:
    """What the generator emits; every TinyEngine optimisation can be switched off for ablations.

    Attributes:
        kernels: ``"specialized"`` (TinyEngine-style) or ``"reference"`` (TF-Lite Micro's
            portable kernels, PAD kept, TFLM memory plan). The other switches only affect
            specialized code.
        simd: SXTB16/SMLAD dual-MAC inner products for convolutions and fully connected layers.
        unroll: fully unrolled 3x3/5x5/7x7 depthwise taps (with ``simd``: SMLAD 3x3 taps).
        inplace: in-place depthwise and ADD, RESHAPE as a view (``plan_tinyengine``); ``False``
            gives every tensor its own buffer (reshape copies).
        specialize: shapes as compile-time constants (kernels forced inline at each layer);
            ``False`` compiles each kernel once with run-time arguments.
        fuse_pad: fold PAD into the following VALID convolution.
        fold_offset: fold the input zero point's contribution into convolution / FC biases.
        per_channel: per-output-channel code for convolutions (needs ``simd``): the pixel (1x1
            input or gathered im2col window) is widened to int16 once, and each output channel
            is LDMs of a record holding its weights pre-widened to int16 (times two), 2 * bias
            and the requantization constants, SMLADs and a three-instruction requantization;
            unrolled over the channels (the shift a literal; for K <= 8 the pixel stays in
            registers) or looped (the shift in the record), chosen per layer by estimated
            instructions saved per byte of flash within ``channel_flash``.
        channel_flash: the flash (bytes) the per-channel code may add over the int8 GEMM (by the
            generator's estimate, ``CProject.channel_bytes``).
        dw_rows: depthwise on rings of int16-widened rows instead of the int8 padded plane:
            3x3 (four rows; LDRD + SMLAD, two output rows at a time for stride 1, a whole row
            per asm loop for stride 2) and 5x5 / 7x7 (generated asm row loops), where the
            output width (and for 3x3 stride 1 the height) is even.
        add_table: ADD (fast path) looks each input's rescaled value up in a 256-entry table
            per input (it is a function of the int8 value) instead of computing it.
        gemm_cache: 1x1 GEMMs widen each output-channel pair's weights to int16 once per block
            of pixels (te_conv1x1_wc, 11 instead of 15 instructions per 16 MACs): per layer (the
            latency build) within ``cache_scratch`` bytes or the scratch the other layers need
            anyway, whichever is larger; patch by patch (the memory build) within the latter.
        cache_scratch: the scratch (bytes) te_conv1x1_wc's pixel blocks may take per layer:
            larger blocks widen each weight pair for more pixels. The default, 8 kB, is 2.5% of
            the STM32F746's SRAM.
        dw_small: depthwise layers with a tiny output plane (at most 8 columns, where the
            estimate wins) compute only the taps inside the image (te_dw_small: the channel
            widened to int16 with the input offset added, constant per-column tap ranges,
            SMLAD / SMLABB / SMLATT on weight pairs taken by SXTB16 from reordered int8 rows).
        pixel_pairs: the unrolled per-channel code of convolutions with a gathered window
            (kernel larger than 1x1) runs two output pixels per pass over the records
            (TE_WIDE2_CH: one LDM of four weight words serves both pixels, 11 instructions per
            16 MACs instead of 14): per layer everywhere, patch by patch (the memory build) only
            where the two widened pixels fit in the scratch the model needs anyway.
        fuse_pool: fold a non-overlapping VALID max pool into the convolution that feeds it
            (:func:`~common.mcu.graph.fuse_pool`), where that convolution runs per-channel code:
            each pooled pixel is the maximum of its window's convolution pixels, computed one
            after the other, so the unpooled tensor is never stored (LeNet-5's 24x24x20).
        patch_ops: MCUNetV2 patch-based inference: the first ``patch_ops`` operators of the
            PAD-fused graph run tile by tile on a ``patches x patches`` grid of the stage
            output (0: every operator runs on whole tensors). Needs ``fuse_pad``.
        patches: the grid size of the patch stage.
        stream_input: with ``patch_ops``, the input frame stays outside the arena and each
            tile's input region is read through ``model_read_input`` (``model.h``), which the
            caller provides; ``model_input()`` then returns NULL.
    """

    kernels: str = "specialized"
    simd: bool = True
    unroll: bool = True
    inplace: bool = True
    specialize: bool = True
    fuse_pad: bool = True
    fold_offset: bool = True
    per_channel: bool = True
    channel_flash: int = 192 * 1024
    dw_rows: bool = True
    gemm_cache: bool = True
    cache_scratch: int = 8 * 1024
    add_table: bool = True
    dw_small: bool = True
    pixel_pairs: bool = True
    fuse_pool: bool = True
    patch_ops: int = 0
    patches: int = 1
    stream_input: bool = False

    def __post_init__(self) -> None:
        if self.kernels not in ("specialized", "reference"):
            raise ValueError(f"kernels must be 'specialized' or 'reference', not {self.kernels!r}")
        if self.cache_scratch < 0:
            raise ValueError("cache_scratch must be >= 0")
        if self.patch_ops < 0 or self.patches < 1:
            raise ValueError("patch_ops must be >= 0 and patches >= 1")
        if self.stream_input and not self.patch_ops:
            raise ValueError("stream_input needs patch-based inference (patch_ops > 0)")
        if self.patch_ops and (self.kernels != "specialized" or not self.fuse_pad):
            raise ValueError("patch-based inference needs specialized kernels with fuse_pad")


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
        scratch_bytes: kernel scratch (im2col columns, padded depthwise channel plane).
        weight_bytes: bytes of ``static const`` data (weights, biases, requantization params).
        input_bytes: ``MODEL_INPUT_BYTES``.
        output_bytes: ``MODEL_OUTPUT_BYTES``.
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

    @property
    def mcu_sources(self) -> list[Path]:
        """The ``.c`` files an MCU build compiles (all but the host harness)."""
        return [p for p in self.sources if p.name != "main_host.c"]


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def _cident(name: str) -> str:
    out = "".join(ch if ch.isalnum() else "_" for ch in name)
    return out if out and not out[0].isdigit() else f"t_{out}"


class _Emitter:
    """Accumulates ``static const`` arrays and ``model_invoke`` statements."""

    def __init__(self) -> None:
        self.consts: list[str] = []
        self.body: list[str] = []
        self.weight_bytes = 0
        self.wide_kps: list[int] = []  # record lengths of the wide per-channel code
        self.looped_kps: list[int] = []  # and of its looped variant
        self.pair_kps: list[int] = []  # and of its two-pixel variant
        self.channel_bytes = 0  # estimated flash of the per-channel code over the GEMM
        self.funcs: list[str] = []  # one function per operator (specialized code)

    def array(self, name: str, ctype: str, values: np.ndarray) -> str:
        flat = np.asarray(values).reshape(-1)
        size = {"int8_t": 1, "int32_t": 4}[ctype]
        lo, hi = (-128, 127) if ctype == "int8_t" else (INT32_MIN, INT32_MAX)
        if flat.size and (flat.min() < lo or flat.max() > hi):
            raise ValueError(f"{name}: values do not fit {ctype}")
        self.weight_bytes += flat.size * size
        items = [str(int(v)) for v in flat.tolist()] or ["0"]
        if ctype == "int32_t":  # INT32_MIN cannot be written as a literal
            items = [f"(-{INT32_MAX} - 1)" if v == str(INT32_MIN) else v for v in items]
        lines = [", ".join(items[i : i + 24]) for i in range(0, len(items), 24)]
        self.consts.append(
            f"static const {ctype} {name}[{max(flat.size, 1)}] __attribute__((aligned(8))) = {{\n    "
            + ",\n    ".join(lines)
            + "\n};"
        )
        return name


def _requant(g: Graph, op: Op, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    inp, w, out = (g.tensors[n] for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    mult, shift = requant_params(inp.s, w.scale, out.s)
    return np.broadcast_to(mult, (n_out,)), np.broadcast_to(shift, (n_out,))


def _fast_requant(
    mult: np.ndarray, shift: np.ndarray, out_zp: int, acc_bound: np.ndarray
) -> np.ndarray | None:
    """Per-channel ``{multiplier, e, r}`` for ``te_output_fast``, or None where it is not exact.

    ``te_output_fast`` computes ``h = SMMULR(2 * acc, mult)`` (exact only for ``|acc| < 2^30``),
    then ``(h - (h < 0) + r) >> e`` (as ``SMMLAR`` plus the sign of ``acc``) with
    ``e = -shift >= 1`` and ``r = 2^(e-1) + out_zp * 2^e`` (no int32 overflow allowed).
    ``acc_bound`` bounds ``|acc|`` per channel.
    """
    rows = []
    for m, s, bound in zip(mult.tolist(), shift.tolist(), acc_bound.tolist(), strict=True):
        e = -int(s)
        if m <= 0 or e < 1 or e > 31 or bound >= 1 << 30:
            return None
        r = (1 << (e - 1)) + out_zp * (1 << e)
        h_bound = (2 * bound * m + (1 << 31)) // (1 << 32) + 1
        if h_bound + 1 + abs(r) >= 1 << 31:
            return None
        rows.append((int(m), e, r))
    return np.asarray(rows, dtype=np.int64)


def _acc_bound(bias: np.ndarray, wsum_abs: np.ndarray, off: int) -> np.ndarray:
    """A bound on ``|bias + sum (x + off) * w|`` for int8 ``x``, per output channel."""
    xmax = max(abs(-128 + off), abs(127 + off))
    return np.abs(bias.astype(np.int64)) + xmax * wsum_abs.astype(np.int64)


def _padded_k(k: int, options: CodegenOptions) -> int:
    """GEMM row length: with SIMD, K rounded up to a multiple of 4 (zero weights pad it)."""
    return -(-k // 4) * 4 if options.simd else k


def _gemm_weights(w: np.ndarray, kp: int, options: CodegenOptions) -> np.ndarray:
    """Weight rows (out, K) zero-padded to (out, kp); with SIMD, in te_gemm16's layout: output
    channels in pairs (an odd last one with a zero row), each pair's rows interleaved by groups
    of four values."""
    rows = w.reshape(w.shape[0], -1)
    rows = np.pad(rows, ((0, 0), (0, kp - rows.shape[1])))
    if not options.simd:
        return rows
    rows = np.pad(rows, ((0, rows.shape[0] % 2), (0, 0)))
    return rows.reshape(-1, 2, kp // 4, 4).transpose(0, 2, 1, 3).reshape(-1)


def _gemm_scratch(kp: int, options: CodegenOptions, *, im2col: bool, rows: int = 2) -> int:
    """Scratch bytes of a convolution (two pixels at a time) or FC (``rows=1``): the im2col
    rows (when it gathers or pads), then the widened int16 rows (with SIMD)."""
    return (_align(rows * kp, 8) if im2col else 0) + (2 * rows * kp if options.simd else 0)


def _gemm_scratch_ptrs(
    kp: int, scratch_off: int, options: CodegenOptions, *, im2col: bool, rows: int = 2
) -> tuple[str, str]:
    """C expressions for the im2col buffer and the widened int16 rows (8-byte aligned)."""
    col = f"(arena + {scratch_off})" if im2col else "(int8_t *)0"
    if not options.simd:
        return col, "(int16_t *)0"
    col16 = scratch_off + (_align(rows * kp, 8) if im2col else 0)
    return col, f"(int16_t *)(void *)(arena + {col16})"


TILE = "@tile"  # suffix of the buffers holding one tile of a patch-stage tensor


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
    for op in g.ops[:n]:  # the kernels read whole tiles: no window may start inside one
        if op.kind != "add" and any(
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
            _, _, _, kp, rq = _conv_gemm_setup(graph, conv, options)
            return rq is not None and kp <= MAX_CHANNEL_KP

        out = fuse_pool(out, accept)
    return out


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


def _dw_unrolled_header() -> str:
    """Fully unrolled depthwise taps: sum of x[ky*row + kx*col] * w[ky*k + kx] for k in 3, 5, 7."""
    parts = [
        "/* Generated: fully unrolled depthwise taps (k x k window, NHWC: row = W*C, col = C). */",
        "#ifndef TE_DW_UNROLLED_H",
        "#define TE_DW_UNROLLED_H",
        "",
        "#include <stdint.h>",
    ]
    for k in UNROLLED_DW:
        parts += [
            "",
            f"static inline __attribute__((always_inline)) int32_t te_dw_taps_{k}("
            "const int8_t *x, const int32_t *w, int32_t row, int32_t col) {",
            "    int32_t acc = 0;",
        ]
        for ky in range(k):
            for kx in range(k):
                parts.append(f"    acc += x[{ky} * row + {kx} * col] * w[{ky * k + kx}];")
        parts += ["    return acc;", "}"]
    parts += ["", "#endif /* TE_DW_UNROLLED_H */", ""]
    return "\n".join(parts)


_W_REGS = ("r4", "r5", "r6", "r8")  # LDM targets: a chunk's weights, then r9 = 2 * bias,
_A_REG, _M_REG, _R_REG = "r9", "r10", "r11"  # r10, r11 = multiplier, rounding constant,
_E_REG = "r12"  # and the shift of the looped per-channel code


def _wide_chunks(kp: int) -> list[int]:
    """Words per chunk of a wide record: fours, then a two for a KP that is 4 mod 8."""
    words = kp // 2
    return [4] * (words // 4) + ([2] if words % 4 else [])


def _wide_instructions(kp: int) -> int:
    """Instructions per output channel of the per-channel code (MACs, requantization, store)."""
    if kp <= 8:
        return kp // 2 + 5
    return sum(1 + 3 * (c // 2) for c in _wide_chunks(kp)) + 4


def _wide_macro(kp: int, looped: bool = False) -> str:
    """``TE_WIDE_CH_<kp>(E, lo, hi)``: one output channel of the wide per-channel code, or with
    ``looped`` ``TE_WIDEL_CH_<kp>(lo, hi)``: the shift comes last in the record (one more word
    fetched by the last LDM, one ASR), so a loop over the channels can run it."""
    chunks = _wide_chunks(kp)
    names = ["w0", "w1", "w2", "w3"]
    asm = []
    off = 0
    for i, size in enumerate(chunks):
        regs = [f"%[{n}]" for n in names[:size]]
        if i == 0:
            regs.append("%[a]")
        if i == len(chunks) - 1:
            regs += ["%[m]", "%[r]"] + (["%[e]"] if looped else [])
        asm.append(f"ldmia %[pw]!, {{{', '.join(regs)}}}")
        for j in range(0, size, 2):
            if 4 * off <= 1020:  # LDRD's reach; LDR reaches 4095
                asm.append(f"ldrd %[x0], %[x1], [%[px], #{4 * off}]")
            else:
                asm += [f"ldr %[x0], [%[px], #{4 * off}]", f"ldr %[x1], [%[px], #{4 * off + 4}]"]
            asm += [
                f"smlad %[a], %[x0], %[{names[j]}], %[a]",
                f"smlad %[a], %[x1], %[{names[j + 1]}], %[a]",
            ]
            off += 2
    asm += ["smmlar %[m], %[a], %[m], %[r]", "add %[m], %[m], %[a], asr #31"]
    if looped:
        asm += ["asr %[m], %[m], %[e]", "ssat %[m], #8, %[m]"]
    else:
        asm += ["ssat %[m], #8, %[m], asr %[e]"]
    pinned = [("uint32_t", n, r) for n, r in zip(names, _W_REGS, strict=True)]
    pinned += [("int32_t", "a", _A_REG), ("int32_t", "m", _M_REG), ("int32_t", "r", _R_REG)]
    if looped:
        pinned.append(("int32_t", "e", _E_REG))
    outputs_e = ', [e] "=&r"(e_)' if looped else ""
    inputs_e = "" if looped else ', [e] "i"(E)'
    return _asm_define(
        f"TE_WIDEL_CH_{kp}(lo, hi)" if looped else f"TE_WIDE_CH_{kp}(E, lo, hi)",
        pinned,
        ["uint32_t x0_, x1_;"],
        asm,
        [
            ': [pw] "+r"(pw), [w0] "=&r"(w0_), [w1] "=&r"(w1_), [w2] "=&r"(w2_),',
            '  [w3] "=&r"(w3_), [a] "=&r"(a_), [m] "=&r"(m_), [r] "=&r"(r_),',
            f'  [x0] "=&r"(x0_), [x1] "=&r"(x1_){outputs_e}',
            f': [px] "r"(px){inputs_e}',
            ': "memory");',
            "(void)w0_, (void)w1_, (void)w2_, (void)w3_, (void)r_, (void)x0_, (void)x1_;",
            *(["(void)e_;"] if looped else []),
            "TE_NARROW_STORE(m_, lo, hi);",
        ],
    )


_X_REGS = ("r0", "r1", "r2", "r3")  # the two-pixel code's LDM targets: two words of each pixel
_B_REG = "r10"  # and its second accumulator
_PW_REG, _Q_REG = "r11", "r12"  # and its record and pixel pointers


def _wide2_instructions(kp: int) -> int:
    """Instructions per two outputs (one channel, two pixels) of the two-pixel code: per chunk
    one LDM of the weights and per two words one LDM of the pixels and four SMLAD; the copy of
    the bias, the LDM of the requantization constants, two requantizations, two stores and the
    pixel pointer's reset."""
    return sum(1 + 5 * (c // 2) for c in _wide_chunks(kp)) + 11


def _wide2_macro(kp: int) -> str:
    """``TE_WIDE2_CH_<kp>(E, lo, hi)``: one output channel of the wide per-channel code for two
    pixels at once (``px`` interleaved by te_widen_px2), the outputs stored through ``o`` and
    ``o2``. The record is the one-pixel code's."""
    chunks = _wide_chunks(kp)
    names = ["w0", "w1", "w2", "w3"]
    asm = []
    for i, size in enumerate(chunks):
        regs = [f"%[{n}]" for n in names[:size]] + (["%[a]"] if i == 0 else [])
        asm.append(f"ldmia %[pw]!, {{{', '.join(regs)}}}")
        if i == 0:
            asm.append("mov %[b], %[a]")
        for j in range(0, size, 2):
            asm += [
                "ldmia %[q]!, {%[x0], %[x1], %[x2], %[x3]}",
                f"smlad %[a], %[x0], %[{names[j]}], %[a]",
                f"smlad %[a], %[x1], %[{names[j + 1]}], %[a]",
                f"smlad %[b], %[x2], %[{names[j]}], %[b]",
                f"smlad %[b], %[x3], %[{names[j + 1]}], %[b]",
            ]
    asm.append("ldmia %[pw]!, {%[x0], %[x1]}")  # multiplier, rounding constant
    for acc, y in (("a", "x2"), ("b", "x3")):
        asm += [
            f"smmlar %[{y}], %[{acc}], %[x0], %[x1]",
            f"add %[{y}], %[{y}], %[{acc}], asr #31",
            f"ssat %[{y}], #8, %[{y}], asr %[e]",
        ]
    return _asm_define(
        f"TE_WIDE2_CH_{kp}(E, lo, hi)",
        [
            *(("uint32_t", n, r) for n, r in zip(names, _W_REGS, strict=True)),
            *(("int32_t", f"x{j}", r) for j, r in enumerate(_X_REGS)),
            ("int32_t", "a", _A_REG),
            ("int32_t", "b", _B_REG),
            # the pointers pinned too: with ten registers pinned GCC may find no two others
            # for them (seen with arena offsets past 4095, which take a register to form)
            ("const uint32_t *", "q", _Q_REG, "px"),
            ("const uint32_t *", "pw", _PW_REG, "pw"),
        ],
        [],
        asm,
        [
            ': [pw] "+r"(pw_), [q] "+r"(q_), [w0] "=&r"(w0_), [w1] "=&r"(w1_),',
            '  [w2] "=&r"(w2_), [w3] "=&r"(w3_), [a] "=&r"(a_), [b] "=&r"(b_),',
            '  [x0] "=&r"(x0_), [x1] "=&r"(x1_), [x2] "=&r"(x2_), [x3] "=&r"(x3_)',
            ': [e] "i"(E)',
            ': "memory");',
            "(void)w0_, (void)w1_, (void)w2_, (void)w3_, (void)a_, (void)b_, (void)q_;",
            "(void)x0_, (void)x1_;",
            "pw = pw_;",
            "TE_PAIR_STORE(x2_, x3_, lo, hi);",
        ],
    )


_DWK_REGS = ("r4", "r5", "r6", "r8", "r9", "r10")  # a window row's weight pairs (LDM targets)


def _dwk_macro(k: int, s: int) -> str:
    """``TE_DWK_ROW_<k>_<s>(RW2)``: one output row of a k x k depthwise layer (stride s) on
    int16 ring rows, two outputs per iteration, as one asm loop (see te_dwk_ring).

    Per window row: one LDM of its k - 1 weight pairs u_j = (w_2j, w_2j+1), v_j = (w_2j+1, w_2j+2),
    LDRD / LDR of the row's words D_j = (x_2j, x_2j+1), and k + 1 MACs: output 0 is
    sum_j SMLAD(D_j, u_j) + SMLABT(D_h, v_h-1) (h = (k - 1) / 2); output 1 is
    SMLATB(D_0, u_0) + sum_j SMLAD(D_j, v_j-1) for stride 1 and output 0's terms on the words one
    further for stride 2. Then the fast requantization, the clamps and post-indexed stores."""
    h = (k - 1) // 2
    nw = h + 1 if s == 1 else h + 2  # data words per window row
    u = [f"%[w{j}]" for j in range(h)]
    v = [f"%[w{h + j}]" for j in range(h)]
    ops0 = [(j, "smlad", u[j]) for j in range(h)] + [(h, "smlabt", v[h - 1])]
    if s == 1:
        ops1 = [(0, "smlatb", u[0])] + [(j, "smlad", v[j - 1]) for j in range(1, h + 1)]
    else:
        ops1 = [(j + 1, "smlad", u[j]) for j in range(h)] + [(h + 1, "smlabt", v[h - 1])]
    regs = ", ".join(f"%[w{j}]" for j in range(k - 1))
    asm = ["1:", "ldr %[a0], [%[wp], #%c[boff]]"]
    for row in range(k):
        asm.append(f"ldmia %[wp]!, {{{regs}}}")
        for pair in range(0, nw, 2):
            words = [pair] if pair + 1 >= nw else [pair, pair + 1]
            off = f"%c[rw2] * {row} + {4 * pair}"
            if len(words) == 2:  # LDRD reaches 1020 bytes, LDR 4095
                asm += [
                    f".if ({off}) <= 1020",
                    f"ldrd %[x], %[y], [%[p], #({off})]",
                    ".else",
                    f"ldr %[x], [%[p], #({off})]",
                    f"ldr %[y], [%[p], #({off} + 4)]",
                    ".endif",
                ]
            else:
                asm.append(f"ldr %[x], [%[p], #({off})]")
            todo = [("a1", *o) for o in ops1 if o[0] in words]
            todo = [("a0", *o) for o in ops0 if o[0] in words] + todo
            if row == 0 and pair == 0:  # output 1 starts from the base, before output 0 moves
                first = next(t for t in todo if t[0] == "a1")
                todo.remove(first)
                reg = "%[x]" if first[1] == pair else "%[y]"
                asm.append(f"{first[2]} %[a1], {reg}, {first[3]}, %[a0]")
            for acc, word, op, w in todo:
                reg = "%[x]" if word == pair else "%[y]"
                asm.append(f"{op} %[{acc}], {reg}, {w}, %[{acc}]")
    asm.append(f"sub %[wp], %[wp], #{4 * k * (k - 1)}")
    asm += ["ldrd %[x], %[y], [%[wp], #%c[moff]]", "ldr %[w0], [%[wp], #%c[roff]]"]
    for acc in ("a0", "a1"):
        # post-indexed STRB reaches 255 bytes; a wider channel stride stores at an offset
        store = (
            [".if %c[c] <= 255", "strb %[w1], [%[o]], %[c]", ".else", "strb %[w1], [%[o]]"]
            if acc == "a0"
            else [
                ".if %c[c] <= 255",
                "strb %[w1], [%[o]], %[c]",
                ".else",
                "strb %[w1], [%[o], %[c]]",
                "addw %[o], %[o], #(2 * %c[c])",
            ]
        )
        asm += [
            *_requant_clamp("%[w1]", f"%[{acc}]", "%[x]", "%[y]", "%[w0]"),
            *store,
            ".endif",
        ]
    asm += [f"adds %[p], %[p], #{4 if s == 1 else 8}", "cmp %[p], %[pend]", "bne 1b"]
    outs = ", ".join(f'[w{j}] "=&r"(w{j}_)' for j in range(k - 1))
    voids = ", ".join(f"(void)w{j}_" for j in range(k - 1))
    base = k * (k - 1)
    return _asm_define(
        f"TE_DWK_ROW_{k}_{s}(RW2)",
        [("uint32_t", f"w{j}", _DWK_REGS[j]) for j in range(k - 1)],
        ["int32_t a0_, a1_;", "uint32_t x_, y_;", "const uint32_t *wq_ = wv;"],
        asm,
        [
            ': [p] "+r"(p), [o] "+r"(o0), [wp] "+r"(wq_), [a0] "=&r"(a0_),',
            f'  [a1] "=&r"(a1_), [x] "=&r"(x_), [y] "=&r"(y_), {outs}',
            ': [pend] "r"(pend), [rw2] "i"(RW2), [c] "i"(C), [lo] "i"(lo),',
            f'  [hi] "i"(hi), [boff] "i"({4 * base}), [moff] "i"({4 * (base + 1)}),',
            f'  [roff] "i"({4 * (base + 3)})',
            ': "cc", "memory");',
            f"(void)a0_, (void)a1_, (void)x_, (void)y_, {voids};",
        ],
    )


def _requant_clamp(dst: str, acc: str, mult: str, shift: str, rnd: str) -> list[str]:
    """The fast requantization of ``acc`` into ``dst`` (SMMLAR, ADD of the sign, ASR, SSAT)
    and the activation clamps, for an asm block with ``lo``/``hi`` immediates."""
    return [
        f"smmlar {dst}, {acc}, {mult}, {rnd}",
        f"add {dst}, {dst}, {acc}, asr #31",
        f"asr {dst}, {dst}, {shift}",
        f"ssat {dst}, #8, {dst}",
        ".if %c[lo] > -128",
        f"cmp {dst}, #%c[lo]",
        "it lt",
        f"movlt {dst}, #%c[lo]",
        ".endif",
        ".if %c[hi] < 127",
        f"cmp {dst}, #%c[hi]",
        "it gt",
        f"movgt {dst}, #%c[hi]",
        ".endif",
    ]


def _asm_define(
    head: str,
    pinned: list[tuple[str, ...]],
    local: list[str],
    asm: list[str],
    tail: list[str],
) -> str:
    """A ``#define`` of one asm block: ``pinned`` register variables ``(ctype, name, register)``
    or ``(ctype, name, register, initial value)`` (LDM targets must ascend, so they are chosen
    here), ``local`` declarations, the asm lines, then ``tail`` (the operand lists and what
    follows the block)."""
    pins = [
        f'register {ctype} {name}_ __asm__("{reg}"){f" = {init[0]}" if init else ""};'
        for ctype, name, reg, *init in pinned
    ]
    body = "".join(f'        "{line}\\n\\t" \\\n' for line in asm[:-1]) + f'        "{asm[-1]}" \\'
    return "\n".join(
        [
            f"#define {head} \\",
            "    do { \\",
            *(f"        {line} \\" for line in [*pins, *local]),
            "        __asm__ volatile( \\",
            body,
            *(f"        {line} \\" for line in tail),
            "    } while (0)",
        ]
    )


_DW3_REGS = (("u0", "r4"), ("v0", "r5"), ("u1", "r6"), ("v1", "r8"), ("u2", "r9"), ("v2", "r10"))


def _dw3_rows_asm(rows: list[str], weights: list[list[str]]) -> list[str]:
    """MACs of two output rows x two columns of a 3x3 stride-1 depthwise layer from the four
    ring rows at immediates ``rows``: output row o takes ring rows o .. o + 2; ring row i's words
    (x, y) = ((x0, x1), (x2, x3)) meet weight pairs (u_k, v_k) = ((w0, w1), (w1, w2)) of window
    row k = i - o, column 0 by SMLAD(x, u) + SMLABT(y, v), column 1 by SMLATB(x, u) + SMLAD(y, v).
    Column 1 starts from column 0's base (loaded from wp[6] before the first MAC of its row).
    ``weights[i]``: the (u, v) operands of window rows 0..2 when ring row i is read."""
    asm = ["ldr %[a00], [%[wp], #24]"]
    for i, row in enumerate(rows):
        asm.append(f"ldrd %[x], %[y], [%[p], {row}]")
        outs = [o for o in (0, 1) if 0 <= i - o <= 2]
        xs, ys = [], []
        for o in outs:
            u, v = weights[i][i - o]
            a0, a1 = f"%[a{o}0]", f"%[a{o}1]"
            if i - o == 0:  # the row's first window row: column 1 starts from the base
                if o == 1:
                    xs.append(f"ldr {a0}, [%[wp], #24]")
                xs += [f"smlatb {a1}, %[x], {u}, {a0}", f"smlad {a0}, %[x], {u}, {a0}"]
            else:
                xs += [f"smlad {a0}, %[x], {u}, {a0}", f"smlatb {a1}, %[x], {u}, {a1}"]
            ys += [f"smlabt {a0}, %[y], {v}, {a0}", f"smlad {a1}, %[y], {v}, {a1}"]
        asm += xs + ys
    return asm


def _dw3_quad_macro() -> str:
    """``TE_DW3_S1_QUAD(R0, R1, R2, R3)``: two output rows x two columns of a 3x3 stride-1
    depthwise layer from the four ring rows at byte offsets R0..R3 from p (one LDM of the six
    weight pairs, two loads of the base wp[6], four LDRD, 24 MACs); p advances one column pair."""
    uv = [(f"%[u{k}]", f"%[v{k}]") for k in range(3)]
    asm = [
        "ldmia %[wp], {%[u0], %[v0], %[u1], %[v1], %[u2], %[v2]}",
        *_dw3_rows_asm([f"%[r{i}]" for i in range(4)], [uv] * 4),
        "adds %[p], %[p], #4",
    ]
    return _asm_define(
        "TE_DW3_S1_QUAD(R0, R1, R2, R3)",
        [("uint32_t", n, r) for n, r in _DW3_REGS],
        [],
        asm,
        [
            ': [p] "+r"(p), [a00] "=&r"(a00), [a01] "=&r"(a01), [a10] "=&r"(a10),',
            '  [a11] "=&r"(a11), [x] "=&r"(x), [y] "=&r"(y), [u0] "=&r"(u0_),',
            '  [u1] "=&r"(u1_), [u2] "=&r"(u2_), [v0] "=&r"(v0_), [v1] "=&r"(v1_),',
            '  [v2] "=&r"(v2_)',
            ': [wp] "r"(wv), [r0] "i"(R0), [r1] "i"(R1), [r2] "i"(R2), [r3] "i"(R3)',
            ': "cc", "memory");',
        ],
    )


def _dw3_quadq_macro() -> str:
    """``TE_DW3_S1_QUADQ(R0, R1, R2, R3)``: two whole output rows of a 3x3 stride-1 depthwise
    layer as one asm loop (p advances a column pair up to pend), each iteration
    TE_DW3_S1_QUAD's MACs with window row 2's pairs loaded over row 0's once those are done (so
    the output pointer fits in the registers), then per output the fast requantization, the
    clamps and a STRB at its offset from o (literal OW and C); o advances two columns."""
    low = [("%[u0]", "%[v0]"), ("%[u1]", "%[v1]"), (None, None)]
    high = [(None, None), ("%[u1]", "%[v1]"), ("%[u0]", "%[v0]")]
    macs = _dw3_rows_asm([f"%[r{i}]" for i in range(4)], [low, low, high, high])
    at = macs.index("ldrd %[x], %[y], [%[p], %[r2]]")
    asm = [
        "1:",
        "ldmia %[wp], {%[u0], %[v0], %[u1], %[v1]}",
        *macs[:at],
        "ldrd %[u0], %[v0], [%[wp], #16]",  # window row 2's pairs over row 0's
        *macs[at:],
        "adds %[p], %[p], #4",
        "ldrd %[x], %[y], [%[wp], #28]",
        "ldr %[u1], [%[wp], #36]",
    ]
    for n, acc in enumerate(("a00", "a01", "a10", "a11")):
        asm += _requant_clamp("%[v1]", f"%[{acc}]", "%[x]", "%[y]", "%[u1]")
        asm.append(f"strb %[v1], [%[o], #%c[z{n}]]")
    asm += ["add %[o], %[o], #%c[z4]", "cmp %[p], %[pend]", "bne 1b"]
    return _asm_define(
        "TE_DW3_S1_QUADQ(R0, R1, R2, R3)",
        [("uint32_t", n, r) for n, r in _DW3_REGS[:4]],
        ["int32_t a00_, a01_, a10_, a11_;", "uint32_t x_, y_;"],
        asm,
        [
            ': [p] "+r"(p), [o] "+r"(o0), [a00] "=&r"(a00_), [a01] "=&r"(a01_),',
            '  [a10] "=&r"(a10_), [a11] "=&r"(a11_), [x] "=&r"(x_), [y] "=&r"(y_),',
            '  [u0] "=&r"(u0_), [v0] "=&r"(v0_), [u1] "=&r"(u1_), [v1] "=&r"(v1_)',
            ': [wp] "r"(wv), [pend] "r"(pend), [r0] "i"(R0), [r1] "i"(R1),',
            '  [r2] "i"(R2), [r3] "i"(R3), [z0] "i"(0), [z1] "i"(C), [z2] "i"(OW * C),',
            '  [z3] "i"((OW + 1) * C), [z4] "i"(2 * C), [lo] "i"(lo), [hi] "i"(hi)',
            ': "cc", "memory");',
            "(void)a00_, (void)a01_, (void)a10_, (void)a11_, (void)x_, (void)y_;",
        ],
    )


def _dw3_s2_macro() -> str:
    """``TE_DW3_S2_ROW(R0, R1, R2)``: a whole output row (an even number of outputs) of a 3x3
    stride-2 depthwise layer as one asm loop, two outputs per iteration from the three ring rows
    at byte offsets R0..R2 from p: one LDM of the weight pairs, per window row LDRD + LDR of six
    neighbouring values and four MACs (output 1 starts from output 0's base), then per output the
    fast requantization, the clamps and a post-indexed STRB."""
    asm = ["1:", "ldmia %[wp], {%[u0], %[v0], %[u1], %[v1], %[u2], %[v2]}"]
    asm.append("ldr %[a0], [%[wp], #24]")
    for k in range(3):
        u, v, r = f"%[u{k}]", f"%[v{k}]", f"%[r{k}]"
        asm.append(f"ldrd %[x], %[y], [%[p], {r}]")
        if k == 0:
            asm += [f"smlad %[a1], %[y], {u}, %[a0]", f"smlad %[a0], %[x], {u}, %[a0]"]
            asm.append(f"smlabt %[a0], %[y], {v}, %[a0]")
        else:
            asm += [f"smlad %[a0], %[x], {u}, %[a0]", f"smlabt %[a0], %[y], {v}, %[a0]"]
            asm.append(f"smlad %[a1], %[y], {u}, %[a1]")
        asm += [f"ldr %[x], [%[p], %[r{k}z]]", f"smlabt %[a1], %[x], {v}, %[a1]"]
    asm += ["ldrd %[x], %[y], [%[wp], #28]", "ldr %[u0], [%[wp], #36]"]
    for acc in ("a0", "a1"):
        asm += _requant_clamp("%[u1]", f"%[{acc}]", "%[x]", "%[y]", "%[u0]")
        asm.append("strb %[u1], [%[o]], %[c]")
    asm += ["adds %[p], %[p], #8", "cmp %[p], %[pend]", "bne 1b"]
    return _asm_define(
        "TE_DW3_S2_ROW(R0, R1, R2)",
        [("uint32_t", n, r) for n, r in _DW3_REGS],
        ["int32_t a0_, a1_;", "uint32_t x_, y_;"],
        asm,
        [
            ': [p] "+r"(p), [o] "+r"(o0), [a0] "=&r"(a0_), [a1] "=&r"(a1_),',
            '  [x] "=&r"(x_), [y] "=&r"(y_), [u0] "=&r"(u0_), [u1] "=&r"(u1_),',
            '  [u2] "=&r"(u2_), [v0] "=&r"(v0_), [v1] "=&r"(v1_), [v2] "=&r"(v2_)',
            ': [wp] "r"(wv), [pend] "r"(pend), [r0] "i"(R0), [r1] "i"(R1),',
            '  [r2] "i"(R2), [r0z] "i"((R0) + 8), [r1z] "i"((R1) + 8),',
            '  [r2z] "i"((R2) + 8), [c] "i"(C), [lo] "i"(lo), [hi] "i"(hi)',
            ': "cc", "memory");',
            "(void)a0_, (void)a1_, (void)x_, (void)y_, (void)u2_, (void)v0_, (void)v1_,",
            "    (void)v2_;",
        ],
    )


def _dwk_header() -> str:
    """te_dwk.h: the depthwise asm row loops on int16 ring rows: 3x3 (two rows x two columns,
    two whole rows for stride 1, a row for stride 2) and 5x5 / 7x7 for strides 1 and 2."""
    parts = ["/* Generated: depthwise asm row loops on int16 ring rows (see kernels_te.h). */"]
    parts += ["#ifndef TE_DWK_H", "#define TE_DWK_H", ""]
    parts += ["#if TE_HAVE_DSP && TE_SPECIALIZE", _dw3_quad_macro(), ""]
    parts += [_dw3_quadq_macro(), "", _dw3_s2_macro(), "#endif", ""]
    for k in (5, 7):
        for s in (1, 2):
            parts += [_dwk_macro(k, s), ""]
    return "\n".join([*parts, "#endif /* TE_DWK_H */", ""])


def _wide_header(kps: list[int], looped_kps: list[int], pair_kps: list[int]) -> str:
    """te_wide.h: the per-channel asm block of every record length the model uses (one, two
    pixels per pass, looped), each with kernels_te.h's portable code where there is no DSP."""
    parts = [
        "/* Generated: wide per-channel code, one macro per record length (see kernels_te.h). */",
        "#ifndef TE_WIDE_H",
        "#define TE_WIDE_H",
        "",
    ]
    variants: list[tuple[list[int], Callable[[int], str], str]] = [
        (kps, _wide_macro, "TE_WIDE_CH_{kp}(E, lo, hi) TE_WIDE_CH_C({kp}, E, lo, hi)"),
        (pair_kps, _wide2_macro, "TE_WIDE2_CH_{kp}(E, lo, hi) TE_WIDE2_CH_C({kp}, E, lo, hi)"),
        (
            looped_kps,
            functools.partial(_wide_macro, looped=True),
            "TE_WIDEL_CH_{kp}(lo, hi) TE_WIDEL_CH_C({kp}, lo, hi)",
        ),
    ]
    for used, macro, portable in variants:
        for kp in sorted(set(used)):
            parts += [
                "#if TE_HAVE_DSP",
                macro(kp),
                "#else",
                f"#define {portable.format(kp=kp)}",
                "#endif",
                "",
            ]
    return "\n".join([*parts, "#endif /* TE_WIDE_H */", ""])


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


def _pack16(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """int32 words holding the int16 ``lo`` in the low and ``hi`` in the high halfword."""
    word = (lo.astype(np.int64) & 0xFFFF) | ((hi.astype(np.int64) & 0xFFFF) << 16)
    return np.where(word >= 1 << 31, word - (1 << 32), word)


def _dw_ring(
    options: CodegenOptions, kh: int, kw: int, sh: int, sw: int, oh: int, ow: int, ring_w: int
) -> bool:
    """Whether a depthwise layer runs te_dw3_ring: 3x3, stride 1 or 2, LDRD offsets in range,
    and output extents on which its two-column (and for stride 1 two-row) steps need no tail
    (a tail runs portable C, slower than the int8 plane kernel)."""
    if not (options.dw_rows and options.simd and options.unroll and options.specialize):
        return False
    if not (kh == kw == 3 and sh == sw and sh in (1, 2) and 6 * ring_w <= 1020):
        return False
    return ow % 2 == 0 and (sh == 2 or oh % 2 == 0)


def _dwk_ring(
    options: CodegenOptions, kh: int, kw: int, sh: int, sw: int, ow: int, ring_w: int
) -> bool:
    """Whether a depthwise layer runs te_dwk_ring: 5x5 or 7x7, stride 1 or 2, at least two
    output columns (its row loop makes two outputs per step; an odd width's last one is one
    more step, see te_dwk_ring) and every ring row within LDR's reach."""
    if not (options.dw_rows and options.simd and options.unroll and options.specialize):
        return False
    if not (kh == kw and kh in (5, 7) and sh == sw and sh in (1, 2)):
        return False
    return ow >= 2 and 2 * ring_w * (kh - 1) + 16 <= 4095


def _dw_small(
    options: CodegenOptions,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    h: int,
    w: int,
    oh: int,
    ow: int,
    pt: int,
    pl: int,
) -> bool:
    """Whether a depthwise layer runs te_dw_small (valid taps only, on a tiny output plane):
    3x3 / 5x5 / 7x7, stride 1 or 2, at most 8 output columns, and where its estimate
    (:func:`_dw_small_cost`) beats the padded-window kernels' (:func:`_dw_window_cost`)."""
    if not (options.dw_small and options.simd and options.unroll and options.specialize):
        return False
    if not (kh == kw and kh in (3, 5, 7) and sh == sw and sh in (1, 2) and ow <= 8):
        return False
    return _dw_small_cost(kh, sh, h, w, oh, ow, pt, pl) < _dw_window_cost(kh, sh, oh, ow)


def _dw_window_cost(k: int, s: int, oh: int, ow: int) -> float:
    """Estimated instructions per channel of the padded-window kernels (te_dw3_ring,
    te_dwk_ring), fitted to their Cortex-M7 profiles on 4x4 to 8x8 output planes."""
    return oh * ow * (2.2 * k * k + 4) * (1.3 if s == 2 else 1.0) + 250


def _dw_small_cost(k: int, s: int, h: int, w: int, oh: int, ow: int, pt: int, pl: int) -> int:
    """Estimated instructions per channel of te_dw_small: widening, per valid window row the
    weight pairs and per valid tap pair a load and a MAC, and the requantization."""
    ch, cw = min(h, (oh - 1) * s + k - pt), min(w, (ow - 1) * s + k - pl)
    pairs = 0
    for ox in range(ow):
        kx0, kx1 = max(pl - ox * s, 0), min(cw + pl - ox * s, k)
        pairs += (kx1 - 1) // 2 - kx0 // 2 + 1
    rows = sum(min(ch - (oy * s - pt), k) - max(pt - oy * s, 0) for oy in range(oh))
    return 3 * ch * cw + rows * (4 + 3 * ((k + 3) // 4) + 2 * pairs) + oh * (11 * ow + 4) + 60


def _dw_small_weights(w: np.ndarray) -> np.ndarray:
    """te_dw_small's weights: per channel (C, K, K), each row in groups of four as (w0, w2, w1,
    w3) (a tail of three as (w0, w2, w1)), then 4 zero bytes of slack for its word loads."""
    k = w.shape[1]
    order = []
    for g in range(0, k, 4):
        n = min(4, k - g)
        order += [g + i for i in ((0, 2, 1, 3), (0, 2, 1), (0, 1), (0,))[4 - n]]
    cw = np.transpose(w, (2, 0, 1))[:, :, order]
    return np.concatenate([cw.reshape(-1), np.zeros(4, dtype=cw.dtype)])


def _conv_gemm_setup(
    g: Graph, op: Op, options: CodegenOptions
) -> tuple[np.ndarray, np.ndarray, int, int, np.ndarray | None]:
    """``(weight rows, bias, input offset, KP, fast requantization rows)`` of a convolution,
    the input offset folded into the bias when ``fold_offset``."""
    inp, w, b, out = (g.tensors[n] for n in (*op.inputs[:3], op.outputs[0]))
    off = -inp.zp
    wdata = w.data.reshape(w.shape[0], -1)
    bias = b.data.astype(np.int64)
    if options.fold_offset:
        bias = bias + off * wdata.astype(np.int64).sum(axis=1)
        off = 0
    mult, shift = _requant(g, op, out.shape[-1])
    wabs = np.abs(wdata.astype(np.int64)).sum(axis=1)
    rq = _fast_requant(mult, shift, out.zp, _acc_bound(bias, wabs, off))
    return wdata, bias, off, _padded_k(wdata.shape[1], options), rq


def _channel_costs(
    kp: int, cout: int, cached: bool = False, pairs: bool = False
) -> dict[str, tuple[float, int]]:
    """Estimated (instructions per output, flash bytes) of a convolution layer per kernel
    (``cached``: the GEMM is te_conv1x1_wc, 11 instructions per 16 MACs instead of 15;
    ``pairs``: the unrolled code runs two pixels at once, TE_WIDE2_CH)."""
    unrolled = kp // 2 + 5 if kp <= 8 else _wide_instructions(kp)
    code = unrolled
    if pairs:
        code = _wide2_instructions(kp)
        unrolled = code / 2
    return {
        "gemm": ((11 if cached else 15) / 16 * kp + 12, cout * (kp + 24)),
        "unrolled": (unrolled, cout * ((kp // 2 + 3) * 4 + 4 * code)),
        "looped": (_wide_instructions(kp) + 3, cout * (kp // 2 + 4) * 4 + 256),
    }


def _pair_layers(g: Graph, options: CodegenOptions, pair_scratch: int | None) -> set[int]:
    """The convolutions (op indices) whose unrolled per-channel code runs two pixels at once:
    gathered windows (kernel larger than 1x1) with more than eight values, whose two widened
    pixels and window fit in ``pair_scratch`` (None: any scratch)."""
    if not (options.pixel_pairs and options.per_channel and options.simd):
        return set()
    layers = set()
    for i, op in enumerate(g.ops):
        if op.kind != "conv2d":
            continue
        kh, kw = g.tensors[op.inputs[1]].shape[1:3]
        kp = _padded_k(int(np.prod(g.tensors[op.inputs[1]].shape[1:])), options)
        ph, pw = op.options.get("pool", (1, 1))
        # a fused pool pairs the pixels of its window's rows, and keeps both pixels' outputs
        tmp = _align(2 * g.tensors[op.outputs[0]].shape[-1], 4) if ph * pw > 1 else 0
        if (
            kh * kw > 1
            and kp > 8
            and (pw % 2 == 0 or ph * pw == 1)
            and (pair_scratch is None or _align(kp + 4, 8) + 4 * kp + tmp <= pair_scratch)
        ):
            layers.add(i)
    return layers


def _channel_choices(
    g: Graph, options: CodegenOptions, pairs: set[int] | None = None
) -> dict[int, str]:
    """Per convolution (op index): ``"unrolled"`` / ``"looped"`` per-channel code or ``"gemm"``
    (``pairs``: the layers whose unrolled code would run two pixels at once).

    Maximises the estimated instructions saved over the GEMM within ``options.channel_flash``
    extra bytes: each layer takes the option with the best ``saved - lam * extra bytes``, with
    the smallest ``lam`` that keeps the total within the budget (found by bisection).
    """
    layers = []
    for i, op in enumerate(g.ops):
        if op.kind != "conv2d" or not (options.per_channel and options.simd):
            continue
        _, _, _, kp, rq = _conv_gemm_setup(g, op, options)
        if rq is None or kp > MAX_CHANNEL_KP:
            continue
        out = g.tensors[op.outputs[0]]
        ph, pw = op.options.get("pool", (1, 1))
        n_out = int(np.prod(out.shape[1:])) * ph * pw
        costs = _channel_costs(
            kp, out.shape[-1], _wc_candidate(g, op, options, kp), i in (pairs or ())
        )
        base_i, base_b = costs["gemm"]
        opts = {k: (n_out * (base_i - c), b - base_b) for k, (c, b) in costs.items()}
        if "pool" in op.options:  # a fused pool has no GEMM code
            del opts["gemm"]
        layers.append((i, opts))

    def pick(lam: float) -> tuple[dict[int, str], int]:
        chosen, total = {}, 0
        for i, opts in layers:
            key = max(opts, key=lambda k: opts[k][0] - lam * opts[k][1])
            chosen[i] = key
            total += max(opts[key][1], 0)
        return chosen, total

    lo, hi = 0.0, 1e9
    chosen, total = pick(lo)
    if total > options.channel_flash:
        for _ in range(60):
            mid = (lo + hi) / 2
            if pick(mid)[1] <= options.channel_flash:
                hi = mid
            else:
                lo = mid
        chosen, total = pick(hi)
    return chosen


def _wc_candidate(g: Graph, op: Op, options: CodegenOptions, kp: int) -> bool:
    """Whether a convolution's GEMM would be te_conv1x1_wc (1x1, stride 1, unpadded, K a
    multiple of 4 up to 512, at least four pixels)."""
    inp, w, out = (g.tensors[n] for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    one = w.shape[1] == w.shape[2] == 1 and tuple(op.options["stride"]) == (1, 1)
    return (
        one
        and inp.shape[1:3] == out.shape[1:3]
        and kp == inp.shape[3]
        and kp <= 512
        and out.shape[1] * out.shape[2] >= 4
        and options.simd
        and options.specialize
        and options.gemm_cache
    )


def _channel_extra(
    g: Graph, options: CodegenOptions, choices: dict[int, str], pairs: set[int] | None = None
) -> int:
    """Estimated flash bytes the chosen per-channel code adds over the int8 GEMM."""
    total = 0
    for i, kind in choices.items():
        op = g.ops[i]
        kp = _conv_gemm_setup(g, op, options)[3]
        costs = _channel_costs(kp, g.tensors[op.outputs[0]].shape[-1], pairs=i in (pairs or ()))
        total += max(costs[kind][1] - costs["gemm"][1], 0)
    return total


def _channel_records(
    wdata: np.ndarray, kp: int, bias: np.ndarray, rq: np.ndarray, looped: bool = False
) -> np.ndarray:
    """Per output channel the record of the per-channel code: the weights (zero-padded to
    ``kp``) times two as int16 pairs in SXTB16 order, with 2 * bias after the first chunk of
    four words (or all of them, for ``kp`` <= 8) and the multiplier and rounding constant last
    (then the shift, for the looped code)."""
    cout = wdata.shape[0]
    rows = np.pad(wdata.astype(np.int64), ((0, 0), (0, kp - wdata.shape[1])))
    w2 = 2 * rows.reshape(cout, kp // 4, 4)
    pairs = np.stack([_pack16(w2[..., 0], w2[..., 2]), _pack16(w2[..., 1], w2[..., 3])], axis=2)
    words = pairs.reshape(cout, kp // 2)
    first = min(4, kp // 2)
    tail = rq[:, [0, 2, 1]] if looped else rq[:, [0, 2]]
    return np.concatenate(
        [words[:, :first], 2 * bias.reshape(cout, 1), words[:, first:], tail], axis=1
    )


def _channel_code(
    label: str, kp: int, rq: np.ndarray, lo: int, hi: int, pairs: bool = False
) -> list[str]:
    """One line per output channel (its literal shift) of the unrolled per-channel code."""
    macro = f"TE_NARROW_CH{kp}" if kp <= 8 else f"TE_WIDE{'2' if pairs else ''}_CH_{kp}"
    return [
        f"const uint32_t *pw = (const uint32_t *)(const void *){label}_nw;",
        *(f"{macro}({int(e)}, {lo}, {hi});" for e in rq[:, 1]),
    ]


def _looped_code(label: str, kp: int, cout: int, lo: int, hi: int) -> list[str]:
    """The looped per-channel code: one record (shift included) per iteration."""
    return [
        f"const uint32_t *pw = (const uint32_t *)(const void *){label}_nw;",
        f"for (int32_t ch = 0; ch < {cout}; ++ch) {{",
        f"    TE_WIDEL_CH_{kp}({lo}, {hi});",
        "}",
    ]


def _pooled_conv_loop(
    gather: str,
    widen: str,
    code: list[str],
    geo: dict[str, str],
    pool: tuple[int, int],
    kp: int,
    off: int,
    cout: int,
    tmp_off: int,
    two: bool,
) -> list[str]:
    """The per-channel code of a convolution with a fused max pool: for each pooled pixel ``d``
    the ``ph x pw`` convolution pixels of its window (two per pass with ``two``), the first
    written into ``d`` and the others into ``t0`` and merged with te_max_into. ``gather`` reads
    the window of convolution pixel ``({y}, {x})`` (a format string)."""
    ph, pw = pool
    if two:
        inner = [
            gather.format(y="oy", x="ox"),
            f"te_widen_px2(col, px, {kp}, {off});",
            gather.format(y="oy", x="ox + 1"),
            f"te_widen_px2(col, px + 2, {kp}, {off});",
            "int8_t *o = (dy | dx) ? t0 : d;",
            f"int8_t *o2 = t0 + {cout};",
            *code,
            f"if (dy | dx) {{ te_max_into(d, t0, {cout}); }}",
            f"te_max_into(d, t0 + {cout}, {cout});",
        ]
    else:
        inner = [
            gather.format(y="oy", x="ox"),
            widen,
            "int8_t *o = (dy | dx) ? t0 : d;",
            *code,
            f"if (dy | dx) {{ te_max_into(d, t0, {cout}); }}",
        ]
    return [
        f"        int8_t *t0 = arena + {tmp_off};",
        f"        for (int32_t py = 0; py < {geo['oh']}; ++py) {{",
        f"            for (int32_t qx = 0; qx < {geo['ow']}; ++qx, d += {cout}) {{",
        f"                for (int32_t dy = 0; dy < {ph}; ++dy) {{",
        f"                    const int32_t oy = py * {ph} + dy;",
        f"                    for (int32_t dx = 0; dx < {pw}; dx += {2 if two else 1}) {{",
        f"                        const int32_t ox = qx * {pw} + dx;",
        *(" " * 24 + line for line in inner),
        "                    }",
        "                }",
        "            }",
        "        }",
    ]


def _emit_specialized(
    g: Graph,
    plan: MemoryPlan,
    options: CodegenOptions,
    em: _Emitter,
    scratch_off: int,
    wc_scratch: int = 0,
    pair_scratch: int | None = 0,
) -> tuple[int, list[str]]:
    """Emit the TinyEngine-style operator sequence; returns (scratch bytes, in-place op names).

    ``wc_scratch``: the scratch bytes the weight-cached 1x1 GEMM (te_conv1x1_wc) may use for its
    pixel blocks (0: none; :func:`generate` passes what the other layers need anyway), and
    ``pair_scratch`` the scratch the two-pixel per-channel code may use (0: none; None: as much
    as it needs).

    With ``options.patch_ops`` the first operators run inside a loop over the tiles of the
    stage output (MCUNetV2): the input frame's tile is copied in, every stage operator runs on
    its tile buffers with per-tile shapes and paddings (read from a table), and the output tile
    is copied into the whole stage output.
    """
    scratch = 0
    inplace: list[str] = []
    wide_kps: list[int] = []
    looped_kps: list[int] = []
    pairs = _pair_layers(g, options, pair_scratch)
    choices = _channel_choices(g, options, pairs)
    em.channel_bytes = _channel_extra(g, options, choices, pairs)
    pair_kps: list[int] = []
    ps = _PatchStage(g, options)

    def ptr(t: str) -> str:
        return f"(arena + {plan.offset(t)})"

    def tile_ptr(t: str) -> str:
        return f"(arena + {plan.offset(t + TILE)})"

    def rq_arg(rows: np.ndarray | None) -> str:
        if rows is None:
            return "(const int32_t *)0"
        return em.array(f"{label}_rq", "int32_t", rows)

    body = em.body
    for i, op in enumerate(g.ops):
        label = f"l{i}"
        out = g.tensors[op.outputs[0]]
        in_stage = i < ps.n
        if in_stage and i == 0:
            body = []
        p = tile_ptr if in_stage else ptr
        body.append(f"    /* {i}: {op.kind} {op.name}{' (one tile)' if in_stage else ''} */")
        op_start = len(body)
        if in_stage and op.kind not in (
            "conv2d",
            "depthwise_conv2d",
            "add",
            "avg_pool2d",
            "max_pool2d",
        ):
            raise ValueError(f"patch stage: no tiled {op.kind} kernel; choose a shorter stage")
        if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
            inp, w, b = (g.tensors[n] for n in op.inputs[:3])
            off = -inp.zp
            lo, hi = activation_range(op.options.get("activation", "none"), out.s, out.zp)
            n_out = out.shape[-1]
            mult, shift = _requant(g, op, n_out)
            if op.kind != "conv2d":  # a convolution emits them unless it needs none (narrow)
                em.array(f"{label}_mult", "int32_t", mult)
                em.array(f"{label}_shift", "int32_t", shift)
            bias = b.data.astype(np.int64)
        if op.kind in ("conv2d", "depthwise_conv2d", "avg_pool2d", "max_pool2d"):
            inp = g.tensors[op.inputs[0]]
            _, h, wd, cin = inp.shape
            _, oh, ow, cout = out.shape
            if op.kind in ("avg_pool2d", "max_pool2d"):
                kh, kw = op.options["filter"]
            else:
                kh, kw = w.shape[1], w.shape[2]
            sh, sw = op.options["stride"]
            *_, pt, _pb, pl, _pr = resolve_padding(h, wd, kh, kw, (sh, sw), op.options["padding"])
            ph, pw = op.options.get("pool", (1, 1))  # a fused max pool (fuse_pool)
            geo = (
                ps.window(g, op, sh * ph, sw * pw, pt, pl)
                if in_stage
                else {
                    k: str(v)
                    for k, v in dict(
                        h=h, w=wd, oh=oh, ow=ow, pt=pt, pl=pl, max_oh=oh, max_ow=ow
                    ).items()
                }
            )
            dims = f"{geo['h']}, {geo['w']}"
        if op.kind == "conv2d":
            wdata, bias, off, kp, rq_rows = _conv_gemm_setup(g, op, options)
            # a tile of a 1x1 stride-1 unpadded convolution has equal input and output extents
            pool = op.options.get("pool")
            direct = (
                kh == kw == 1
                and sh == sw == 1
                and pt == pl == 0
                and (oh, ow) == (h, wd)
                and kp == cin
                and pool is None
            )
            choice = choices.get(i, "gemm")
            if pool is not None:
                assert choice != "gemm", "fuse_pool accepts only convolutions with per-channel code"
                plo, phi = activation_range(op.options["pool_activation"], out.s, out.zp)
                lo, hi = max(lo, plo), min(hi, phi)
            if choice != "gemm":
                assert rq_rows is not None
                looped = choice == "looped"
                em.array(
                    f"{label}_nw", "int32_t", _channel_records(wdata, kp, bias, rq_rows, looped)
                )
                wide = kp > 8 or looped
                two = choice == "unrolled" and i in pairs and not direct
                if looped:
                    looped_kps.append(kp)
                elif two:
                    pair_kps.append(kp)
                elif wide:
                    wide_kps.append(kp)
                col_bytes = 0 if direct else _align(kp + 4, 8)
                px_bytes = (4 if two else 2) * kp if wide else 0
                tmp_off = scratch_off + col_bytes + px_bytes  # fused pool: the pixels' outputs
                tmp_bytes = _align((2 if two else 1) * cout, 4) if pool else 0
                scratch = max(scratch, col_bytes + px_bytes + tmp_bytes)
                src, dst = p(op.inputs[0]), p(op.outputs[0])
                lines = ["    {", f"        int8_t *{'d' if pool else 'o'} = {dst};"]
                if not direct:
                    lines.append(f"        int8_t *col = arena + {scratch_off};")
                if wide:
                    lines.append(
                        f"        uint32_t *px = (uint32_t *)(void *)(arena + "
                        f"{scratch_off + col_bytes});"
                    )
                widen = (
                    "te_widen_px({x}, px, {kp}, {off});"
                    if wide
                    else "TE_NARROW_PIXEL({x}, {kp}, {off});"
                )
                code = (
                    _looped_code(label, kp, cout, lo, hi)
                    if looped
                    else _channel_code(label, kp, rq_rows, lo, hi, two)
                )
                cow = geo["ow"] if pool is None else f"{geo['ow']} * {pw}"  # convolution OW

                gather_at = (  # the window of convolution pixel ({y}, {x})
                    f"te_gather({src}, col, {{y}}, {{x}}, {dims}, {cin}, {cow}, {kh}, {kw}, "
                    f"{sh}, {sw}, {geo['pt']}, {geo['pl']}, {inp.zp}, {kp});"
                )
                gather = gather_at.format(y="oy", x="ox")
                step = f"if (++ox == {geo['ow']}) {{ ox = 0; ++oy; }}"
                npx = f"{geo['oh']} * {geo['ow']}"
                if pool is not None:
                    lines += _pooled_conv_loop(
                        gather_at,
                        widen.format(x="col", kp=kp, off=off),
                        code,
                        geo,
                        (ph, pw),
                        kp,
                        off,
                        cout,
                        tmp_off,
                        two,
                    )
                elif two:  # pixels p and p + 1 (p again at an odd end: the same bytes twice)
                    lines += [
                        "        int32_t oy = 0, ox = 0;",
                        f"        for (int32_t p = 0; p < {npx}; p += 2) {{",
                        f"            {gather}",
                        f"            te_widen_px2(col, px, {kp}, {off});",
                        "            int8_t *o2 = o;",
                        f"            if (p + 1 < {npx}) {{",
                        f"                {step}",
                        f"                {gather}",
                        f"                o2 = o + {cout};",
                        "            }",
                        f"            te_widen_px2(col, px + 2, {kp}, {off});",
                        f"            {step}",
                        *(" " * 12 + line for line in code),
                        "            o = o2;",
                        "        }",
                    ]
                elif direct:
                    lines += [
                        f"        const int8_t *x = {src};",
                        f"        for (int32_t p = 0; p < {npx}; ++p, x += {cin}) {{",
                        "            " + widen.format(x="x", kp=kp, off=off),
                        *(" " * 12 + line for line in code),
                        "        }",
                    ]
                else:
                    lines += [
                        f"        for (int32_t oy = 0; oy < {geo['oh']}; ++oy) {{",
                        f"            for (int32_t ox = 0; ox < {geo['ow']}; ++ox) {{",
                        f"                {gather}",
                        "                " + widen.format(x="col", kp=kp, off=off),
                        *(" " * 16 + line for line in code),
                        "            }",
                        "        }",
                    ]
                body += [*lines, "    }"]
            else:
                em.array(f"{label}_mult", "int32_t", mult)
                em.array(f"{label}_shift", "int32_t", shift)
                em.array(f"{label}_w", "int8_t", _gemm_weights(wdata, kp, options))
                em.array(f"{label}_b", "int32_t", bias)
                rq = rq_arg(rq_rows)
                # pixels per block of the weight-cached 1x1 GEMM within the model's scratch
                pb = 0
                if (
                    direct
                    and wc_scratch
                    and options.gemm_cache
                    and _wc_candidate(g, op, options, kp)
                ):
                    pb = min(oh * ow, max(wc_scratch - 4 * kp, 0) // (2 * kp)) // 2 * 2
            if choice == "gemm" and pb >= 4:
                scratch = max(scratch, 2 * kp * pb + 4 * kp)
                xs = f"(uint32_t *)(void *)(arena + {scratch_off})"
                ws = f"(uint32_t *)(void *)(arena + {scratch_off + 2 * kp * pb})"
                body.append(
                    f"    te_conv1x1_wc({p(op.inputs[0])}, {p(op.outputs[0])}, {xs}, {ws}, "
                    f"{geo['oh']} * {geo['ow']}, {cout}, {kp}, {pb}, {label}_w, {label}_b, "
                    f"{label}_mult, {label}_shift, {rq}, {off}, {out.zp}, {lo}, {hi});"
                )
            elif choice == "gemm":
                scratch = max(scratch, _gemm_scratch(kp, options, im2col=not direct))
                col, col16 = _gemm_scratch_ptrs(kp, scratch_off, options, im2col=not direct)
                body.append(
                    f"    te_conv2d({p(op.inputs[0])}, {p(op.outputs[0])}, {col}, {col16}, {dims}, "
                    f"{cin}, {geo['oh']}, {geo['ow']}, {cout}, {kh}, {kw}, {sh}, {sw}, "
                    f"{geo['pt']}, {geo['pl']}, {kp}, {label}_w, {label}_b, {label}_mult, "
                    f"{label}_shift, {rq}, {off}, {inp.zp}, {out.zp}, {lo}, {hi});"
                )
        elif op.kind == "depthwise_conv2d":
            if op.options.get("depth_multiplier", 1) != 1:
                raise UnsupportedOperatorError("depthwise_conv2d with depth_multiplier != 1")
            small = not in_stage and _dw_small(options, kh, kw, sh, sw, h, wd, oh, ow, pt, pl)
            if small:
                em.array(f"{label}_w", "int8_t", _dw_small_weights(w.data[0]))
            else:
                em.array(f"{label}_w", "int8_t", np.transpose(w.data[0], (2, 0, 1)))  # (C, kh, kw)
            max_oh, max_ow = int(geo["max_oh"]), int(geo["max_ow"])
            ring_w = (((max_ow - 1) * sw + kw + 1) & ~1) + 2  # ring row: halfwords, even
            ring3 = (
                not small
                and not _dwk_ring(options, kh, kw, sh, sw, ow, ring_w)
                and _dw_ring(options, kh, kw, sh, sw, oh, ow, ring_w)
            )
            # te_dw3_ring takes its bias with the input offset's contribution folded in
            wsum = w.data[0].astype(np.int64).sum(axis=(0, 1))
            em.array(f"{label}_b", "int32_t", bias + off * wsum if ring3 else bias)
            wabs = np.abs(w.data[0].astype(np.int64)).sum(axis=(0, 1))
            rq = rq_arg(_fast_requant(mult, shift, out.zp, _acc_bound(bias, wabs, off)))
            sc = f"(arena + {scratch_off})"
            if not in_stage and plan.aliases.get(op.outputs[0]) == op.inputs[0]:
                inplace.append(op.name or label)
            if small:
                # the widened input channel: its rows (within the windows), one halfword of
                # slack on either side
                ch = min(h, (oh - 1) * sh + kh - pt)
                rw = min(wd, (ow - 1) * sw + kw - pl) + 2
                scratch = max(scratch, 2 * ch * rw)
                body.append(
                    f"    te_dw_small({p(op.inputs[0])}, {p(op.outputs[0])}, "
                    f"(int16_t *)(void *){sc}, {dims}, {cin}, {oh}, {ow}, {kh}, {sh}, {pt}, "
                    f"{pl}, {rw}, {label}_w, {label}_b, {label}_mult, {label}_shift, {rq}, "
                    f"{off}, {out.zp}, {lo}, {hi});"
                )
            elif _dwk_ring(options, kh, kw, sh, sw, ow, ring_w):
                scratch = max(scratch, 2 * kh * 2 * ring_w)  # the doubled ring of kh rows
                body.append(
                    f"    te_dwk_ring({p(op.inputs[0])}, {p(op.outputs[0])}, "
                    f"(int16_t *)(void *){sc}, {dims}, {cin}, {geo['oh']}, {geo['ow']}, {kh}, "
                    f"{sh}, {geo['pt']}, {geo['pl']}, {ring_w}, {label}_w, {label}_b, "
                    f"{label}_mult, {label}_shift, {rq}, {off}, {out.zp}, {lo}, {hi});"
                )
            elif ring3:
                # a ring of four int16 rows of the padded plane (LDRD offsets reach 3 rows)
                scratch = max(scratch, 4 * 2 * ring_w)
                body.append(
                    f"    te_dw3_ring({p(op.inputs[0])}, {p(op.outputs[0])}, "
                    f"(int16_t *)(void *){sc}, {dims}, {cin}, {geo['oh']}, {geo['ow']}, {sh}, "
                    f"{geo['pt']}, {geo['pl']}, {ring_w}, {label}_w, {label}_b, {label}_mult, "
                    f"{label}_shift, {rq}, {off}, {out.zp}, {lo}, {hi});"
                )
            else:
                # the zero-padded channel plane (+ 4 bytes of slack for word loads)
                scratch = max(scratch, ((max_oh - 1) * sh + kh) * ((max_ow - 1) * sw + kw) + 4)
                body.append(
                    f"    te_depthwise_conv2d({p(op.inputs[0])}, {p(op.outputs[0])}, {sc}, "
                    f"{dims}, {cin}, {geo['oh']}, {geo['ow']}, {kh}, {kw}, {sh}, {sw}, "
                    f"{geo['pt']}, {geo['pl']}, {label}_w, {label}_b, {label}_mult, "
                    f"{label}_shift, {rq}, {off}, {out.zp}, {lo}, {hi});"
                )
        elif op.kind == "fully_connected":
            n_in = int(np.prod(inp.shape[1:]))
            if options.fold_offset:
                bias = bias + off * w.data.astype(np.int64).sum(axis=1)
                off = 0
            kp = _padded_k(n_in, options)
            em.array(f"{label}_w", "int8_t", _gemm_weights(w.data, kp, options))
            em.array(f"{label}_b", "int32_t", bias)
            wabs = np.abs(w.data.astype(np.int64)).sum(axis=1)
            rq = rq_arg(_fast_requant(mult, shift, out.zp, _acc_bound(bias, wabs, off)))
            scratch = max(scratch, _gemm_scratch(kp, options, im2col=kp != n_in, rows=1))
            col, col16 = _gemm_scratch_ptrs(kp, scratch_off, options, im2col=kp != n_in, rows=1)
            body.append(
                f"    te_fully_connected({ptr(op.inputs[0])}, {ptr(op.outputs[0])}, {col}, "
                f"{col16}, {n_in}, {n_out}, {kp}, {label}_w, {label}_b, {label}_mult, "
                f"{label}_shift, {rq}, {off}, {out.zp}, {lo}, {hi});"
            )
        elif op.kind == "add":
            (a_off, am, ash), (b_off, bm, bsh), (om, osh) = _add_params(g, op)
            lo, hi = activation_range(op.options.get("activation", "none"), out.s, out.zp)
            if not in_stage and plan.aliases.get(op.outputs[0]) in op.inputs:
                inplace.append(op.name or label)
            # 32-bit path: input shifts <= 0, |2 * (x + off) << 20| < 2^29 so |va + vb| < 2^29
            fast = None
            if ash <= 0 and bsh <= 0 and am > 0 and bm > 0:
                fast = _fast_requant(np.array([om]), np.array([osh]), out.zp, np.array([1 << 29]))
            rq = rq_arg(fast)
            tabs = "(const int32_t *)0, (const int32_t *)0"
            if fast is not None and options.add_table:
                # each input's rescaled value is a function of its int8 value: two tables
                em.array(f"{label}_ta", "int32_t", _add_table(a_off, am, ash))
                em.array(f"{label}_tb", "int32_t", _add_table(b_off, bm, bsh))
                tabs = f"{label}_ta + 128, {label}_tb + 128"
            params = (
                f"{a_off}, {am}, {ash}, {b_off}, {bm}, {bsh}, {om}, {osh}, {rq}, {tabs}, "
                f"{out.zp}, {lo}, {hi}"
            )
            if not in_stage:
                body.append(
                    f"    te_add({p(op.inputs[0])}, {p(op.inputs[1])}, {p(op.outputs[0])}, "
                    f"{out.nbytes}, {params});"
                )
            else:  # the operands' tiles may be larger (halo): add row by row
                c = out.shape[3]
                ro = ps.of(op.outputs[0])
                ow_ = ps.col([r[3] - r[2] for r in ro])
                rows = [f"(y) * {ow_} * {c}"]
                for t in op.inputs[:2]:
                    ri = ps.of(t)
                    dy = ps.col([a[0] - b[0] for a, b in zip(ro, ri, strict=True)])
                    dx = ps.col([a[2] - b[2] for a, b in zip(ro, ri, strict=True)])
                    wi = ps.col([b[3] - b[2] for b in ri])
                    rows.append(f"((y + {dy}) * {wi} + {dx}) * {c}")
                oh_ = ps.col([r[1] - r[0] for r in ro])
                body += [
                    f"    for (int32_t y = 0; y < {oh_}; ++y) {{",
                    f"        te_add({p(op.inputs[0])} + {rows[1]}, {p(op.inputs[1])} + "
                    f"{rows[2]}, {p(op.outputs[0])} + {rows[0]}, {ow_} * {c}, {params});",
                    "    }",
                ]
        elif op.kind in ("avg_pool2d", "max_pool2d"):
            lo, hi = activation_range(op.options.get("activation", "none"), out.s, out.zp)
            is_max = int(op.kind == "max_pool2d")
            body.append(
                f"    te_pool({p(op.inputs[0])}, {p(op.outputs[0])}, {dims}, {cin}, "
                f"{geo['oh']}, {geo['ow']}, {kh}, {kw}, {sh}, {sw}, {geo['pt']}, {geo['pl']}, "
                f"{lo}, {hi}, {is_max});"
            )
        elif op.kind == "reshape":
            if plan.offset(op.outputs[0]) != plan.offset(op.inputs[0]):
                body.append(
                    f"    te_copy({ptr(op.outputs[0])}, {ptr(op.inputs[0])}, {out.nbytes});"
                )
            else:
                body.append("    /* a view of its input: no code */")
        elif op.kind == "pad":
            inp = g.tensors[op.inputs[0]]
            _, h, wd, c = inp.shape
            _, oh, ow, _ = out.shape
            (pt, _pb), (pl, _pr) = op.options["paddings"]
            body.append(
                f"    te_pad({ptr(op.inputs[0])}, {ptr(op.outputs[0])}, {h}, {wd}, {c}, {oh}, "
                f"{ow}, {pt}, {pl}, {out.zp});"
            )
        elif op.kind == "softmax":
            body.append(_softmax_call(g, op, ptr))
        else:
            raise UnsupportedOperatorError(f"the C code generator has no {op.kind!r} kernel")
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
    em.wide_kps = wide_kps
    em.looped_kps = looped_kps
    em.pair_kps = pair_kps
    return scratch, inplace


def _add_table(off: int, mult: int, shift: int) -> np.ndarray:
    """te_add_scale((x + off) * 2^21, mult, -shift) for x = -128 .. 127 (the fast ADD path)."""
    e = -shift
    out = []
    for x in range(-128, 128):
        x2 = (x + off) * (1 << 21)
        h = (x2 * mult + (1 << 31)) >> 32  # SMMULR
        out.append(h if e == 0 else (h + (1 << (e - 1)) + (x2 >> 31)) >> e)
    return np.asarray(out, dtype=np.int64)


def _add_params(
    g: Graph, op: Op
) -> tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int]]:
    """TF-Lite's ADD parameters: ((offset, multiplier, shift) per input, output (mult, shift))."""
    a, b, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    twice_max = 2 * max(a.s, b.s)
    m1, s1 = quantize_multiplier(a.s / twice_max)
    m2, s2 = quantize_multiplier(b.s / twice_max)
    mo, so = quantize_multiplier(twice_max / ((1 << 20) * out.s))
    return (-a.zp, m1, s1), (-b.zp, m2, s2), (mo, so)


def _softmax_call(g: Graph, op: Op, ptr: Callable[[str], str]) -> str:
    """``te_softmax`` over the last axis with TF-Lite's PreprocessSoftmaxScaling parameters."""
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if out.zp != -128 or abs(out.s - 1 / 256) > 1e-9:
        raise ValueError(f"softmax {op.name}: TF-Lite needs output scale 1/256 and zero point -128")
    mult, shift, diff_min = softmax_params(float(op.options.get("beta", 1.0)), inp.s)
    depth = inp.shape[-1]
    rows = inp.nbytes // depth
    return (
        f"    te_softmax({ptr(op.inputs[0])}, {ptr(op.outputs[0])}, {rows}, {depth}, {mult}, "
        f"{shift}, {diff_min});"
    )


def _emit_reference(g: Graph, plan: MemoryPlan, em: _Emitter) -> None:
    """Emit calls to the TF-Lite Micro style reference kernels (run-time shapes in structs)."""

    def ptr(t: str) -> str:
        return f"(arena + {plan.offset(t)})"

    def shape(t: str) -> str:
        s = g.tensors[t].shape
        return f"(ref_shape){{{s[1]}, {s[2]}, {s[3]}}}"

    for i, op in enumerate(g.ops):
        label = f"l{i}"
        out = g.tensors[op.outputs[0]]
        lo, hi = activation_range(op.options.get("activation", "none"), out.s, out.zp)
        inp = g.tensors[op.inputs[0]]
        em.body.append(f"    /* {i}: {op.kind} {op.name} */")
        if op.kind in ("conv2d", "depthwise_conv2d", "avg_pool2d", "max_pool2d"):
            _, h, wd, _ = inp.shape
            if op.kind in ("avg_pool2d", "max_pool2d"):
                kh, kw = op.options["filter"]
            else:
                kh, kw = g.tensors[op.inputs[1]].shape[1:3]
            sh, sw = op.options["stride"]
            *_, pt, _pb, pl, _pr = resolve_padding(h, wd, kh, kw, (sh, sw), op.options["padding"])
            params = f"{{{sh}, {sw}, {pt}, {pl}, {-inp.zp}, {out.zp}, {lo}, {hi}}}"
        elif op.kind == "fully_connected":
            params = f"{{1, 1, 0, 0, {-inp.zp}, {out.zp}, {lo}, {hi}}}"
        if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected", "avg_pool2d", "max_pool2d"):
            em.consts.append(f"static const ref_params {label}_params = {params};")
        if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
            w, b = g.tensors[op.inputs[1]], g.tensors[op.inputs[2]]
            mult, shift = _requant(g, op, out.shape[-1])
            em.array(f"{label}_mult", "int32_t", mult)
            em.array(f"{label}_shift", "int32_t", shift)
            em.array(f"{label}_w", "int8_t", w.data)
            em.array(f"{label}_b", "int32_t", b.data)
            args = f"&{label}_params, {label}_mult, {label}_shift"
        if op.kind == "conv2d":
            em.body.append(
                f"    ref_conv2d({args}, {shape(op.inputs[0])}, {ptr(op.inputs[0])}, {kh}, {kw}, "
                f"{label}_w, {label}_b, {shape(op.outputs[0])}, {ptr(op.outputs[0])});"
            )
        elif op.kind == "depthwise_conv2d":
            if op.options.get("depth_multiplier", 1) != 1:
                raise UnsupportedOperatorError("depthwise_conv2d with depth_multiplier != 1")
            em.body.append(
                f"    ref_depthwise_conv2d({args}, {shape(op.inputs[0])}, {ptr(op.inputs[0])}, "
                f"{kh}, {kw}, {label}_w, {label}_b, {shape(op.outputs[0])}, "
                f"{ptr(op.outputs[0])});"
            )
        elif op.kind == "fully_connected":
            n_in = int(np.prod(inp.shape[1:]))
            em.body.append(
                f"    ref_fully_connected({args}, {n_in}, {ptr(op.inputs[0])}, {label}_w, "
                f"{label}_b, {out.shape[-1]}, {ptr(op.outputs[0])});"
            )
        elif op.kind == "add":
            (a_off, am, ash), (b_off, bm, bsh), (om, osh) = _add_params(g, op)
            em.consts.append(
                f"static const ref_add_params {label}_params = {{20, {a_off}, {am}, {ash}, "
                f"{b_off}, {bm}, {bsh}, {out.zp}, {om}, {osh}, {lo}, {hi}}};"
            )
            em.body.append(
                f"    ref_add(&{label}_params, {out.nbytes}, {ptr(op.inputs[0])}, "
                f"{ptr(op.inputs[1])}, {ptr(op.outputs[0])});"
            )
        elif op.kind in ("avg_pool2d", "max_pool2d"):
            fn = "ref_avg_pool2d" if op.kind == "avg_pool2d" else "ref_max_pool2d"
            em.body.append(
                f"    {fn}(&{label}_params, {shape(op.inputs[0])}, {ptr(op.inputs[0])}, {kh}, "
                f"{kw}, {shape(op.outputs[0])}, {ptr(op.outputs[0])});"
            )
        elif op.kind == "reshape":
            em.body.append(
                f"    ref_copy({out.nbytes}, {ptr(op.inputs[0])}, {ptr(op.outputs[0])});"
            )
        elif op.kind == "pad":
            (pt, _pb), (pl, _pr) = op.options["paddings"]
            em.body.append(
                f"    ref_pad({shape(op.inputs[0])}, {ptr(op.inputs[0])}, {pt}, {pl}, "
                f"{out.zp}, {shape(op.outputs[0])}, {ptr(op.outputs[0])});"
            )
        elif op.kind == "softmax":
            em.body.append(_softmax_call(g, op, ptr))
        else:
            raise UnsupportedOperatorError(f"the C code generator has no {op.kind!r} kernel")


MAKEFILE = """\
# Host build of the generated model (an MCU build compiles every .c but main_host.c).
CC ?= gcc
CFLAGS ?= -O2 -std=c99 -Wall -Wextra
SRCS := $(wildcard *.c)
HDRS := $(wildcard *.h)

model_host: $(SRCS) $(HDRS)
\t$(CC) $(CFLAGS) -o $@ $(SRCS)

clean:
\trm -f model_host

.PHONY: clean
"""


def generate(g: Graph, out_dir: str | Path, options: CodegenOptions = CodegenOptions()) -> CProject:
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
        base_scratch, _ = _emit_specialized(code_graph, plan, options, _Emitter(), 0)
        scratch, inplace = _emit_specialized(
            code_graph,
            plan,
            options,
            em,
            activation_bytes,
            # per layer (the latency build) te_conv1x1_wc may take cache_scratch and every
            # eligible convolution runs two pixels per pass; patch by patch (the memory build)
            # both stay within the scratch the model needs anyway
            wc_scratch=_align(base_scratch, 8)
            if options.patch_ops
            else max(_align(base_scratch, 8), options.cache_scratch),
            pair_scratch=_align(base_scratch, 8) if options.patch_ops else None,
        )
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
    )


def build_host(
    project: CProject, *, opt: str = HOST_OPT, cc: str = "gcc", werror: bool = True
) -> Path:
    """Compile the host harness with ``cc`` (warnings are errors by default); returns the exe."""
    exe = project.out_dir / "model_host"
    cmd = [cc, opt, *HOST_CFLAGS, *(["-Werror"] if werror else []), "-o", str(exe)]
    cmd += [str(p) for p in project.sources]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"host build failed:\n{' '.join(cmd)}\n{result.stderr}")
    return exe


def build_arm(
    project: CProject, *, cc: str = "arm-none-eabi-gcc", opt: str = "-O2", werror: bool = True
) -> list[Path]:
    """Cross-compile every MCU source for Cortex-M7 (``-c``, freestanding); returns the objects."""
    objects = []
    for src in project.mcu_sources:
        obj = src.with_suffix(".o")
        cmd = [cc, *ARM_CFLAGS, opt, *(["-Werror"] if werror else []), "-c", str(src)]
        cmd += ["-o", str(obj)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"ARM build failed:\n{' '.join(cmd)}\n{result.stderr}")
        objects.append(obj)
    return objects


def run_host(exe: Path, x: np.ndarray) -> np.ndarray:
    """Run a host build on the int8 input ``x``; returns the int8 output, flattened (NHWC)."""
    data = np.ascontiguousarray(x, dtype=np.int8).tobytes()
    result = subprocess.run([str(exe)], input=data, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{exe} failed: {result.stderr.decode(errors='replace')}")
    return np.frombuffer(result.stdout, dtype=np.int8).copy()


def run_host_batch(exe: Path, xs: np.ndarray) -> np.ndarray:
    """Run a host build once on every int8 input of ``xs`` (first axis: the inputs), in one
    process; returns the int8 outputs, one flattened (NHWC) row per input."""
    xs = np.ascontiguousarray(xs, dtype=np.int8)
    n = len(xs)
    result = subprocess.run(
        [str(exe), "--batch"], input=xs.tobytes(), capture_output=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{exe} --batch failed: {result.stderr.decode(errors='replace')}")
    out = np.frombuffer(result.stdout, dtype=np.int8)
    if n == 0 or out.size % n:
        raise RuntimeError(f"{exe} --batch wrote {out.size} bytes for {n} inputs")
    return out.reshape(n, -1).copy()


def time_host(exe: Path, x: np.ndarray, repeat: int = 100) -> float:
    """Mean host seconds per inference over ``repeat`` runs (CPU time measured in the harness)."""
    data = np.ascontiguousarray(x, dtype=np.int8).tobytes()
    result = subprocess.run([str(exe), str(repeat)], input=data, capture_output=True, check=True)
    return float(result.stderr.decode().strip().splitlines()[-1])
