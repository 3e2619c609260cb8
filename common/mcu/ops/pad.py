"""PAD (spatial, with the output zero point): TF-Lite's int8 PAD, and its C code.

TF-Lite has only SAME and VALID padding, so a PyTorch convolution with stride 2 and padding 1
becomes PAD + VALID convolution. Reference kernel: TF-Lite Micro's ``reference::Pad``
(``ref_pad``), PAD kept as its own operator. Specialized code: with ``fuse_pad`` a PAD whose
only consumer is a VALID convolution is folded into it (:func:`~common.mcu.graph.fuse_pad`), so
no padded copy is ever materialised; any other PAD runs ``te_pad``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.mcu.emit import ReferenceOp, SpecializedOp
from common.mcu.graph import Graph, Op, Tensor
from common.mcu.ops.base import OpSpec, Region, TFLiteMapping, int32_const, window_region


def pad(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    """TF-Lite's PAD of the input value ``x`` with the output zero point (real 0)."""
    out = g.tensors[op.outputs[0]]
    (t, b_), (left, r) = op.options["paddings"]
    return np.pad(x, ((0, 0), (t, b_), (left, r), (0, 0)), constant_values=out.zp).astype(np.int8)


def _reference(g: Graph, op: Op, args: list[np.ndarray]) -> np.ndarray:
    return pad(g, op, args[0])


def _emit_reference(c: ReferenceOp) -> None:
    op = c.op
    (pt, _pb), (pl, _pr) = op.options["paddings"]
    c.body(
        f"    ref_pad({c.shape(op.inputs[0])}, {c.ptr(op.inputs[0])}, {pt}, {pl}, "
        f"{c.out.zp}, {c.shape(op.outputs[0])}, {c.ptr(op.outputs[0])});"
    )


def _emit_specialized(c: SpecializedOp) -> None:
    op, out, ptr = c.op, c.out, c.ptr
    _, h, wd, ch = c.g.tensors[op.inputs[0]].shape
    _, oh, ow, _ = out.shape
    (pt, _pb), (pl, _pr) = op.options["paddings"]
    c.body.append(
        f"    te_pad({ptr(op.inputs[0])}, {ptr(op.outputs[0])}, {h}, {wd}, {ch}, {oh}, "
        f"{ow}, {pt}, {pl}, {out.zp});"
    )


def _needed_region(g: Graph, op: Op, out: Region) -> Region:
    (t, _b), (left, _r) = op.options["paddings"]
    return window_region(g, op, out, (1, 1, 1, 1, t, left))


def _write(fb: Any, op: Op, g: Graph) -> tuple[int, Any]:
    return fb.BuiltinOptions.PadOptions, fb.PadOptionsT()


def _const_inputs(op: Op, g: Graph) -> list[Tensor]:
    """The paddings as a constant int32 (4, 2) input, as TF-Lite's converter writes them."""
    (t, b), (left, r) = op.options["paddings"]
    p = np.array([[0, 0], [t, b], [left, r], [0, 0]], dtype=np.int32)
    return [int32_const(f"{op.outputs[0]}/paddings", p)]


def _read(fb: Any, o: Any, inputs: list[Tensor], i: int) -> dict[str, Any]:
    p = inputs[1].data
    return {"paddings": ((int(p[1, 0]), int(p[1, 1])), (int(p[2, 0]), int(p[2, 1])))}


SPEC = OpSpec(
    kind="pad",
    reference=_reference,
    tflite=TFLiteMapping("PAD", _write, _read, _const_inputs, graph_inputs=1),
    emit_reference=_emit_reference,
    emit_specialized=_emit_specialized,
    needed_region=_needed_region,
    tiles=True,
)
