"""DEPTHWISE_CONV_2D (depth multiplier 1): TF-Lite's int8 depthwise convolution, and its C code.

Reference kernel (``kernels="reference"``): TF-Lite Micro's ``DepthwiseConvPerChannel``
(``ref_depthwise_conv2d``).

Specialized code (TinyEngine, MCUNet Section 3.2):

* **in-place depthwise** (``inplace``): the output overwrites the input channel by channel (each
  channel is first copied into a zero-padded plane in scratch), as planned by
  :func:`~common.mcu.memory.plan_tinyengine` (this module's in-place rule: the input dies here
  and is not the graph input; "2N -> N + 1").
* **depthwise on a padded channel plane**: every depthwise layer gathers one channel at a time
  into a ``PH x PW`` plane bordered with the input zero point, so no tap is bounds-checked; with
  ``unroll`` the 3x3/5x5/7x7 taps are fully unrolled (offset term precomputed per channel,
  ``te_dw_unrolled.h``), and with ``simd`` as well a 3x3 window uses SMLAD on tap pairs (two
  outputs at a time for stride 1); 5x5 and 7x7 windows take a row's taps four at a time with
  ``SMLAD``.
* **depthwise on int16 row rings** (``dw_rows``): rows of the padded channel plane are widened
  to int16 once (LDRSB/STRH) into a small ring instead of a whole int8 plane; LDRD fetches two
  value pairs and SMLAD / SMLATB / SMLABT against (w0, w1) and (w1, w2) pairs compute two
  outputs per window row; 3x3 stride 1 runs two output rows at a time as one asm loop with the
  requantization and the stores (literal extents), stride 2 and 5x5 / 7x7 (generated
  ``te_dwk.h``, :mod:`common.mcu.asm`) a whole output row; te_dw3_ring's bias comes with
  ``off * sum(w)`` folded in.
* **valid-tap depthwise on tiny planes** (``dw_small``): for small output planes each channel is
  widened to int16 with the input offset added, so taps in the padding are skipped instead of
  multiplied by zero (te_dw_small; per-column tap ranges are literals, SMLAD on weight pairs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.mcu.emit import (
    CodegenOptions,
    ReferenceOp,
    SpecializedOp,
    _acc_bound,
    _fast_requant,
    _requant,
)
from common.mcu.graph import Graph, Op, Tensor, UnsupportedOperatorError
from common.mcu.ops.base import (
    OpSpec,
    Region,
    TFLiteMapping,
    finish,
    patches,
    read_window_options,
    strided_window,
    window_region,
    write_window_options,
)
from common.mcu.quant import requant_params


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


# ------------------------------------------------------------------ reference semantics
def depthwise_conv2d(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    """TF-Lite's int8 DEPTHWISE_CONV_2D (per-channel weights) on the input value ``x``."""
    inp, w, b, out = (g.tensors[n] for n in (*op.inputs[:3], op.outputs[0]))
    if op.options.get("depth_multiplier", 1) != 1:
        raise UnsupportedOperatorError(
            "depthwise_conv2d with depth_multiplier != 1 is not supported"
        )
    kh, kw = w.shape[1], w.shape[2]
    xi = x[0].astype(np.int64) - inp.zp
    win, oh, ow = patches(
        xi, kh, kw, op.options["stride"], op.options["padding"], 0
    )  # (oh, ow, kh, kw, C)
    acc = np.einsum("abhwc,hwc->abc", win, w.data[0].astype(np.int64)).reshape(oh * ow, -1)
    acc = acc + b.data.astype(np.int64)
    mult, shift = requant_params(inp.s, w.scale, out.s)
    return finish(acc, mult, shift, out, op.options["activation"]).reshape(1, oh, ow, -1)


def _reference(g: Graph, op: Op, args: list[np.ndarray]) -> np.ndarray:
    return depthwise_conv2d(g, op, args[0])


# ------------------------------------------------------------------ C code
def _check_multiplier(op: Op) -> None:
    if op.options.get("depth_multiplier", 1) != 1:
        raise UnsupportedOperatorError("depthwise_conv2d with depth_multiplier != 1")


def _emit_reference(c: ReferenceOp) -> None:
    g, op, label = c.g, c.op, c.label
    kh, kw = g.tensors[op.inputs[1]].shape[1:3]
    c.window_params(kh, kw)
    args = c.weights()
    _check_multiplier(op)
    c.body(
        f"    ref_depthwise_conv2d({args}, {c.shape(op.inputs[0])}, {c.ptr(op.inputs[0])}, "
        f"{kh}, {kw}, {label}_w, {label}_b, {c.shape(op.outputs[0])}, "
        f"{c.ptr(op.outputs[0])});"
    )


def _emit_specialized(c: SpecializedOp) -> None:
    g, op, options, em, out, label = c.g, c.op, c.options, c.em, c.out, c.label
    p, body, in_stage = c.p, c.body, c.in_stage
    inp, w, b = (g.tensors[n] for n in op.inputs[:3])
    off = -inp.zp
    lo, hi = c.act_range()
    mult, shift = _requant(g, op, out.shape[-1])
    em.array(f"{label}_mult", "int32_t", mult)
    em.array(f"{label}_shift", "int32_t", shift)
    bias = b.data.astype(np.int64)
    win = c.window(w.shape[1], w.shape[2])
    h, wd, cin, oh, ow = win.h, win.w, win.cin, win.oh, win.ow
    kh, kw, sh, sw, pt, pl = win.kh, win.kw, win.sh, win.sw, win.pt, win.pl
    geo, dims = win.geo, win.dims
    _check_multiplier(op)
    dw_small, dw_ring, dwk_ring = (c.m.rule(f) for f in (_dw_small, _dw_ring, _dwk_ring))
    small = not in_stage and dw_small(options, kh, kw, sh, sw, h, wd, oh, ow, pt, pl)
    if small:
        em.array(f"{label}_w", "int8_t", _dw_small_weights(w.data[0]))
    else:
        em.array(f"{label}_w", "int8_t", np.transpose(w.data[0], (2, 0, 1)))  # (C, kh, kw)
    max_oh, max_ow = int(geo["max_oh"]), int(geo["max_ow"])
    ring_w = (((max_ow - 1) * sw + kw + 1) & ~1) + 2  # ring row: halfwords, even
    ring3 = (
        not small
        and not dwk_ring(options, kh, kw, sh, sw, ow, ring_w)
        and dw_ring(options, kh, kw, sh, sw, oh, ow, ring_w)
    )
    # te_dw3_ring takes its bias with the input offset's contribution folded in
    wsum = w.data[0].astype(np.int64).sum(axis=(0, 1))
    em.array(f"{label}_b", "int32_t", bias + off * wsum if ring3 else bias)
    wabs = np.abs(w.data[0].astype(np.int64)).sum(axis=(0, 1))
    rq = c.rq_arg(_fast_requant(mult, shift, out.zp, _acc_bound(bias, wabs, off)))
    sc = f"(arena + {c.scratch_off})"
    c.runs_inplace()
    if small:
        # the widened input channel: its rows (within the windows), one halfword of slack on
        # either side
        ch = min(h, (oh - 1) * sh + kh - pt)
        rw = min(wd, (ow - 1) * sw + kw - pl) + 2
        c.need_scratch(2 * ch * rw)
        body.append(
            f"    te_dw_small({p(op.inputs[0])}, {p(op.outputs[0])}, "
            f"(int16_t *)(void *){sc}, {dims}, {cin}, {oh}, {ow}, {kh}, {sh}, {pt}, "
            f"{pl}, {rw}, {label}_w, {label}_b, {label}_mult, {label}_shift, {rq}, "
            f"{off}, {out.zp}, {lo}, {hi});"
        )
    elif dwk_ring(options, kh, kw, sh, sw, ow, ring_w):
        c.need_scratch(2 * kh * 2 * ring_w)  # the doubled ring of kh rows
        body.append(
            f"    te_dwk_ring({p(op.inputs[0])}, {p(op.outputs[0])}, "
            f"(int16_t *)(void *){sc}, {dims}, {cin}, {geo['oh']}, {geo['ow']}, {kh}, "
            f"{sh}, {geo['pt']}, {geo['pl']}, {ring_w}, {label}_w, {label}_b, "
            f"{label}_mult, {label}_shift, {rq}, {off}, {out.zp}, {lo}, {hi});"
        )
    elif ring3:
        # a ring of four int16 rows of the padded plane (LDRD offsets reach 3 rows)
        c.need_scratch(4 * 2 * ring_w)
        body.append(
            f"    te_dw3_ring({p(op.inputs[0])}, {p(op.outputs[0])}, "
            f"(int16_t *)(void *){sc}, {dims}, {cin}, {geo['oh']}, {geo['ow']}, {sh}, "
            f"{geo['pt']}, {geo['pl']}, {ring_w}, {label}_w, {label}_b, {label}_mult, "
            f"{label}_shift, {rq}, {off}, {out.zp}, {lo}, {hi});"
        )
    else:
        # the zero-padded channel plane (+ 4 bytes of slack for word loads)
        c.need_scratch(((max_oh - 1) * sh + kh) * ((max_ow - 1) * sw + kw) + 4)
        body.append(
            f"    te_depthwise_conv2d({p(op.inputs[0])}, {p(op.outputs[0])}, {sc}, "
            f"{dims}, {cin}, {geo['oh']}, {geo['ow']}, {kh}, {kw}, {sh}, {sw}, "
            f"{geo['pt']}, {geo['pl']}, {label}_w, {label}_b, {label}_mult, "
            f"{label}_shift, {rq}, {off}, {out.zp}, {lo}, {hi});"
        )


# ------------------------------------------------------------------ memory, MACs, TF-Lite
def _inplace(g: Graph, op: Op, i: int, last_use: dict[str, int]) -> tuple[str | None, int]:
    """In place where the input dies here, is not the graph input and is no smaller; the
    kernel then needs one output channel of scratch."""
    out, x = op.outputs[0], op.inputs[0]
    if last_use.get(x) == i and x not in g.inputs and g.tensors[out].nbytes <= g.tensors[x].nbytes:
        _, oh, ow, _ = g.tensors[out].shape
        return x, oh * ow
    return None, 0


def _needed_region(g: Graph, op: Op, out: Region) -> Region:
    w = g.tensors[op.inputs[1]]
    return window_region(g, op, out, strided_window(g, op, w.shape[1], w.shape[2]))


def _macs(g: Graph, op: Op, region: Region | None) -> int:
    w = g.tensors[op.inputs[1]]
    if region is None:
        out = g.tensors[op.outputs[0]]
        return int(np.prod(out.shape)) * w.shape[1] * w.shape[2]
    h0, h1, w0, w1 = region
    cout = g.tensors[op.outputs[0]].shape[3]
    return (h1 - h0) * (w1 - w0) * cout * w.shape[1] * w.shape[2]


def _write(fb: Any, op: Op, g: Graph) -> tuple[int, Any]:
    opt = write_window_options(fb, fb.DepthwiseConv2DOptionsT(), op)
    opt.dilationHFactor = opt.dilationWFactor = 1
    opt.depthMultiplier = op.options.get("depth_multiplier", 1)
    return fb.BuiltinOptions.DepthwiseConv2DOptions, opt


def _read(fb: Any, o: Any, inputs: list[Tensor], i: int) -> dict[str, Any]:
    options = read_window_options(fb, o, "depthwise_conv2d", i)
    options["depth_multiplier"] = o.depthMultiplier
    return options


SPEC = OpSpec(
    kind="depthwise_conv2d",
    reference=_reference,
    tflite=TFLiteMapping("DEPTHWISE_CONV_2D", _write, _read),
    emit_reference=_emit_reference,
    emit_specialized=_emit_specialized,
    inplace=_inplace,
    needed_region=_needed_region,
    tiles=True,
    tiled_kernel=True,
    macs=_macs,
)
