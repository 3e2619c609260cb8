"""A numpy executor of int8 graphs with TF-Lite's integer semantics (the bit-exact reference).

Each kernel mirrors TF-Lite's reference implementation (``reference_integer_ops``): offsets
subtracted in int32, int32 accumulation, per-channel requantization by
:func:`~common.mcu.quant.multiply_by_quantized_multiplier`, output zero point, clamp to the fused
activation's range. The C kernels and the tflite-micro interpreter must produce exactly the same
int8 values; the tests check all three against each other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.mcu.graph import Graph, Op, Tensor, UnsupportedOperatorError, resolve_padding
from common.mcu.quant import (
    activation_range,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    softmax_int8,
)


def requant_params(
    in_scale: float, w_scale: np.ndarray, out_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(multiplier, shift)`` arrays for ``in_scale * w_scale / out_scale``."""
    pairs = [
        quantize_multiplier(float(np.float64(in_scale) * np.float64(s) / np.float64(out_scale)))
        for s in np.atleast_1d(w_scale)
    ]
    return np.array([m for m, _ in pairs], dtype=np.int64), np.array(
        [s for _, s in pairs], dtype=np.int64
    )


def _patches(
    x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], padding: Any, pad_value: int
) -> tuple[np.ndarray, int, int]:
    """``(out_h, out_w, kh, kw, C)`` windows of ``x`` (H, W, C), padded with ``pad_value``."""
    h, w, c = x.shape
    oh, ow, pt, _pb, pl, _pr = resolve_padding(h, w, kh, kw, stride, padding)
    need_h = (oh - 1) * stride[0] + kh
    need_w = (ow - 1) * stride[1] + kw
    padded = np.full((max(need_h, h + pt), max(need_w, w + pl), c), pad_value, dtype=x.dtype)
    padded[pt : pt + h, pl : pl + w] = x
    win = np.lib.stride_tricks.sliding_window_view(
        padded, (kh, kw), axis=(0, 1)
    )  # (H', W', C, kh, kw)
    win = win[: need_h - kh + 1 : stride[0], : need_w - kw + 1 : stride[1]]
    return np.moveaxis(win, 2, -1), oh, ow  # (oh, ow, kh, kw, C)


def _finish(
    acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, out: Tensor, activation: str
) -> np.ndarray:
    lo, hi = activation_range(activation, out.s, out.zp)
    y = multiply_by_quantized_multiplier(acc, mult, shift) + out.zp
    return np.clip(y, lo, hi).astype(np.int8)


def conv2d(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    inp, w, b, out = (g.tensors[n] for n in (*op.inputs[:3], op.outputs[0]))
    kh, kw = w.shape[1], w.shape[2]
    xi = x[0].astype(np.int64) - inp.zp  # offsets subtracted: padding is then exactly zero
    win, oh, ow = _patches(xi, kh, kw, op.options["stride"], op.options["padding"], 0)
    acc = win.reshape(oh * ow, -1) @ w.data.reshape(w.shape[0], -1).astype(np.int64).T  # (P, O)
    acc = acc + b.data.astype(np.int64)
    mult, shift = requant_params(inp.s, w.scale, out.s)
    return _finish(acc, mult, shift, out, op.options["activation"]).reshape(1, oh, ow, -1)


def depthwise_conv2d(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    inp, w, b, out = (g.tensors[n] for n in (*op.inputs[:3], op.outputs[0]))
    if op.options.get("depth_multiplier", 1) != 1:
        raise UnsupportedOperatorError(
            "depthwise_conv2d with depth_multiplier != 1 is not supported"
        )
    kh, kw = w.shape[1], w.shape[2]
    xi = x[0].astype(np.int64) - inp.zp
    win, oh, ow = _patches(
        xi, kh, kw, op.options["stride"], op.options["padding"], 0
    )  # (oh, ow, kh, kw, C)
    acc = np.einsum("abhwc,hwc->abc", win, w.data[0].astype(np.int64)).reshape(oh * ow, -1)
    acc = acc + b.data.astype(np.int64)
    mult, shift = requant_params(inp.s, w.scale, out.s)
    return _finish(acc, mult, shift, out, op.options["activation"]).reshape(1, oh, ow, -1)


def fully_connected(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    inp, w, b, out = (g.tensors[n] for n in (*op.inputs[:3], op.outputs[0]))
    xi = x.reshape(1, -1).astype(np.int64) - inp.zp
    acc = xi @ w.data.astype(np.int64).T + b.data.astype(np.int64)
    mult, shift = requant_params(inp.s, w.scale, out.s)
    return _finish(acc, mult, shift, out, op.options.get("activation", "none")).reshape(out.shape)


def add(g: Graph, op: Op, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """TF-Lite's quantized ADD: both inputs rescaled to a common 2^20-scaled domain, summed, rescaled."""
    a, b, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    left_shift = 20
    twice_max = 2 * max(a.s, b.s)
    m1, s1 = quantize_multiplier(a.s / twice_max)
    m2, s2 = quantize_multiplier(b.s / twice_max)
    mo, so = quantize_multiplier(twice_max / ((1 << left_shift) * out.s))
    v1 = multiply_by_quantized_multiplier((x1.astype(np.int64) - a.zp) * (1 << left_shift), m1, s1)
    v2 = multiply_by_quantized_multiplier((x2.astype(np.int64) - b.zp) * (1 << left_shift), m2, s2)
    y = multiply_by_quantized_multiplier(v1 + v2, mo, so) + out.zp
    lo, hi = activation_range(op.options.get("activation", "none"), out.s, out.zp)
    return np.clip(y, lo, hi).astype(np.int8)


def _pool_windows(op: Op, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Windows (oh, ow, kh, kw, C) and a validity mask (oh, ow, kh, kw) excluding padding."""
    kh, kw = op.options["filter"]
    xi = x[0].astype(np.int64)
    win, _oh, _ow = _patches(xi, kh, kw, op.options["stride"], op.options["padding"], 0)
    ones = np.ones((*x.shape[1:3], 1), dtype=np.int64)
    valid, _, _ = _patches(ones, kh, kw, op.options["stride"], op.options["padding"], 0)
    return win, valid[..., 0].astype(bool)


def avg_pool2d(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    out = g.tensors[op.outputs[0]]
    win, valid = _pool_windows(op, x)
    total = (win * valid[..., None]).sum(axis=(2, 3))
    count = valid.sum(axis=(2, 3))[..., None]
    # Round half away from zero, as TF-Lite's integer AveragePool does.
    avg = np.where(total > 0, (total + count // 2) // count, -((-total + count // 2) // count))
    lo, hi = activation_range(op.options.get("activation", "none"), out.s, out.zp)
    return np.clip(avg, lo, hi).astype(np.int8)[None]


def max_pool2d(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    out = g.tensors[op.outputs[0]]
    win, valid = _pool_windows(op, x)
    m = np.where(valid[..., None], win, -(2**31)).max(axis=(2, 3))
    lo, hi = activation_range(op.options.get("activation", "none"), out.s, out.zp)
    return np.clip(m, lo, hi).astype(np.int8)[None]


def pad(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    out = g.tensors[op.outputs[0]]
    (t, b_), (left, r) = op.options["paddings"]
    return np.pad(x, ((0, 0), (t, b_), (left, r), (0, 0)), constant_values=out.zp).astype(np.int8)


def softmax(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    """TF-Lite's int8 softmax over the last axis (output scale 1/256, zero point -128)."""
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if out.zp != -128 or abs(out.s - 1 / 256) > 1e-9:
        raise ValueError(f"softmax {op.name}: TF-Lite needs output scale 1/256 and zero point -128")
    return softmax_int8(x, float(op.options.get("beta", 1.0)), inp.s)


def run(g: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Execute ``g`` on the int8 input ``x``; returns every activation by name."""
    g.validate()
    values: dict[str, np.ndarray] = {
        g.inputs[0]: np.asarray(x, dtype=np.int8).reshape(g.tensors[g.inputs[0]].shape)
    }
    for op in g.ops:
        args = [values[n] for n in op.inputs if not g.tensors[n].is_constant]
        if op.kind == "conv2d":
            y = conv2d(g, op, args[0])
        elif op.kind == "depthwise_conv2d":
            y = depthwise_conv2d(g, op, args[0])
        elif op.kind == "fully_connected":
            y = fully_connected(g, op, args[0])
        elif op.kind == "add":
            y = add(g, op, args[0], args[1])
        elif op.kind == "avg_pool2d":
            y = avg_pool2d(g, op, args[0])
        elif op.kind == "max_pool2d":
            y = max_pool2d(g, op, args[0])
        elif op.kind == "reshape":
            y = args[0].reshape(g.tensors[op.outputs[0]].shape)
        elif op.kind == "pad":
            y = pad(g, op, args[0])
        elif op.kind == "softmax":
            y = softmax(g, op, args[0])
        else:
            raise UnsupportedOperatorError(f"the reference executor has no {op.kind!r} kernel")
        expected = g.tensors[op.outputs[0]].shape
        if tuple(y.shape) != tuple(expected):
            raise ValueError(f"{op.kind} {op.name}: produced {y.shape}, graph says {expected}")
        values[op.outputs[0]] = y
    return values
