"""Emitter infrastructure of the C code generator: its options, the accumulator of constants and
statements, the requantization and GEMM layout helpers, and the per-operator emission contexts
that the emitters in :mod:`common.mcu.ops` receive from :func:`common.mcu.codegen.generate`.

Requantization: every kernel fuses requantization and the activation clamp into its epilogue;
where it is provably exact (right shift >= 1, ``|acc| < 2^30`` from the weights and bias, no
int32 overflow) a short SMMLAR-based sequence (``te_output_fast``, per-channel
``{multiplier, e, r}`` arrays from :func:`_fast_requant`) replaces the 64-bit
MultiplyByQuantizedMultiplier.

GEMM layout (convolutions and fully connected layers): with SIMD each pixel's K values are widened
to int16 once (in SXTB16 order, two pixels side by side) and the weights of each output-channel
pair are stored interleaved, K padded to a multiple of 4, so one ``LDRD`` fetches a group for both
pixels or both channels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from common.mcu.graph import Graph, Op, Tensor, resolve_padding
from common.mcu.quant import INT32_MAX, INT32_MIN, activation_range, requant_params

if TYPE_CHECKING:
    from common.mcu.memory import MemoryPlan


TILE = "@tile"  # suffix of the buffers holding one tile of a patch-stage tensor


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
            anyway, whichever is larger; patch by patch (the memory build) within the latter;
            and always within the room no tensor alive during the layer uses (the cache never
            grows the arena).
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
            where the two widened pixels fit in the room no tensor alive during the layer uses.
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


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


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


# ------------------------------------------------------------------ per-operator contexts
@dataclass(frozen=True)
class Window:
    """Geometry of a windowed operator (convolution, depthwise, pool) at one call site.

    ``geo`` holds the C expressions of the extents and paddings the kernel gets: literals for a
    whole tensor, per-tile table entries (``T[k]``) inside the patch stage, and ``max_oh`` /
    ``max_ow`` (literals: the largest tile's output extents, which size the scratch).
    """

    h: int
    w: int
    cin: int
    oh: int
    ow: int
    cout: int
    kh: int
    kw: int
    sh: int
    sw: int
    pt: int
    pl: int
    ph: int  # a fused max pool's window (fuse_pool), else 1 x 1
    pw: int
    geo: dict[str, str]

    @property
    def dims(self) -> str:
        """The input extents argument (``"H, W"``)."""
        return f"{self.geo['h']}, {self.geo['w']}"


@dataclass
class SpecializedModel:
    """Emission state of one model's specialized (TinyEngine-style) code, shared by its operators.

    Attributes:
        g: the graph the code runs (PAD and pools fused).
        plan: its memory plan.
        options: the generator's options.
        em: where constants, statements and functions go.
        scratch_off: the arena offset of the kernels' scratch (after the activations), where an
            operator's scratch goes unless ``scratch_at`` places it.
        wc_scratch: the scratch te_conv1x1_wc's pixel blocks may use (0: none).
        room: per operator index, the largest free range of the arena during it (it caps
            ``wc_scratch``, and ``pair_scratch`` when given, so the weight cache and, patch by
            patch, the two-pixel code never grow the arena; None: no cap).
        pair_scratch: the scratch the two-pixel per-channel code may use (0: none; None: any).
        patch: the patch stage's emission state (``patch.n`` operators run tile by tile).
        scratch: the scratch the operators emitted so far need (the largest).
        needs: the scratch bytes of each operator that needs some, by operator index.
        scratch_at: per operator index, the arena offset of its scratch (a gap no tensor alive
            during the operator uses: :func:`common.mcu.planning.place_scratch`).
        inplace: names of the operators that run in place.
        wide_kps, looped_kps, pair_kps: record lengths of the per-channel macros used (``te_wide.h``).
        state: per operator kind, what its ``prepare`` hook decided for the whole model.
        rules: replacements of kernel-selection rules by function name (see :meth:`rule`).
    """

    g: Graph
    plan: MemoryPlan
    options: CodegenOptions
    em: _Emitter
    scratch_off: int
    wc_scratch: int
    pair_scratch: int | None
    patch: Any
    scratch: int = 0
    needs: dict[int, int] = field(default_factory=dict)
    scratch_at: dict[int, int] = field(default_factory=dict)
    room: dict[int, int] | None = None
    inplace: list[str] = field(default_factory=list)
    wide_kps: list[int] = field(default_factory=list)
    looped_kps: list[int] = field(default_factory=list)
    pair_kps: list[int] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    rules: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def rule(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The kernel-selection rule ``fn`` (a function of an operator module that picks the
        kernel of a layer), or its replacement in ``rules`` (:func:`common.mcu.codegen.generate`
        takes them from its own module, where the tests replace them to force a kernel)."""
        return self.rules.get(fn.__name__, fn)


class _OpContext:
    """What both emitter contexts derive from their operator index ``i``, operator ``op`` and
    graph ``g``: the prefix of the operator's constants and its output tensor."""

    i: int
    op: Op
    g: Graph

    @property
    def label(self) -> str:
        """The prefix of the operator's constants (``l<i>``)."""
        return f"l{self.i}"

    @property
    def out(self) -> Tensor:
        return self.g.tensors[self.op.outputs[0]]


@dataclass
class SpecializedOp(_OpContext):
    """What an operator's specialized emitter works with: the model's state, the operator (its
    index ``i``) and ``body``, the statement list its code goes to (the driver moves it into a
    function of its own, and inside the patch stage into the loop over the tiles)."""

    m: SpecializedModel
    i: int
    op: Op
    body: list[str]
    in_stage: bool

    @property
    def g(self) -> Graph:
        return self.m.g

    @property
    def options(self) -> CodegenOptions:
        return self.m.options

    @property
    def em(self) -> _Emitter:
        return self.m.em

    def ptr(self, t: str) -> str:
        """The whole tensor ``t`` in the arena."""
        return f"(arena + {self.m.plan.offset(t)})"

    def p(self, t: str) -> str:
        """Tensor ``t`` as the kernel reads it: the tile buffer inside the patch stage."""
        if self.in_stage:
            return f"(arena + {self.m.plan.offset(t + TILE)})"
        return self.ptr(t)

    @property
    def scratch_off(self) -> int:
        """The arena offset of this operator's scratch."""
        return self.m.scratch_at.get(self.i, self.m.scratch_off)

    @property
    def wc_scratch(self) -> int:
        """The scratch te_conv1x1_wc may use at this operator."""
        room = self.m.room
        return self.m.wc_scratch if room is None else min(self.m.wc_scratch, room.get(self.i, 0))

    def need_scratch(self, nbytes: int) -> None:
        """Reserve ``nbytes`` of scratch at :attr:`scratch_off` for this operator."""
        self.m.scratch = max(self.m.scratch, nbytes)
        self.m.needs[self.i] = max(self.m.needs.get(self.i, 0), nbytes)

    def rq_arg(self, rows: np.ndarray | None) -> str:
        """The fast requantization rows as a constant array, or a NULL pointer."""
        if rows is None:
            return "(const int32_t *)0"
        return self.em.array(f"{self.label}_rq", "int32_t", rows)

    def act_range(self) -> tuple[int, int]:
        """The fused activation's int8 bounds."""
        out = self.out
        return activation_range(self.op.options.get("activation", "none"), out.s, out.zp)

    def runs_inplace(self) -> bool:
        """Whether the plan gives the output an input's buffer (recorded in ``m.inplace``)."""
        if self.in_stage or self.m.plan.aliases.get(self.op.outputs[0]) not in self.op.inputs:
            return False
        self.m.inplace.append(self.op.name or self.label)
        return True

    def window(self, kh: int, kw: int) -> Window:
        """The geometry of a ``kh x kw`` window over the operator's input."""
        op, out = self.op, self.out
        _, h, wd, cin = self.g.tensors[op.inputs[0]].shape
        _, oh, ow, cout = out.shape
        sh, sw = op.options["stride"]
        *_, pt, _pb, pl, _pr = resolve_padding(h, wd, kh, kw, (sh, sw), op.options["padding"])
        ph, pw = op.options.get("pool", (1, 1))  # a fused max pool (fuse_pool)
        geo = (
            self.m.patch.window(self.g, op, sh * ph, sw * pw, pt, pl)
            if self.in_stage
            else {
                k: str(v)
                for k, v in dict(
                    h=h, w=wd, oh=oh, ow=ow, pt=pt, pl=pl, max_oh=oh, max_ow=ow
                ).items()
            }
        )
        return Window(h, wd, cin, oh, ow, cout, kh, kw, sh, sw, pt, pl, ph, pw, geo)


@dataclass
class ReferenceOp(_OpContext):
    """What an operator's reference (TF-Lite Micro style) emitter works with."""

    g: Graph
    plan: MemoryPlan
    em: _Emitter
    i: int
    op: Op
    lo: int  # the fused activation's int8 bounds
    hi: int

    @property
    def inp(self) -> Tensor:
        return self.g.tensors[self.op.inputs[0]]

    def ptr(self, t: str) -> str:
        return f"(arena + {self.plan.offset(t)})"

    def shape(self, t: str) -> str:
        """``ref_shape`` of an NHWC tensor (batch dropped)."""
        s = self.g.tensors[t].shape
        return f"(ref_shape){{{s[1]}, {s[2]}, {s[3]}}}"

    def body(self, line: str) -> None:
        self.em.body.append(line)

    def params(self, sh: int, sw: int, pt: int, pl: int) -> None:
        """Declare the operator's ``ref_params`` (stride, padding, offsets, activation)."""
        params = f"{{{sh}, {sw}, {pt}, {pl}, {-self.inp.zp}, {self.out.zp}, {self.lo}, {self.hi}}}"
        self.em.consts.append(f"static const ref_params {self.label}_params = {params};")

    def window_params(self, kh: int, kw: int) -> None:
        """Declare the ``ref_params`` of a ``kh x kw`` window over the input."""
        _, h, wd, _ = self.inp.shape
        sh, sw = self.op.options["stride"]
        *_, pt, _pb, pl, _pr = resolve_padding(h, wd, kh, kw, (sh, sw), self.op.options["padding"])
        self.params(sh, sw, pt, pl)

    def weights(self) -> str:
        """Emit the requantization arrays, weights and bias; returns the kernel's first arguments."""
        g, op, label = self.g, self.op, self.label
        w, b = g.tensors[op.inputs[1]], g.tensors[op.inputs[2]]
        mult, shift = _requant(g, op, self.out.shape[-1])
        self.em.array(f"{label}_mult", "int32_t", mult)
        self.em.array(f"{label}_shift", "int32_t", shift)
        self.em.array(f"{label}_w", "int8_t", w.data)
        self.em.array(f"{label}_b", "int32_t", b.data)
        return f"&{label}_params, {label}_mult, {label}_shift"
