"""FULLY_CONNECTED: TF-Lite's int8 fully connected layer, and its C code.

Reference kernel: TF-Lite Micro's ``FullyConnected`` (``ref_fully_connected``). Specialized code:
the convolutions' GEMM on one row (``te_fully_connected``) with the same SIMD weight layout
(:func:`~common.mcu.emit._gemm_weights`), the input offset folded into the bias
(``fold_offset``), and the fast requantization where it is exact.
"""

from __future__ import annotations

import numpy as np

from common.mcu.emit import (
    ReferenceOp,
    SpecializedOp,
    _acc_bound,
    _fast_requant,
    _gemm_scratch,
    _gemm_scratch_ptrs,
    _gemm_weights,
    _padded_k,
    _requant,
)
from common.mcu.graph import Graph, Op
from common.mcu.ops.base import (
    OpSpec,
    Region,
    TFLiteMapping,
    activation_options,
    finish,
    unit_region,
)
from common.mcu.quant import requant_params


# ------------------------------------------------------------------ reference semantics
def fully_connected(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    """TF-Lite's int8 FULLY_CONNECTED on the input value ``x`` (flattened)."""
    inp, w, b, out = (g.tensors[n] for n in (*op.inputs[:3], op.outputs[0]))
    xi = x.reshape(1, -1).astype(np.int64) - inp.zp
    acc = xi @ w.data.astype(np.int64).T + b.data.astype(np.int64)
    mult, shift = requant_params(inp.s, w.scale, out.s)
    return finish(acc, mult, shift, out, op.options.get("activation", "none")).reshape(out.shape)


def _reference(g: Graph, op: Op, args: list[np.ndarray]) -> np.ndarray:
    return fully_connected(g, op, args[0])


# ------------------------------------------------------------------ C code
def _emit_reference(c: ReferenceOp) -> None:
    op, label, inp, out = c.op, c.label, c.inp, c.out
    c.params(1, 1, 0, 0)
    args = c.weights()
    n_in = int(np.prod(inp.shape[1:]))
    c.body(
        f"    ref_fully_connected({args}, {n_in}, {c.ptr(op.inputs[0])}, {label}_w, "
        f"{label}_b, {out.shape[-1]}, {c.ptr(op.outputs[0])});"
    )


def _emit_specialized(c: SpecializedOp) -> None:
    g, op, options, em, out, label = c.g, c.op, c.options, c.em, c.out, c.label
    ptr, scratch_off = c.ptr, c.scratch_off
    inp, w, b = (g.tensors[n] for n in op.inputs[:3])
    off = -inp.zp
    lo, hi = c.act_range()
    n_out = out.shape[-1]
    mult, shift = _requant(g, op, n_out)
    em.array(f"{label}_mult", "int32_t", mult)
    em.array(f"{label}_shift", "int32_t", shift)
    bias = b.data.astype(np.int64)
    n_in = int(np.prod(inp.shape[1:]))
    if options.fold_offset:
        bias = bias + off * w.data.astype(np.int64).sum(axis=1)
        off = 0
    kp = _padded_k(n_in, options)
    em.array(f"{label}_w", "int8_t", _gemm_weights(w.data, kp, options))
    em.array(f"{label}_b", "int32_t", bias)
    wabs = np.abs(w.data.astype(np.int64)).sum(axis=1)
    rq = c.rq_arg(_fast_requant(mult, shift, out.zp, _acc_bound(bias, wabs, off)))
    c.need_scratch(_gemm_scratch(kp, options, im2col=kp != n_in, rows=1))
    col, col16 = _gemm_scratch_ptrs(kp, scratch_off, options, im2col=kp != n_in, rows=1)
    c.body.append(
        f"    te_fully_connected({ptr(op.inputs[0])}, {ptr(op.outputs[0])}, {col}, "
        f"{col16}, {n_in}, {n_out}, {kp}, {label}_w, {label}_b, {label}_mult, "
        f"{label}_shift, {rq}, {off}, {out.zp}, {lo}, {hi});"
    )


# ------------------------------------------------------------------ MACs, TF-Lite
def _macs(g: Graph, op: Op, region: Region | None) -> int:
    return int(np.prod(g.tensors[op.inputs[1]].shape))


_write, _read = activation_options("FullyConnectedOptionsT", "FullyConnectedOptions")


SPEC = OpSpec(
    kind="fully_connected",
    reference=_reference,
    tflite=TFLiteMapping("FULLY_CONNECTED", _write, _read),
    emit_reference=_emit_reference,
    emit_specialized=_emit_specialized,
    needed_region=unit_region,
    macs=_macs,
)
