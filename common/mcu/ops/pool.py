"""AVERAGE_POOL_2D and MAX_POOL_2D: TF-Lite's int8 pools, and their C code.

Reference kernels: TF-Lite Micro's ``AveragePool`` / ``MaxPool`` (``ref_avg_pool2d``,
``ref_max_pool2d``); padding is excluded from the window (the average divides by the valid
count, rounding half away from zero). Specialized code: one ``te_pool`` (specialized per call
site), also on tiles. A non-overlapping VALID max pool after a convolution with per-channel code
is fused into it instead (:mod:`common.mcu.ops.conv2d`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.mcu.emit import ReferenceOp, SpecializedOp
from common.mcu.graph import Graph, Op, Tensor
from common.mcu.ops.base import (
    OpSpec,
    Region,
    TFLiteMapping,
    patches,
    read_window_options,
    strided_window,
    window_region,
    write_window_options,
)
from common.mcu.quant import activation_range


# ------------------------------------------------------------------ reference semantics
def _pool_windows(op: Op, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Windows (oh, ow, kh, kw, C) and a validity mask (oh, ow, kh, kw) excluding padding."""
    kh, kw = op.options["filter"]
    xi = x[0].astype(np.int64)
    win, _oh, _ow = patches(xi, kh, kw, op.options["stride"], op.options["padding"], 0)
    ones = np.ones((*x.shape[1:3], 1), dtype=np.int64)
    valid, _, _ = patches(ones, kh, kw, op.options["stride"], op.options["padding"], 0)
    return win, valid[..., 0].astype(bool)


def avg_pool2d(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    """TF-Lite's int8 AVERAGE_POOL_2D on the input value ``x``."""
    out = g.tensors[op.outputs[0]]
    win, valid = _pool_windows(op, x)
    total = (win * valid[..., None]).sum(axis=(2, 3))
    count = valid.sum(axis=(2, 3))[..., None]
    # Round half away from zero, as TF-Lite's integer AveragePool does.
    avg = np.where(total > 0, (total + count // 2) // count, -((-total + count // 2) // count))
    lo, hi = activation_range(op.options.get("activation", "none"), out.s, out.zp)
    return np.clip(avg, lo, hi).astype(np.int8)[None]


def max_pool2d(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    """TF-Lite's int8 MAX_POOL_2D on the input value ``x``."""
    out = g.tensors[op.outputs[0]]
    win, valid = _pool_windows(op, x)
    m = np.where(valid[..., None], win, -(2**31)).max(axis=(2, 3))
    lo, hi = activation_range(op.options.get("activation", "none"), out.s, out.zp)
    return np.clip(m, lo, hi).astype(np.int8)[None]


# ------------------------------------------------------------------ C code
def _emit_reference(c: ReferenceOp) -> None:
    op = c.op
    kh, kw = op.options["filter"]
    c.window_params(kh, kw)
    fn = "ref_avg_pool2d" if op.kind == "avg_pool2d" else "ref_max_pool2d"
    c.body(
        f"    {fn}(&{c.label}_params, {c.shape(op.inputs[0])}, {c.ptr(op.inputs[0])}, {kh}, "
        f"{kw}, {c.shape(op.outputs[0])}, {c.ptr(op.outputs[0])});"
    )


def _emit_specialized(c: SpecializedOp) -> None:
    op, p = c.op, c.p
    win = c.window(*op.options["filter"])
    geo = win.geo
    lo, hi = c.act_range()
    is_max = int(op.kind == "max_pool2d")
    c.body.append(
        f"    te_pool({p(op.inputs[0])}, {p(op.outputs[0])}, {win.dims}, {win.cin}, "
        f"{geo['oh']}, {geo['ow']}, {win.kh}, {win.kw}, {win.sh}, {win.sw}, {geo['pt']}, "
        f"{geo['pl']}, {lo}, {hi}, {is_max});"
    )


# ------------------------------------------------------------------ memory, TF-Lite
def _needed_region(g: Graph, op: Op, out: Region) -> Region:
    return window_region(g, op, out, strided_window(g, op, *op.options["filter"]))


def _write(fb: Any, op: Op, g: Graph) -> tuple[int, Any]:
    opt = write_window_options(fb, fb.Pool2DOptionsT(), op)
    opt.filterHeight, opt.filterWidth = op.options["filter"]
    return fb.BuiltinOptions.Pool2DOptions, opt


def _read(kind: str) -> Any:
    def read(fb: Any, o: Any, inputs: list[Tensor], i: int) -> dict[str, Any]:
        options = read_window_options(fb, o, kind, i)
        options["filter"] = (o.filterHeight, o.filterWidth)
        return options

    return read


def _spec(kind: str, builtin: str, semantics: Any) -> OpSpec:
    return OpSpec(
        kind=kind,
        reference=lambda g, op, args: semantics(g, op, args[0]),
        tflite=TFLiteMapping(builtin, _write, _read(kind)),
        emit_reference=_emit_reference,
        emit_specialized=_emit_specialized,
        needed_region=_needed_region,
        tiles=True,
        tiled_kernel=True,
    )


AVG_SPEC = _spec("avg_pool2d", "AVERAGE_POOL_2D", avg_pool2d)
MAX_SPEC = _spec("max_pool2d", "MAX_POOL_2D", max_pool2d)
