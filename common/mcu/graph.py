"""The int8 graph every MCU tool in this package reads: converter output, TF-Lite import/export,
reference executor, memory planners and C code generator.

Layout follows TF-Lite: activations are NHWC with batch 1; convolution weights are
``(out, kh, kw, in)``, depthwise weights ``(1, kh, kw, channels)``, fully connected weights
``(out, in)``. Weights are symmetric per-channel int8 (zero point 0), biases int32 with scale
``input_scale * weight_scale``, activations asymmetric per-tensor int8.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def __getattr__(name: str) -> Any:
    # ``SUPPORTED_OPS``: the kinds registered in common.mcu.ops, whose modules import this one
    if name == "SUPPORTED_OPS":
        return _supported_ops()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _supported_ops() -> tuple[str, ...]:
    """Every operator kind the engine runs (:data:`common.mcu.ops.OPS`), in registration order."""
    from common.mcu.ops import OPS

    return tuple(OPS)


class UnsupportedOperatorError(ValueError):
    """A model uses an operator the engine cannot run; the message names it."""


@dataclass
class Tensor:
    """A quantized tensor: an activation (``data is None``) or a constant (weights, bias)."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # "int8" or "int32"
    scale: np.ndarray  # float32, one value (per tensor) or one per channel
    zero_point: np.ndarray  # int64, same length as scale
    data: np.ndarray | None = None
    quantized_dim: int = 0

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * (1 if self.dtype == "int8" else 4)

    @property
    def s(self) -> float:
        """The per-tensor scale (activations)."""
        return float(self.scale.reshape(-1)[0])

    @property
    def zp(self) -> int:
        """The per-tensor zero point (activations)."""
        return int(self.zero_point.reshape(-1)[0])


@dataclass
class Op:
    """One operator: ``kind`` from ``SUPPORTED_OPS`` (the kinds registered in
    :data:`common.mcu.ops.OPS`), tensor names, and its options.

    Options: ``stride`` (h, w), ``padding`` ("same"/"valid"), ``activation``
    ("none"/"relu"/"relu6"), ``filter`` (h, w) for pools, ``depth_multiplier``,
    ``paddings`` ((top, bottom), (left, right)) for pad, ``beta`` for softmax; only in the
    graphs the C code runs, ``pool`` (h, w) and ``pool_activation`` on a convolution with a
    fused max pool (:func:`fuse_pool`).
    """

    kind: str
    inputs: list[str]
    outputs: list[str]
    options: dict[str, Any] = field(default_factory=dict)
    name: str = ""


@dataclass
class Graph:
    tensors: dict[str, Tensor]
    ops: list[Op]
    inputs: list[str]
    outputs: list[str]

    def validate(self) -> None:
        supported = _supported_ops()
        for op in self.ops:
            if op.kind not in supported:
                raise UnsupportedOperatorError(
                    f"operator {op.kind!r} ({op.name or 'unnamed'}) is not supported; supported: {', '.join(supported)}"
                )
            for t in op.inputs + op.outputs:
                if t not in self.tensors:
                    raise ValueError(f"{op.kind} {op.name}: unknown tensor {t!r}")

    def activations(self) -> list[str]:
        """Names of every non-constant tensor, in order of first appearance."""
        seen: list[str] = [n for n in self.inputs]
        for op in self.ops:
            for t in op.inputs + op.outputs:
                if t not in seen and not self.tensors[t].is_constant:
                    seen.append(t)
        return seen

    def weight_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values() if t.is_constant)

    def macs(self) -> int:
        """Multiply-accumulates of one inference (each operator's ``macs`` hook)."""
        from common.mcu.ops import OPS

        total = 0
        for op in self.ops:
            spec = OPS.get(op.kind)
            if spec is not None and spec.macs is not None:
                total += spec.macs(self, op, None)
        return total


def conv_output_size(
    size: int, kernel: int, stride: int, padding: str, dilation: int = 1
) -> tuple[int, int]:
    """``(output size, padding before)`` with TF-Lite's rule (SAME: pad_before = total // 2)."""
    effective = (kernel - 1) * dilation + 1
    if padding == "valid":
        return (size - effective) // stride + 1, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return out, total // 2


def resolve_padding(
    h: int, w: int, kh: int, kw: int, stride: tuple[int, int], padding: Any
) -> tuple[int, int, int, int, int, int]:
    """``(out_h, out_w, pad_top, pad_bottom, pad_left, pad_right)`` for ``padding`` given as
    "same", "valid" or explicit ``((top, bottom), (left, right))`` (a PAD fused into the op)."""
    if isinstance(padding, str):
        oh, pt = conv_output_size(h, kh, stride[0], padding)
        ow, pl = conv_output_size(w, kw, stride[1], padding)
        pb = max((oh - 1) * stride[0] + kh - h - pt, 0)
        pr = max((ow - 1) * stride[1] + kw - w - pl, 0)
        return oh, ow, pt, pb, pl, pr
    (pt, pb), (pl, pr) = padding
    oh = (h + pt + pb - kh) // stride[0] + 1
    ow = (w + pl + pr - kw) // stride[1] + 1
    return oh, ow, pt, pb, pl, pr


def fuse_pad(g: Graph) -> Graph:
    """Fold every PAD whose only consumer is a VALID convolution into that convolution.

    TF-Lite has only SAME and VALID padding, so a PyTorch convolution with stride 2 and padding 1
    becomes PAD + VALID conv, and the padded copy costs a whole tensor of SRAM. TinyEngine fuses
    padding into the kernel; so does this pass (the convolution gets explicit padding). The result
    computes exactly the same values (the pad value is the input's zero point, i.e. real 0).
    """
    import copy

    g = copy.deepcopy(g)
    consumers: dict[str, list[Op]] = {}
    for op in g.ops:
        for t in op.inputs:
            consumers.setdefault(t, []).append(op)
    keep: list[Op] = []
    for op in g.ops:
        nxt = consumers.get(op.outputs[0], [])
        if (
            op.kind == "pad"
            and op.outputs[0] not in g.outputs
            and len(nxt) == 1
            and nxt[0].kind in ("conv2d", "depthwise_conv2d")
            and nxt[0].options["padding"] == "valid"
        ):
            conv = nxt[0]
            conv.inputs[0] = op.inputs[0]
            conv.options["padding"] = op.options["paddings"]
            del g.tensors[op.outputs[0]]
            continue
        keep.append(op)
    g.ops = keep
    return g


def fuse_pool(g: Graph, accept: Callable[[Graph, Op], bool] | None = None) -> Graph:
    """Fold every non-overlapping VALID max pool into the convolution that feeds it.

    A convolution whose only consumer is a MAX_POOL_2D with VALID padding and its filter equal
    to its stride (LeNet's 2x2 / 2) gets ``options["pool"] = (fh, fw)`` and the pool's output
    tensor; the pool and the full-resolution convolution output disappear. The C code computes
    the convolution's pixels window by window and keeps their maximum, so the unpooled tensor
    never exists: the same int8 values (max commutes with the monotonic requantization and
    clamps, and TF-Lite's max pool keeps its input's scale and zero point), in a quarter of
    the memory. ``accept(g, conv)`` may refuse a convolution (the generator fuses only where
    its per-channel code runs).
    """
    import copy

    g = copy.deepcopy(g)
    consumers: dict[str, list[Op]] = {}
    for op in g.ops:
        for t in op.inputs:
            consumers.setdefault(t, []).append(op)
    producer = {op.outputs[0]: op for op in g.ops}
    keep: list[Op] = []
    for op in g.ops:
        conv = producer.get(op.inputs[0]) if op.kind == "max_pool2d" else None
        if (
            conv is not None
            and conv.kind == "conv2d"
            and "pool" not in conv.options
            and len(consumers.get(conv.outputs[0], [])) == 1
            and conv.outputs[0] not in g.outputs
            and op.options.get("padding") == "valid"
            and tuple(op.options["filter"]) == tuple(op.options["stride"])
            and _same_quant(g.tensors[conv.outputs[0]], g.tensors[op.outputs[0]])
            and (accept is None or accept(g, conv))
        ):
            del g.tensors[conv.outputs[0]]
            conv.outputs = list(op.outputs)
            conv.options["pool"] = tuple(op.options["filter"])
            conv.options["pool_activation"] = op.options.get("activation", "none")
            continue
        keep.append(op)
    g.ops = keep
    return g


def _same_quant(a: Tensor, b: Tensor) -> bool:
    return (
        a.shape[-1] == b.shape[-1]
        and np.array_equal(a.scale, b.scale)
        and np.array_equal(a.zero_point, b.zero_point)
    )
