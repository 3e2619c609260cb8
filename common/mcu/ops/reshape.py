"""RESHAPE: a new shape over the same bytes (NHWC order is kept).

Reference kernel: a copy (``ref_copy``). Specialized code: a view of its input where the plan
gives the output the input's buffer (``inplace``; this module's in-place rule), else
``te_copy``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.mcu.emit import ReferenceOp, SpecializedOp
from common.mcu.graph import Graph, Op, Tensor
from common.mcu.ops.base import OpSpec, TFLiteMapping, int32_const, same_region


def _reference(g: Graph, op: Op, args: list[np.ndarray]) -> np.ndarray:
    return args[0].reshape(g.tensors[op.outputs[0]].shape)


def _emit_reference(c: ReferenceOp) -> None:
    op = c.op
    c.body(f"    ref_copy({c.out.nbytes}, {c.ptr(op.inputs[0])}, {c.ptr(op.outputs[0])});")


def _emit_specialized(c: SpecializedOp) -> None:
    op, plan = c.op, c.m.plan
    if plan.offset(op.outputs[0]) != plan.offset(op.inputs[0]):
        c.body.append(
            f"    te_copy({c.ptr(op.outputs[0])}, {c.ptr(op.inputs[0])}, {c.out.nbytes});"
        )
    else:
        c.body.append("    /* a view of its input: no code */")


def _inplace(g: Graph, op: Op, i: int, last_use: dict[str, int]) -> tuple[str | None, int]:
    return op.inputs[0], 0  # always a view


def _write(fb: Any, op: Op, g: Graph) -> tuple[int, Any]:
    opt = fb.ReshapeOptionsT()
    opt.newShape = list(g.tensors[op.outputs[0]].shape)
    return fb.BuiltinOptions.ReshapeOptions, opt


def _const_inputs(op: Op, g: Graph) -> list[Tensor]:
    """The new shape as a constant int32 input, as TF-Lite's converter writes it."""
    shape = np.array(g.tensors[op.outputs[0]].shape, dtype=np.int32)
    return [int32_const(f"{op.outputs[0]}/shape", shape)]


def _read(fb: Any, o: Any, inputs: list[Tensor], i: int) -> dict[str, Any]:
    return {}  # the output tensor's shape says it all


SPEC = OpSpec(
    kind="reshape",
    reference=_reference,
    tflite=TFLiteMapping("RESHAPE", _write, _read, _const_inputs, graph_inputs=1),
    emit_reference=_emit_reference,
    emit_specialized=_emit_specialized,
    inplace=_inplace,
    needed_region=same_region,
)
