"""Write ``.tflite`` files field by field with the TF-Lite schema's builder functions, as TF-Lite's
converter lays them out, independently of :func:`common.mcu.tflite_io.export_tflite`.

Models written here exercise the importer the way files from other tools do: tensors in any
order, TF-style names, buffer 0 empty, the graph input and output with empty buffers of their
own, constant buffers 16-byte aligned and serialised after the subgraph (their bytes lie before
the tensor tables), identical constants sharing one buffer, operator codes with versions and
``deprecated_builtin_code``, a ``min_runtime_version`` metadata entry. Used by the foreign-model
tests and by the fuzz harness (:mod:`common.mcu.fuzz`).

A model is a list of :class:`TensorSpec` and :class:`OperatorSpec` (tensors referred to by name);
:func:`write_tflite` serialises it. The option writers (:func:`conv_options`, ...) return
callables that write one operator's options table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

__all__ = [
    "BOP",
    "I8",
    "I32",
    "OperatorSpec",
    "TensorSpec",
    "add_options",
    "conv_options",
    "depthwise_options",
    "fc_options",
    "pool_options",
    "reshape_options",
    "softmax_options",
    "write_tflite",
]

BOP = fb.BuiltinOperator
I8, I32 = fb.TensorType.INT8, fb.TensorType.INT32


@dataclass
class TensorSpec:
    """One tensor of the file (the serialised description, not :class:`common.mcu.graph.Tensor`)."""

    name: str
    shape: tuple[int, ...]
    type: int  # fb.TensorType
    scale: tuple[float, ...] | None = None
    zero_point: tuple[int, ...] | None = None
    quantized_dimension: int = 0
    data: bytes | None = None
    signature: bool = False  # write a shape_signature with a dynamic batch, as converters do


@dataclass
class OperatorSpec:
    builtin: int  # fb.BuiltinOperator
    version: int
    inputs: list[str]
    outputs: list[str]
    options_type: int = fb.BuiltinOptions.NONE
    options: Callable[[flatbuffers.Builder], int] | None = None


def _vector(b: flatbuffers.Builder, start: Callable, prepend: Callable, values) -> int:
    values = list(values)
    start(b, len(values))
    for v in reversed(values):
        prepend(v)
    return b.EndVector()


def _aligned_bytes(b: flatbuffers.Builder, data: bytes, alignment: int = 16) -> int:
    b.StartVector(1, len(data), alignment)
    b.head = b.head - len(data)
    b.Bytes[b.head : b.head + len(data)] = data
    return b.EndVector()


def write_tflite(
    tensors: Sequence[TensorSpec],
    ops: Sequence[OperatorSpec],
    inputs: Sequence[str],
    outputs: Sequence[str],
    *,
    order_seed: int | None = 7,
    description: str = "MLIR Converted.",
) -> bytes:
    """Serialise the model, converter-style. ``order_seed`` shuffles the tensor table (``None``
    keeps the given order)."""
    if order_seed is None:
        order = list(tensors)
    else:
        perm = np.random.default_rng(order_seed).permutation(len(tensors))
        order = [tensors[i] for i in perm]
    index = {t.name: i for i, t in enumerate(order)}

    # Buffers: 0 empty; graph input/output get their own empty buffer; constants in reverse tensor
    # order, identical contents share one buffer.
    buffers: list[bytes | None] = [None]
    buffer_of: dict[str, int] = {}
    shared: dict[bytes, int] = {}
    for t in order:
        if t.name in inputs or t.name in outputs:
            buffers.append(None)
            buffer_of[t.name] = len(buffers) - 1
    for t in reversed(order):
        if t.data is not None:
            if t.data not in shared:
                buffers.append(t.data)
                shared[t.data] = len(buffers) - 1
            buffer_of[t.name] = shared[t.data]
    buffers.append(b"1.14.0".ljust(16, b"\0"))  # the min_runtime_version metadata
    runtime_buffer = len(buffers) - 1

    b = flatbuffers.Builder(4096)

    tensor_offsets = []
    for t in order:
        name = b.CreateString(t.name)
        shape = _vector(b, fb.TensorStartShapeVector, b.PrependInt32, t.shape)
        signature = (
            _vector(b, fb.TensorStartShapeSignatureVector, b.PrependInt32, (-1, *t.shape[1:]))
            if t.signature
            else None
        )
        quant = None
        if t.scale is not None:
            scale = _vector(b, fb.QuantizationParametersStartScaleVector, b.PrependFloat32, t.scale)
            zp = _vector(
                b, fb.QuantizationParametersStartZeroPointVector, b.PrependInt64, t.zero_point
            )
            fb.QuantizationParametersStart(b)
            fb.QuantizationParametersAddScale(b, scale)
            fb.QuantizationParametersAddZeroPoint(b, zp)
            fb.QuantizationParametersAddQuantizedDimension(b, t.quantized_dimension)
            quant = fb.QuantizationParametersEnd(b)
        fb.TensorStart(b)
        fb.TensorAddShape(b, shape)
        if signature is not None:
            fb.TensorAddShapeSignature(b, signature)
        fb.TensorAddType(b, t.type)
        fb.TensorAddBuffer(b, buffer_of.get(t.name, 0))
        fb.TensorAddName(b, name)
        if quant is not None:
            fb.TensorAddQuantization(b, quant)
        tensor_offsets.append(fb.TensorEnd(b))

    # Operators and their codes (first use order, as the converter emits them).
    codes: list[tuple[int, int]] = []
    op_offsets = []
    for op in ops:
        if (op.builtin, op.version) not in codes:
            codes.append((op.builtin, op.version))
        options = op.options(b) if op.options is not None else None
        ins = _vector(
            b, fb.OperatorStartInputsVector, b.PrependInt32, [index[n] for n in op.inputs]
        )
        outs = _vector(
            b, fb.OperatorStartOutputsVector, b.PrependInt32, [index[n] for n in op.outputs]
        )
        fb.OperatorStart(b)
        fb.OperatorAddOpcodeIndex(b, codes.index((op.builtin, op.version)))
        fb.OperatorAddInputs(b, ins)
        fb.OperatorAddOutputs(b, outs)
        if options is not None:
            fb.OperatorAddBuiltinOptionsType(b, op.options_type)
            fb.OperatorAddBuiltinOptions(b, options)
        op_offsets.append(fb.OperatorEnd(b))

    sub_tensors = _vector(
        b, fb.SubGraphStartTensorsVector, b.PrependUOffsetTRelative, tensor_offsets
    )
    sub_ops = _vector(b, fb.SubGraphStartOperatorsVector, b.PrependUOffsetTRelative, op_offsets)
    sub_in = _vector(b, fb.SubGraphStartInputsVector, b.PrependInt32, [index[n] for n in inputs])
    sub_out = _vector(b, fb.SubGraphStartOutputsVector, b.PrependInt32, [index[n] for n in outputs])
    sub_name = b.CreateString("main")
    fb.SubGraphStart(b)
    fb.SubGraphAddTensors(b, sub_tensors)
    fb.SubGraphAddInputs(b, sub_in)
    fb.SubGraphAddOutputs(b, sub_out)
    fb.SubGraphAddOperators(b, sub_ops)
    fb.SubGraphAddName(b, sub_name)
    subgraph = fb.SubGraphEnd(b)

    buffer_offsets = []
    for data in buffers:
        vec = _aligned_bytes(b, data) if data else None
        fb.BufferStart(b)
        if vec is not None:
            fb.BufferAddData(b, vec)
        buffer_offsets.append(fb.BufferEnd(b))

    code_offsets = []
    for builtin, version in codes:
        fb.OperatorCodeStart(b)
        fb.OperatorCodeAddDeprecatedBuiltinCode(
            b, min(builtin, BOP.PLACEHOLDER_FOR_GREATER_OP_CODES)
        )
        fb.OperatorCodeAddBuiltinCode(b, builtin)
        fb.OperatorCodeAddVersion(b, version)
        code_offsets.append(fb.OperatorCodeEnd(b))

    meta_name = b.CreateString("min_runtime_version")
    fb.MetadataStart(b)
    fb.MetadataAddName(b, meta_name)
    fb.MetadataAddBuffer(b, runtime_buffer)
    metadata = fb.MetadataEnd(b)

    m_codes = _vector(b, fb.ModelStartOperatorCodesVector, b.PrependUOffsetTRelative, code_offsets)
    m_subs = _vector(b, fb.ModelStartSubgraphsVector, b.PrependUOffsetTRelative, [subgraph])
    m_bufs = _vector(b, fb.ModelStartBuffersVector, b.PrependUOffsetTRelative, buffer_offsets)
    m_meta = _vector(b, fb.ModelStartMetadataVector, b.PrependUOffsetTRelative, [metadata])
    text = b.CreateString(description)
    fb.ModelStart(b)
    fb.ModelAddVersion(b, 3)
    fb.ModelAddOperatorCodes(b, m_codes)
    fb.ModelAddSubgraphs(b, m_subs)
    fb.ModelAddDescription(b, text)
    fb.ModelAddBuffers(b, m_bufs)
    fb.ModelAddMetadata(b, m_meta)
    b.Finish(fb.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


# --- operator options -------------------------------------------------------------------------


def conv_options(
    stride: int | tuple[int, int], padding: int, act: int
) -> Callable[[flatbuffers.Builder], int]:
    sh, sw = (stride, stride) if isinstance(stride, int) else stride

    def write(b: flatbuffers.Builder) -> int:
        fb.Conv2DOptionsStart(b)
        fb.Conv2DOptionsAddPadding(b, padding)
        fb.Conv2DOptionsAddStrideW(b, sw)
        fb.Conv2DOptionsAddStrideH(b, sh)
        fb.Conv2DOptionsAddFusedActivationFunction(b, act)
        fb.Conv2DOptionsAddDilationWFactor(b, 1)
        fb.Conv2DOptionsAddDilationHFactor(b, 1)
        return fb.Conv2DOptionsEnd(b)

    return write


def depthwise_options(
    stride: int | tuple[int, int] = 1,
    padding: int = fb.Padding.SAME,
    act: int = fb.ActivationFunctionType.RELU6,
) -> Callable[[flatbuffers.Builder], int]:
    sh, sw = (stride, stride) if isinstance(stride, int) else stride

    def write(b: flatbuffers.Builder) -> int:
        fb.DepthwiseConv2DOptionsStart(b)
        fb.DepthwiseConv2DOptionsAddPadding(b, padding)
        fb.DepthwiseConv2DOptionsAddStrideW(b, sw)
        fb.DepthwiseConv2DOptionsAddStrideH(b, sh)
        fb.DepthwiseConv2DOptionsAddDepthMultiplier(b, 1)
        fb.DepthwiseConv2DOptionsAddFusedActivationFunction(b, act)
        fb.DepthwiseConv2DOptionsAddDilationWFactor(b, 1)
        fb.DepthwiseConv2DOptionsAddDilationHFactor(b, 1)
        return fb.DepthwiseConv2DOptionsEnd(b)

    return write


def add_options(act: int = fb.ActivationFunctionType.NONE) -> Callable[[flatbuffers.Builder], int]:
    def write(b: flatbuffers.Builder) -> int:
        fb.AddOptionsStart(b)
        fb.AddOptionsAddFusedActivationFunction(b, act)
        return fb.AddOptionsEnd(b)

    return write


def pool_options(
    filter_hw: tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int = fb.Padding.VALID,
    act: int = fb.ActivationFunctionType.NONE,
) -> Callable[[flatbuffers.Builder], int]:
    sh, sw = (stride, stride) if isinstance(stride, int) else stride

    def write(b: flatbuffers.Builder) -> int:
        fb.Pool2DOptionsStart(b)
        fb.Pool2DOptionsAddPadding(b, padding)
        fb.Pool2DOptionsAddStrideW(b, sw)
        fb.Pool2DOptionsAddStrideH(b, sh)
        fb.Pool2DOptionsAddFilterWidth(b, filter_hw[1])
        fb.Pool2DOptionsAddFilterHeight(b, filter_hw[0])
        fb.Pool2DOptionsAddFusedActivationFunction(b, act)
        return fb.Pool2DOptionsEnd(b)

    return write


def reshape_options(new_shape: Sequence[int]) -> Callable[[flatbuffers.Builder], int]:
    def write(b: flatbuffers.Builder) -> int:
        shape = _vector(b, fb.ReshapeOptionsStartNewShapeVector, b.PrependInt32, new_shape)
        fb.ReshapeOptionsStart(b)
        fb.ReshapeOptionsAddNewShape(b, shape)
        return fb.ReshapeOptionsEnd(b)

    return write


def fc_options(act: int = fb.ActivationFunctionType.NONE) -> Callable[[flatbuffers.Builder], int]:
    def write(b: flatbuffers.Builder) -> int:
        fb.FullyConnectedOptionsStart(b)
        fb.FullyConnectedOptionsAddFusedActivationFunction(b, act)
        fb.FullyConnectedOptionsAddWeightsFormat(b, fb.FullyConnectedOptionsWeightsFormat.DEFAULT)
        fb.FullyConnectedOptionsAddKeepNumDims(b, False)
        return fb.FullyConnectedOptionsEnd(b)

    return write


def softmax_options(beta: float = 1.0) -> Callable[[flatbuffers.Builder], int]:
    def write(b: flatbuffers.Builder) -> int:
        fb.SoftmaxOptionsStart(b)
        fb.SoftmaxOptionsAddBeta(b, beta)
        return fb.SoftmaxOptionsEnd(b)

    return write
