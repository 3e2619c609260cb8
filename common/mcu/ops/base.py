"""What an operator registers (:class:`OpSpec`), and the helpers its modules share.

See :mod:`common.mcu.ops` for the table and how to add an operator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from common.mcu.graph import Graph, Op, Tensor, UnsupportedOperatorError, resolve_padding
from common.mcu.quant import activation_range, multiply_by_quantized_multiplier

if TYPE_CHECKING:
    from common.mcu.emit import ReferenceOp, SpecializedOp

Region = tuple[int, int, int, int]  # rows [h0, h1), columns [w0, w1) of an NHWC tensor


@dataclass(frozen=True)
class TFLiteMapping:
    """How an operator is written to and read from a ``.tflite`` flatbuffer.

    The hooks get the TF-Lite schema module (``schema_py_generated``) as ``fb``, so operator
    modules do not import it.

    Attributes:
        builtin: the ``BuiltinOperator`` name (``"CONV_2D"``).
        write: ``(fb, op, g) -> (BuiltinOptions type, options object)``.
        read: ``(fb, options object or None, inputs, operator index) -> Op.options``; ``inputs``
            are the file's input tensors of the operator (constant parameters included). Raises
            :class:`~common.mcu.graph.UnsupportedOperatorError` for what the engine cannot run.
            A fused activation it does not know is returned as ``"unsupported"`` (the importer
            names it).
        const_inputs: ``(op, g) -> tensors``: constant inputs the file has but the graph does
            not (PAD's paddings, an option here; RESHAPE's shape, its output's), appended on
            export.
        graph_inputs: how many of the file's inputs the graph's op keeps (None: all).
    """

    builtin: str
    write: Callable[[Any, Op, Graph], tuple[int, Any]]
    read: Callable[[Any, Any, list[Tensor], int], dict[str, Any]]
    const_inputs: Callable[[Op, Graph], list[Tensor]] | None = None
    graph_inputs: int | None = None


@dataclass(frozen=True)
class OpSpec:
    """One operator kind's registration: its semantics, file mapping, memory rules and C code.

    Attributes:
        kind: the :attr:`~common.mcu.graph.Op.kind` it registers.
        reference: ``(g, op, args) -> int8 output``: TF-Lite's integer semantics in numpy
            (:func:`common.mcu.reference.run`); ``args`` are the values of the op's non-constant
            inputs, in order.
        tflite: its ``.tflite`` import / export (:mod:`common.mcu.tflite_io`).
        emit_reference: writes the call of TF-Lite Micro's portable kernel
            (``kernels="reference"``; :class:`~common.mcu.emit.ReferenceOp`).
        emit_specialized: writes the TinyEngine-style code (:class:`~common.mcu.emit.SpecializedOp`):
            constants through ``c.em.array``, statements into ``c.body``, and the kernel's scratch
            through ``c.need_scratch`` (the scratch follows the kernel the emitter picks, so it is
            declared where the kernel is chosen; :func:`~common.mcu.codegen.generate` sizes the
            arena's scratch from a first emission).
        prepare: ``(m) -> state``: whole-model decisions taken before any operator is emitted
            (the convolutions' per-channel code within the flash budget), kept in
            ``m.state[kind]``; None: none.
        inplace: TinyEngine's in-place rule (:func:`common.mcu.memory.inplace_aliases`):
            ``(g, op, i, last_use) -> (input whose buffer the output reuses or None, scratch
            bytes that needs)``, ``last_use`` mapping each tensor to the index of its last reader;
            None: never in place.
        needed_region: ``(g, op, out_region) -> input region`` it reads for an output region
            (patch-based inference's receptive field; :func:`common.mcu.memory.needed_region`).
        tiles: whether the analytic patch plan may run it tile by tile (it works on spatial
            regions of NHWC tensors: :data:`common.mcu.memory.PATCH_KINDS`).
        tile_check: ``(g, op) -> reason or None``: why this one operator cannot run tile by tile
            although its kind can (an ADD with a broadcast or constant operand), None when it
            can; the patch stage then ends before it (:func:`common.mcu.memory.patch_regions`).
        tiled_kernel: whether the specialized C code has a kernel for tiles (runs inside the
            patch stage with per-tile extents).
        tile_halo: whether that kernel reads its inputs' tiles at an offset (ADD, row by row), so
            they may hold more than it reads; every other tiled kernel reads whole tiles.
        macs: ``(g, op, out_region or None) -> MACs`` for the output region (None: all of it);
            None: no MACs (:meth:`~common.mcu.graph.Graph.macs`).
    """

    kind: str
    reference: Callable[[Graph, Op, list[np.ndarray]], np.ndarray]
    tflite: TFLiteMapping
    emit_reference: Callable[[ReferenceOp], None]
    emit_specialized: Callable[[SpecializedOp], None]
    prepare: Callable[[Any], Any] | None = None
    inplace: Callable[[Graph, Op, int, dict[str, int]], tuple[str | None, int]] | None = None
    needed_region: Callable[[Graph, Op, Region], Region] | None = None
    tiles: bool = False
    tile_check: Callable[[Graph, Op], str | None] | None = None
    tiled_kernel: bool = False
    tile_halo: bool = False
    macs: Callable[[Graph, Op, Region | None], int] | None = None


# ------------------------------------------------------------------ reference helpers
def patches(
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


def finish(
    acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, out: Tensor, activation: str
) -> np.ndarray:
    """Requantize int32 accumulators to the int8 output: multiplier, zero point, clamp."""
    lo, hi = activation_range(activation, out.s, out.zp)
    y = multiply_by_quantized_multiplier(acc, mult, shift) + out.zp
    return np.clip(y, lo, hi).astype(np.int8)


# ------------------------------------------------------------------ patch-based inference
def window_region(
    g: Graph, op: Op, out: Region, window: tuple[int, int, int, int, int, int]
) -> Region:
    """The input region a ``(kh, kw, sh, sw, pad_top, pad_left)`` window reads for the output
    region ``out`` (clipped to the input: windows reaching outside it read padding, which the
    kernels supply)."""
    h0, h1, w0, w1 = out
    kh, kw, sh, sw, pt, pl = window
    x = g.tensors[op.inputs[0]]
    in_h, in_w = x.shape[1], x.shape[2]
    return (
        max(h0 * sh - pt, 0),
        min((h1 - 1) * sh - pt + kh, in_h),
        max(w0 * sw - pl, 0),
        min((w1 - 1) * sw - pl + kw, in_w),
    )


def strided_window(g: Graph, op: Op, kh: int, kw: int) -> tuple[int, int, int, int, int, int]:
    """``(kh, kw, sh, sw, pad_top, pad_left)`` of a strided ``kh x kw`` window over the input; a
    fused max pool (fuse_pool) makes each output pixel the maximum over ``ph x pw`` convolution
    pixels, so its window spans ``ph - 1`` more strides."""
    x = g.tensors[op.inputs[0]]
    in_h, in_w = x.shape[1], x.shape[2]
    sh, sw = op.options.get("stride", (1, 1))
    _, _, pt, _, pl, _ = resolve_padding(
        in_h, in_w, kh, kw, (sh, sw), op.options.get("padding", "valid")
    )
    ph, pw = op.options.get("pool", (1, 1))
    return kh + (ph - 1) * sh, kw + (pw - 1) * sw, sh * ph, sw * pw, pt, pl


def unit_region(g: Graph, op: Op, out: Region) -> Region:
    """The region of a 1 x 1 window (an operator without a spatial window)."""
    return window_region(g, op, out, (1, 1, 1, 1, 0, 0))


def same_region(g: Graph, op: Op, out: Region) -> Region:
    """Elementwise operators and views read exactly the output region."""
    return out


def out_extent(g: Graph, op: Op, region: Region | None) -> int:
    """Output pixels of ``region`` (None: the whole output)."""
    if region is None:
        _, oh, ow, _ = g.tensors[op.outputs[0]].shape
        return oh * ow
    h0, h1, w0, w1 = region
    return (h1 - h0) * (w1 - w0)


# ------------------------------------------------------------------ TF-Lite helpers
ACTIVATIONS = ("none", "relu", "relu6")  # the fused activations the engine runs


def fused_activation(fb: Any, name: str) -> int:
    """The schema's ``ActivationFunctionType`` of ``name``."""
    return {
        "none": fb.ActivationFunctionType.NONE,
        "relu": fb.ActivationFunctionType.RELU,
        "relu6": fb.ActivationFunctionType.RELU6,
    }[name]


def activation_name(fb: Any, code: int) -> str:
    """The name of a fused activation code, ``"unsupported"`` for one the engine cannot run."""
    return {fused_activation(fb, a): a for a in ACTIVATIONS}.get(code, "unsupported")


def activation_options(options_t: str, builtin: str) -> tuple[Callable, Callable]:
    """The TF-Lite ``(write, read)`` of an operator whose options hold only a fused activation
    (ADD, FULLY_CONNECTED): ``options_t`` names the schema's options class, ``builtin`` its
    ``BuiltinOptions`` member."""

    def write(fb: Any, op: Any, g: Any) -> tuple[int, Any]:
        opt = getattr(fb, options_t)()
        opt.fusedActivationFunction = fused_activation(fb, op.options.get("activation", "none"))
        return getattr(fb.BuiltinOptions, builtin), opt

    def read(fb: Any, o: Any, inputs: list, i: int) -> dict[str, Any]:
        return {
            "activation": activation_name(fb, o.fusedActivationFunction)
            if o is not None
            else "none"
        }

    return write, read


def padding_code(fb: Any, name: str) -> int:
    return {"same": fb.Padding.SAME, "valid": fb.Padding.VALID}[name]


def padding_name(fb: Any, code: int) -> str:
    return {fb.Padding.SAME: "same", fb.Padding.VALID: "valid"}[code]


def int32_const(name: str, data: np.ndarray) -> Tensor:
    """A constant int32 parameter tensor (PAD's paddings, RESHAPE's shape)."""
    return Tensor(name, data.shape, "int32", np.ones(1, np.float32), np.zeros(1, np.int64), data)


def write_window_options(fb: Any, opt: Any, op: Op) -> Any:
    """Fill a convolution's or pool's options object: padding, strides, fused activation."""
    o = op.options
    act = fused_activation(fb, o.get("activation", "none"))
    opt.padding = padding_code(fb, o["padding"])
    opt.strideH, opt.strideW = o["stride"][0], o["stride"][1]
    opt.fusedActivationFunction = act
    return opt


def read_window_options(fb: Any, o: Any, kind: str, i: int) -> dict[str, Any]:
    """Stride, padding and fused activation of a convolution or pool (operator #``i``)."""
    options = {
        "stride": (o.strideH, o.strideW),
        "padding": padding_name(fb, o.padding),
        "activation": activation_name(fb, o.fusedActivationFunction),
    }
    if getattr(o, "dilationHFactor", 1) not in (0, 1) or getattr(o, "dilationWFactor", 1) not in (
        0,
        1,
    ):
        raise UnsupportedOperatorError(f"{kind} with dilation (operator #{i}) is not supported")
    return options
