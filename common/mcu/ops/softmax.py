"""SOFTMAX (int8, over the last axis; output scale 1/256, zero point -128): TF-Lite's integer
softmax, and its C code (``te_softmax`` in ``softmax.h``, the same call for both kernel flavours,
with TF-Lite's PreprocessSoftmaxScaling parameters precomputed here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from common.mcu.emit import ReferenceOp, SpecializedOp
from common.mcu.graph import Graph, Op, Tensor
from common.mcu.ops.base import OpSpec, TFLiteMapping, unit_region
from common.mcu.quant import softmax_int8, softmax_params


def _check_output(op: Op, out: Tensor) -> None:
    if out.zp != -128 or abs(out.s - 1 / 256) > 1e-9:
        raise ValueError(f"softmax {op.name}: TF-Lite needs output scale 1/256 and zero point -128")


def softmax(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    """TF-Lite's int8 softmax over the last axis (output scale 1/256, zero point -128)."""
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    _check_output(op, out)
    return softmax_int8(x, float(op.options.get("beta", 1.0)), inp.s)


def _reference(g: Graph, op: Op, args: list[np.ndarray]) -> np.ndarray:
    return softmax(g, op, args[0])


def _softmax_call(g: Graph, op: Op, ptr: Callable[[str], str]) -> str:
    """``te_softmax`` over the last axis with TF-Lite's PreprocessSoftmaxScaling parameters."""
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    _check_output(op, out)
    mult, shift, diff_min = softmax_params(float(op.options.get("beta", 1.0)), inp.s)
    depth = inp.shape[-1]
    rows = inp.nbytes // depth
    return (
        f"    te_softmax({ptr(op.inputs[0])}, {ptr(op.outputs[0])}, {rows}, {depth}, {mult}, "
        f"{shift}, {diff_min});"
    )


def _emit_reference(c: ReferenceOp) -> None:
    c.body(_softmax_call(c.g, c.op, c.ptr))


def _emit_specialized(c: SpecializedOp) -> None:
    c.body.append(_softmax_call(c.g, c.op, c.ptr))


def _write(fb: Any, op: Op, g: Graph) -> tuple[int, Any]:
    opt = fb.SoftmaxOptionsT()
    opt.beta = float(op.options.get("beta", 1.0))
    return fb.BuiltinOptions.SoftmaxOptions, opt


def _read(fb: Any, o: Any, inputs: list[Tensor], i: int) -> dict[str, Any]:
    return {"beta": float(o.beta) if o is not None else 1.0}


SPEC = OpSpec(
    kind="softmax",
    reference=_reference,
    tflite=TFLiteMapping("SOFTMAX", _write, _read),
    emit_reference=_emit_reference,
    emit_specialized=_emit_specialized,
    needed_region=unit_region,
)
