"""Write int8 graphs as ``.tflite`` flatbuffers and read int8 ``.tflite`` files back.

No TensorFlow is involved: the TF-Lite schema's Python object API ships inside the
``tflite-micro`` wheel (``schema_py_generated``). Export writes exactly the operators and tensor
layouts :mod:`common.mcu.graph` describes, so the tflite-micro interpreter can run our models;
import accepts int8 models produced elsewhere (TF-Lite's converter, other tools) and raises
:class:`~common.mcu.graph.UnsupportedOperatorError` naming any operator outside
:data:`common.mcu.ops.OPS`. Each operator's builtin code, options and constant parameter inputs
come from its ``tflite`` mapping (:class:`~common.mcu.ops.base.TFLiteMapping`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from common.mcu.graph import Graph, Op, Tensor, UnsupportedOperatorError
from common.mcu.ops import OPS

_BUILTIN = {kind: getattr(fb.BuiltinOperator, spec.tflite.builtin) for kind, spec in OPS.items()}
_KIND = {v: k for k, v in _BUILTIN.items()}
_BUILTIN_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
_TYPE = {"int8": fb.TensorType.INT8, "int32": fb.TensorType.INT32}
_TYPE_NAME = {v: k for k, v in _TYPE.items()}


def _options(op: Op, g: Graph) -> tuple[int, Any]:
    spec = OPS.get(op.kind)
    if spec is None:
        raise UnsupportedOperatorError(f"cannot export operator {op.kind!r}")
    return spec.tflite.write(fb, op, g)


def export_tflite(g: Graph, *, description: str = "efficientml-replications int8 graph") -> bytes:
    """Serialise ``g`` as a TF-Lite flatbuffer (schema version 3)."""
    g.validate()
    model = fb.ModelT()
    model.version = 3
    model.description = description
    model.buffers = [fb.BufferT()]  # buffer 0: the empty buffer of every activation
    sub = fb.SubGraphT()
    sub.tensors, sub.operators = [], []
    index: dict[str, int] = {}

    def add_tensor(t: Tensor) -> int:
        ft = fb.TensorT()
        ft.name = t.name
        ft.shape = np.array(t.shape, dtype=np.int32)
        ft.type = _TYPE[t.dtype]
        q = fb.QuantizationParametersT()
        q.scale = np.asarray(t.scale, dtype=np.float32).reshape(-1)
        q.zeroPoint = np.asarray(t.zero_point, dtype=np.int64).reshape(-1)
        q.quantizedDimension = t.quantized_dim
        ft.quantization = q
        if t.is_constant:
            buf = fb.BufferT()
            buf.data = np.frombuffer(
                np.ascontiguousarray(
                    t.data.astype(np.int8 if t.dtype == "int8" else "<i4")
                ).tobytes(),
                dtype=np.uint8,
            )
            model.buffers.append(buf)
            ft.buffer = len(model.buffers) - 1
        else:
            ft.buffer = 0
        sub.tensors.append(ft)
        index[t.name] = len(sub.tensors) - 1
        return index[t.name]

    for t in g.tensors.values():
        add_tensor(t)
    codes: list[int] = []
    for op in g.ops:
        builtin = _BUILTIN[op.kind]
        if builtin not in codes:
            codes.append(builtin)
        inputs = [index[n] for n in op.inputs]
        const_inputs = OPS[op.kind].tflite.const_inputs  # PAD's paddings, RESHAPE's shape
        if const_inputs is not None:
            inputs += [add_tensor(t) for t in const_inputs(op, g)]
        fop = fb.OperatorT()
        fop.opcodeIndex = codes.index(builtin)
        fop.inputs = np.array(inputs, dtype=np.int32)
        fop.outputs = np.array([index[n] for n in op.outputs], dtype=np.int32)
        fop.builtinOptionsType, fop.builtinOptions = _options(op, g)
        sub.operators.append(fop)
    sub.inputs = np.array([index[n] for n in g.inputs], dtype=np.int32)
    sub.outputs = np.array([index[n] for n in g.outputs], dtype=np.int32)
    sub.name = "main"
    model.subgraphs = [sub]
    model.operatorCodes = []
    for code in codes:
        oc = fb.OperatorCodeT()
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)
        oc.version = 1
        model.operatorCodes.append(oc)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _tensor_from_fb(ft: Any, buffers: list[Any]) -> Tensor:
    if ft.type not in _TYPE_NAME:
        raise UnsupportedOperatorError(
            f"tensor {ft.name!r} has type {ft.type}; only int8 and int32 models are supported"
        )
    name = ft.name.decode() if isinstance(ft.name, bytes) else str(ft.name)
    shape = tuple(int(v) for v in (ft.shape if ft.shape is not None else []))
    q = ft.quantization
    scale = np.asarray(
        q.scale if q is not None and q.scale is not None else [1.0], dtype=np.float32
    )
    zp = np.asarray(
        q.zeroPoint if q is not None and q.zeroPoint is not None else [0], dtype=np.int64
    )
    data = None
    buf = buffers[ft.buffer] if ft.buffer < len(buffers) else None
    if buf is not None and buf.data is not None and len(buf.data):
        raw = np.asarray(buf.data, dtype=np.uint8).tobytes()
        data = (
            np.frombuffer(raw, dtype=np.int8 if ft.type == fb.TensorType.INT8 else "<i4")
            .reshape(shape)
            .copy()
        )
    return Tensor(
        name,
        shape,
        _TYPE_NAME[ft.type],
        scale,
        zp,
        data,
        int(q.quantizedDimension) if q is not None else 0,
    )


def import_tflite(data: bytes) -> Graph:
    """Read an int8 ``.tflite`` flatbuffer into a :class:`~common.mcu.graph.Graph`."""
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    if len(model.subgraphs) != 1:
        raise UnsupportedOperatorError(
            f"models with {len(model.subgraphs)} subgraphs are not supported"
        )
    sub = model.subgraphs[0]
    tensors = [_tensor_from_fb(t, model.buffers) for t in sub.tensors]
    # Unique names: a producer may repeat them.
    seen: dict[str, int] = {}
    for i, t in enumerate(tensors):
        if t.name in seen or not t.name:
            t.name = f"{t.name or 'tensor'}#{i}"
        seen[t.name] = i
    ops: list[Op] = []
    for i, fop in enumerate(sub.operators):
        oc = model.operatorCodes[fop.opcodeIndex]
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        if code not in _KIND:
            raise UnsupportedOperatorError(
                f"operator {_BUILTIN_NAMES.get(code, code)} (operator #{i}) is not supported; supported: "
                + ", ".join(_BUILTIN_NAMES[c] for c in _BUILTIN.values())
            )
        kind = _KIND[code]
        mapping = OPS[kind].tflite
        file_inputs = [tensors[j] for j in fop.inputs if j >= 0]
        options = mapping.read(fb, fop.builtinOptions, file_inputs, i)
        inputs = [t.name for t in file_inputs[: mapping.graph_inputs]]
        if options.get("activation") == "unsupported":
            raise UnsupportedOperatorError(
                f"{kind} (operator #{i}) has an unsupported fused activation"
            )
        ops.append(
            Op(kind, inputs, [tensors[j].name for j in fop.outputs], options, name=f"{kind}_{i}")
        )
    used = {n for op in ops for n in op.inputs + op.outputs}
    graph = Graph(
        tensors={t.name: t for t in tensors if t.name in used},
        ops=ops,
        inputs=[tensors[j].name for j in sub.inputs],
        outputs=[tensors[j].name for j in sub.outputs],
    )
    graph.validate()
    return graph


def save_tflite(g: Graph, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(export_tflite(g))
    return path


def load_tflite(path: str | Path) -> Graph:
    return import_tflite(Path(path).read_bytes())
