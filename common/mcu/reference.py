"""A numpy executor of int8 graphs with TF-Lite's integer semantics (the bit-exact reference).

Each operator's kernel lives in its module of :mod:`common.mcu.ops` and mirrors TF-Lite's
reference implementation (``reference_integer_ops``): offsets subtracted in int32, int32
accumulation, per-channel requantization by
:func:`~common.mcu.quant.multiply_by_quantized_multiplier`, output zero point, clamp to the fused
activation's range. The C kernels and the tflite-micro interpreter must produce exactly the same
int8 values; the tests check all three against each other.
"""

from __future__ import annotations

import numpy as np

from common.mcu.graph import Graph, UnsupportedOperatorError
from common.mcu.ops import OPS
from common.mcu.ops.add import add
from common.mcu.ops.conv2d import conv2d
from common.mcu.ops.depthwise import depthwise_conv2d
from common.mcu.ops.fully_connected import fully_connected
from common.mcu.ops.pad import pad
from common.mcu.ops.pool import avg_pool2d, max_pool2d
from common.mcu.ops.softmax import softmax
from common.mcu.quant import requant_params

__all__ = [
    "add",
    "avg_pool2d",
    "conv2d",
    "depthwise_conv2d",
    "fully_connected",
    "max_pool2d",
    "pad",
    "requant_params",
    "run",
    "softmax",
]


def run(g: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Execute ``g`` on the int8 input ``x``; returns every activation by name."""
    g.validate()
    values: dict[str, np.ndarray] = {
        g.inputs[0]: np.asarray(x, dtype=np.int8).reshape(g.tensors[g.inputs[0]].shape)
    }
    for op in g.ops:
        args = [values[n] for n in op.inputs if not g.tensors[n].is_constant]
        spec = OPS.get(op.kind)
        if spec is None:
            raise UnsupportedOperatorError(f"the reference executor has no {op.kind!r} kernel")
        y = spec.reference(g, op, args)
        expected = g.tensors[op.outputs[0]].shape
        if tuple(y.shape) != tuple(expected):
            raise ValueError(f"{op.kind} {op.name}: produced {y.shape}, graph says {expected}")
        values[op.outputs[0]] = y
    return values
