"""Check a ``.tflite`` file's bytes before anything else reads them.

A flatbuffer carries no checksum and the generated Python readers trust every offset, so an empty,
truncated or bit-flipped file fails deep inside ``flatbuffers`` (``struct.error``, ``IndexError``,
``TypeError``), inside our importer, or inside TF-Lite Micro's C++ (a tensor made enormous can take
the whole process down). :func:`validate_tflite` unpacks the bytes with the TF-Lite schema's Python
object API (``schema_py_generated`` in the ``tflite-micro`` wheel, as
:mod:`common.mcu.tflite_io` does) and checks everything the importer, the reference executor, the
code generator and the interpreter rely on:

* the structure: a ``TFL3`` flatbuffer of schema version 3 that unpacks, exactly one subgraph with
  one input and one output, every operator-code, tensor and buffer index in range, no buffers
  stored outside the file;
* the tensors: non-negative dimensions, at most :data:`MAX_ACTIVATION_BYTES` of activations in all,
  constant buffers of exactly shape x element size bytes, int8 activations and weights, int32
  biases (and PAD / RESHAPE shape inputs), quantization parameters (finite positive scales, int8
  zero points, symmetric weights) wherever an int8 tensor needs them;
* the operators: known operator codes among the supported ones, the options table each kind
  needs, operand counts, ranks and shapes consistent with the operator (the output shape a
  convolution or pool computes, matching channels, a bias on every convolution and fully
  connected layer, ADD operands that broadcast to its output, at most one of them an int8
  constant), and a data flow where every activation is written once before it is read.

Anything wrong raises :class:`ModelFormatError` (an :class:`~common.errors.InputError` and a
``ValueError``) with one line naming the file and the problem; a valid model using something the
engine does not support (an operator, a fused activation, dilation, a missing bias) raises its
subclass :class:`UnsupportedModelError` naming the operator's index and kind.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from common.errors import InputError
from common.mcu.graph import UnsupportedOperatorError, conv_output_size

#: The most activation bytes (every non-constant tensor, summed) a model may declare: a model for
#: a microcontroller has kilobytes to a few megabytes; more means a corrupt shape.
MAX_ACTIVATION_BYTES: int = 64 << 20

#: The schema version TF-Lite Micro reads.
SCHEMA_VERSION: int = 3

_BOP = fb.BuiltinOperator
_OPT = fb.BuiltinOptions
_T = fb.TensorType
_OP_NAMES = {v: k for k, v in vars(_BOP).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(_T).items() if not k.startswith("_")}
_ELEMENT_BYTES = {_T.INT8: 1, _T.INT32: 4}

# The operators the engine runs, with the options table each reads (``required``: the importer
# reads stride, padding and activation from it, so it must be there).
_OPTIONS: dict[int, tuple[int, bool]] = {
    _BOP.CONV_2D: (_OPT.Conv2DOptions, True),
    _BOP.DEPTHWISE_CONV_2D: (_OPT.DepthwiseConv2DOptions, True),
    _BOP.FULLY_CONNECTED: (_OPT.FullyConnectedOptions, False),
    _BOP.ADD: (_OPT.AddOptions, False),
    _BOP.AVERAGE_POOL_2D: (_OPT.Pool2DOptions, True),
    _BOP.MAX_POOL_2D: (_OPT.Pool2DOptions, True),
    _BOP.RESHAPE: (_OPT.ReshapeOptions, False),
    _BOP.PAD: (_OPT.PadOptions, False),
    _BOP.SOFTMAX: (_OPT.SoftmaxOptions, False),
}
_ACTIVATIONS = {
    fb.ActivationFunctionType.NONE,
    fb.ActivationFunctionType.RELU,
    fb.ActivationFunctionType.RELU6,
}
_ACTIVATION_NAMES = {
    v: k for k, v in vars(fb.ActivationFunctionType).items() if not k.startswith("_")
}
_PADDINGS = {fb.Padding.SAME: "same", fb.Padding.VALID: "valid"}


class ModelFormatError(InputError, ValueError):
    """The bytes are not a TF-Lite model this package can deploy (the message names the file and
    what is wrong, in one line)."""


class UnsupportedModelError(ModelFormatError, UnsupportedOperatorError):
    """A well-formed model that uses something the engine does not run (the message names the
    operator's index and kind)."""


def read_tflite(path: str | Path) -> bytes:
    """The bytes of the ``.tflite`` file ``path``, validated by :func:`validate_tflite`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: not found") from None
    except IsADirectoryError:
        raise ModelFormatError(f"{path}: is a directory, not a .tflite file") from None
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    validate_tflite(data, source=str(path))
    return data


def validate_tflite(data: bytes | bytearray | memoryview, *, source: str = "model") -> None:
    """Raise :class:`ModelFormatError` unless ``data`` is a well-formed int8 TF-Lite model that
    the engine supports; ``source`` (the file name) starts every message."""
    _Validator(bytes(data), source).run()


def _prod(shape: tuple[int, ...]) -> int:
    return math.prod(shape) if shape else 1


class _Validator:
    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.source = source

    # ------------------------------------------------------------------------------ messages
    def fail(self, what: str) -> ModelFormatError:
        return ModelFormatError(f"{self.source}: {what}")

    def unsupported(self, what: str) -> UnsupportedModelError:
        return UnsupportedModelError(f"{self.source}: {what}")

    def tensor_label(self, j: int) -> str:
        return f"tensor {j} ({self.names[j]!r})"

    def op_label(self, i: int) -> str:
        k = self.ops[i].opcodeIndex
        code = self.codes[k] if 0 <= k < len(self.codes) else None
        return f"operator {i} ({_OP_NAMES.get(code, '?')})"

    # ------------------------------------------------------------------------------ checks
    def run(self) -> None:
        model = self.unpack()
        if model.version != SCHEMA_VERSION:
            raise self.fail(
                f"schema version {model.version}; TF-Lite Micro reads version {SCHEMA_VERSION} "
                "(a corrupt file, or not written by a TF-Lite converter)"
            )
        subgraphs = model.subgraphs or []
        if len(subgraphs) != 1:
            raise self.unsupported(
                f"{len(subgraphs)} subgraphs; only models with exactly one subgraph are supported"
            )
        self.buffers = model.buffers or []
        for k, buf in enumerate(self.buffers):
            if buf.offset > 1 or buf.size > 0:  # data stored after the flatbuffer (> 2 GB models)
                raise self.unsupported(
                    f"buffer {k} is stored outside the flatbuffer (offset {buf.offset}, size "
                    f"{buf.size}); export the model without external buffers"
                )
        self.codes = [self.builtin_code(k, oc) for k, oc in enumerate(model.operatorCodes or [])]
        sub = subgraphs[0]
        self.tensors = sub.tensors or []
        self.ops = sub.operators or []
        if not self.tensors or not self.ops:
            raise self.fail("the subgraph has no tensors or no operators")
        self.names = [self.tensor_name(j, t) for j, t in enumerate(self.tensors)]
        self.shapes = [self.tensor_shape(j, t) for j, t in enumerate(self.tensors)]
        self.constant = [self.tensor_buffer(j, t) for j, t in enumerate(self.tensors)]
        self.check_sizes()
        for i, op in enumerate(self.ops):
            self.check_operator(i, op)
        self.check_io(sub)
        self.check_dataflow(sub)

    def unpack(self) -> Any:
        if not self.data:
            raise self.fail("the file is empty; expected a .tflite model")
        if len(self.data) < 8 or self.data[4:8] != b"TFL3":
            raise self.fail(
                f"not a TF-Lite model ({len(self.data)} bytes without the TFL3 identifier at "
                "byte 4)"
            )
        try:
            return fb.ModelT.InitFromObj(fb.Model.GetRootAs(self.data, 0))
        except Exception as exc:  # any reader failure means corrupt bytes
            detail = str(exc).splitlines()[0] if str(exc) else ""
            raise self.fail(
                f"corrupt or truncated TF-Lite flatbuffer ({type(exc).__name__}"
                + (f": {detail[:120]}" if detail else "")
                + ")"
            ) from None

    def builtin_code(self, k: int, oc: Any) -> int:
        # TF-Lite's rule: the larger of the two fields (deprecated_builtin_code saturates at 127).
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        if code not in _OP_NAMES:
            raise self.fail(
                f"operator code {k} has builtin code {code}, which TF-Lite does not know"
            )
        return code

    def tensor_name(self, j: int, t: Any) -> str:
        name = t.name if t.name is not None else b""
        if isinstance(name, bytes):
            try:
                return name.decode()
            except UnicodeDecodeError:
                raise self.fail(f"tensor {j} has a name that is not UTF-8 text") from None
        return str(name)

    def tensor_shape(self, j: int, t: Any) -> tuple[int, ...]:
        shape = tuple(int(v) for v in (t.shape if t.shape is not None else []))
        if any(v < 0 for v in shape):
            raise self.fail(
                f"tensor {j} ({self.names[j]!r}) has a negative dimension: {list(shape)}"
            )
        if t.sparsity is not None:
            raise self.unsupported(f"tensor {j} ({self.names[j]!r}) is sparse; export it dense")
        if t.isVariable:
            raise self.unsupported(f"tensor {j} ({self.names[j]!r}) is a variable (stateful model)")
        return shape

    def tensor_buffer(self, j: int, t: Any) -> bool:
        """Whether tensor ``j`` is a constant (its buffer holds data)."""
        if t.buffer >= len(self.buffers):
            raise self.fail(
                f"{self.tensor_label(j)} refers to buffer {t.buffer}; the file has "
                f"{len(self.buffers)}"
            )
        data = self.buffers[t.buffer].data
        if data is None or len(data) == 0:
            return False
        size = _ELEMENT_BYTES.get(t.type)
        if size is None:
            raise self.unsupported(
                f"{self.tensor_label(j)} is a constant of type "
                f"{_TYPE_NAMES.get(t.type, t.type)}; only int8 and int32 are supported"
            )
        expected = _prod(self.shapes[j]) * size
        if len(data) != expected:
            raise self.fail(
                f"{self.tensor_label(j)} has shape {list(self.shapes[j])} ({expected} bytes) but "
                f"its buffer {t.buffer} holds {len(data)} bytes"
            )
        return True

    def check_sizes(self) -> None:
        total, largest, big = 0, -1, 0
        for j, t in enumerate(self.tensors):
            if self.constant[j]:
                continue
            nbytes = _prod(self.shapes[j]) * _ELEMENT_BYTES.get(t.type, 8)
            total += nbytes
            if nbytes > largest:
                largest, big = nbytes, j
        if total > MAX_ACTIVATION_BYTES:
            raise self.fail(
                f"the activations take {total / 2**20:,.0f} MiB, more than the "
                f"{MAX_ACTIVATION_BYTES >> 20} MiB limit ({self.tensor_label(big)} has shape "
                f"{list(self.shapes[big])}: a corrupt shape?)"
            )

    # ------------------------------------------------------------------------------ tensors
    def tensor_index(self, i: int, j: int, what: str) -> int:
        if j < 0:
            raise self.fail(f"{self.op_label(i)} has no {what} (index {j})")
        if j >= len(self.tensors):
            raise self.fail(
                f"{self.op_label(i)} {what} refers to tensor {j}; the subgraph has "
                f"{len(self.tensors)}"
            )
        return j

    def activation(self, i: int, j: int, what: str, rank: int | None = None) -> tuple[int, ...]:
        """Check that tensor ``j`` (the ``what`` of operator ``i``) is an int8 activation
        quantized per tensor, of ``rank`` with batch 1 when given; returns its shape."""
        self.tensor_index(i, j, what)
        if self.constant[j]:
            raise self.unsupported(
                f"{self.op_label(i)} {what} {self.tensor_label(j)} is a constant; only its "
                "weights and bias may be"
            )
        self.typed(i, j, what, _T.INT8)
        shape = self.shapes[j]
        if rank is not None and len(shape) != rank:
            raise self.fail(
                f"{self.op_label(i)} {what} {self.tensor_label(j)} has shape {list(shape)}; "
                f"expected rank {rank}"
            )
        if rank == 4 and shape[0] != 1:
            raise self.unsupported(
                f"{self.op_label(i)} {what} has batch size {shape[0]}; only batch 1 is supported"
            )
        if 0 in shape:
            raise self.fail(f"{self.op_label(i)} {what} {self.tensor_label(j)} is empty")
        scale, _ = self.quantization(i, j, what)
        if len(scale) != 1:
            raise self.fail(
                f"{self.op_label(i)} {what} {self.tensor_label(j)} has {len(scale)} scales; "
                "activations are quantized per tensor"
            )
        return shape

    def constant_tensor(self, i: int, j: int, what: str, dtype: int, rank: int) -> tuple[int, ...]:
        self.tensor_index(i, j, what)
        if not self.constant[j]:
            raise self.unsupported(
                f"{self.op_label(i)} {what} {self.tensor_label(j)} is not a constant; only "
                f"constant {what}s are supported"
            )
        self.typed(i, j, what, dtype)
        shape = self.shapes[j]
        if len(shape) != rank or 0 in shape:
            raise self.fail(
                f"{self.op_label(i)} {what} {self.tensor_label(j)} has shape {list(shape)}; "
                f"expected {rank} non-zero dimensions"
            )
        return shape

    def typed(self, i: int, j: int, what: str, dtype: int) -> None:
        t = self.tensors[j].type
        if t != dtype:
            raise self.unsupported(
                f"{self.op_label(i)} {what} {self.tensor_label(j)} is "
                f"{_TYPE_NAMES.get(t, t)}; only {_TYPE_NAMES[dtype]} is supported here "
                "(an int8 model: int8 activations and weights, int32 biases)"
            )

    def quantization(self, i: int, j: int, what: str) -> tuple[np.ndarray, np.ndarray]:
        q = self.tensors[j].quantization
        scale = np.asarray(q.scale if q is not None and q.scale is not None else [], np.float64)
        zp = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [], np.int64)
        label = f"{self.op_label(i)} {what} {self.tensor_label(j)}"
        if scale.size == 0:
            raise self.fail(f"{label} has no quantization scale (not an int8-quantized model?)")
        if zp.size != scale.size:
            raise self.fail(f"{label} has {scale.size} scales but {zp.size} zero points")
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise self.fail(f"{label} has a scale that is not a finite positive number")
        if np.any(zp < -128) or np.any(zp > 127):
            raise self.fail(f"{label} has a zero point outside the int8 range")
        return scale, zp

    def weight_quantization(self, i: int, j: int, channels: int, dim: int) -> None:
        """Symmetric int8 weights: one scale, or one per ``channels`` along ``dim``."""
        scale, zp = self.quantization(i, j, "weights")
        label = f"{self.op_label(i)} weights {self.tensor_label(j)}"
        if np.any(zp != 0):
            raise self.unsupported(
                f"{label} have non-zero zero points; only symmetric int8 weights"
            )
        if scale.size not in (1, channels):
            raise self.fail(f"{label} have {scale.size} scales for {channels} output channels")
        q = self.tensors[j].quantization
        if scale.size > 1 and int(q.quantizedDimension) != dim:
            raise self.fail(
                f"{label} are quantized along dimension {q.quantizedDimension}; expected {dim}"
            )

    def bias(self, i: int, op: Any, channels: int) -> np.ndarray:
        """Check the int32 bias of ``channels`` values; returns them."""
        kind = _OP_NAMES[self.codes[op.opcodeIndex]]
        if len(op.inputs) < 3 or op.inputs[2] < 0:
            raise self.unsupported(
                f"{self.op_label(i)} has no bias tensor; the engine needs one on every "
                f"{kind} (convert with a bias, or add a zero int32 bias)"
            )
        j = int(op.inputs[2])
        shape = self.constant_tensor(i, j, "bias", _T.INT32, 1)
        if shape[0] != channels:
            raise self.fail(
                f"{self.op_label(i)} bias has {shape[0]} values for {channels} output channels"
            )
        q = self.tensors[j].quantization
        if q is not None and q.scale is not None and len(q.scale):
            self.quantization(i, j, "bias")  # optional, but well-formed when there
        return self.constant_values(j, "<i4")

    def constant_values(self, j: int, dtype: str) -> np.ndarray:
        data = self.buffers[self.tensors[j].buffer].data
        return np.frombuffer(np.asarray(data, np.uint8).tobytes(), dtype).astype(np.int64)

    def accumulator(self, i: int, x: int, w: int, out: int, terms: int, bias: np.ndarray) -> None:
        """The int32 arithmetic cannot overflow: ``terms`` products of an input (less its zero
        point: at most 255) and a weight (at most 128) plus the bias, shifted left by the
        requantization's shift, stay within int32 (TF-Lite Micro computes in int32, our reference
        in int64: beyond this they differ). Only absurd scales or biases fail this."""
        in_s = float(self.tensors[x].quantization.scale[0])
        out_s = float(self.tensors[out].quantization.scale[0])
        w_s = np.asarray(self.tensors[w].quantization.scale, np.float64)
        shift = max(math.frexp(in_s * float(s) / out_s)[1] for s in w_s)
        bound = (terms * 255 * 128 + int(np.abs(bias).max(initial=0))) << max(shift, 0)
        if bound >= 2**31:
            raise self.unsupported(
                f"{self.op_label(i)} could overflow its int32 accumulator (bias up to "
                f"{int(np.abs(bias).max(initial=0))}, requantization scale up to 2^{shift}): "
                "a corrupt scale or bias?"
            )

    # ------------------------------------------------------------------------------ operators
    def check_operator(self, i: int, op: Any) -> None:
        if not 0 <= op.opcodeIndex < len(self.codes):
            raise self.fail(
                f"operator {i} refers to operator code {op.opcodeIndex}; the file has "
                f"{len(self.codes)}"
            )
        code = self.codes[op.opcodeIndex]
        if code not in _OPTIONS:
            supported = ", ".join(_OP_NAMES[c] for c in _OPTIONS)
            raise self.unsupported(f"{self.op_label(i)} is not supported; supported: {supported}")
        if op.inputs is None or op.outputs is None or len(op.outputs) != 1:
            raise self.fail(f"{self.op_label(i)} must have inputs and exactly one output")
        for k, j in enumerate(op.inputs):
            if j < -1 or j >= len(self.tensors):
                raise self.fail(
                    f"{self.op_label(i)} input {k} refers to tensor {j}; the subgraph has "
                    f"{len(self.tensors)}"
                )
        expected, required = _OPTIONS[code]
        o = op.builtinOptions
        if op.builtinOptionsType != expected and (required or op.builtinOptionsType != _OPT.NONE):
            raise self.fail(
                f"{self.op_label(i)} has options of type {op.builtinOptionsType}; expected "
                f"{expected}" + ("" if required else " or none")
            )
        if op.builtinOptionsType == expected and o is None:
            raise self.fail(f"{self.op_label(i)} has an unreadable options table")
        arity = {
            _BOP.ADD: (2,),
            _BOP.PAD: (2,),
            _BOP.RESHAPE: (1, 2),
            _BOP.CONV_2D: (2, 3),
            _BOP.DEPTHWISE_CONV_2D: (2, 3),
            _BOP.FULLY_CONNECTED: (2, 3),
        }.get(code, (1,))
        if len(op.inputs) not in arity:
            raise self.unsupported(
                f"{self.op_label(i)} has {len(op.inputs)} inputs; expected "
                + " or ".join(str(n) for n in arity)
            )
        out = int(op.outputs[0])
        if not 0 <= out < len(self.tensors):
            raise self.fail(
                f"{self.op_label(i)} output refers to tensor {out}; the subgraph has "
                f"{len(self.tensors)}"
            )
        if o is not None and hasattr(o, "fusedActivationFunction"):
            act = o.fusedActivationFunction
            if act not in _ACTIVATIONS:
                raise self.unsupported(
                    f"{self.op_label(i)} has the fused activation "
                    f"{_ACTIVATION_NAMES.get(act, act)}; supported: NONE, RELU, RELU6"
                )
        x = int(op.inputs[0])
        if code in (_BOP.CONV_2D, _BOP.DEPTHWISE_CONV_2D):
            self.check_conv(i, op, code, o, x, out)
        elif code in (_BOP.AVERAGE_POOL_2D, _BOP.MAX_POOL_2D):
            xs = self.activation(i, x, "input", 4)
            self.window(i, o, xs, (o.filterHeight, o.filterWidth), xs[3], out)
            (s_in,), (zp_in,) = self.quantization(i, x, "input")
            (s_out,), (zp_out,) = self.quantization(i, out, "output")
            if abs(s_in - s_out) > 1e-6 or zp_in != zp_out:  # TF-Lite Micro's condition
                raise self.unsupported(
                    f"{self.op_label(i)} output quantization ({s_out:g}, {zp_out}) differs from "
                    f"its input's ({s_in:g}, {zp_in}); a pool keeps its input's"
                )
        elif code == _BOP.FULLY_CONNECTED:
            self.check_fully_connected(i, op, o, x, out)
        elif code == _BOP.ADD:
            self.check_add(i, op, x, out)
        elif code == _BOP.RESHAPE:
            a = self.activation(i, x, "input")
            y = self.activation(i, out, "output")
            if _prod(a) != _prod(y):
                raise self.fail(f"{self.op_label(i)} reshapes {list(a)} into {list(y)}")
            shapes = []
            if len(op.inputs) == 2 and op.inputs[1] >= 0:
                self.constant_tensor(i, int(op.inputs[1]), "shape", _T.INT32, 1)
                shapes.append(self.constant_values(int(op.inputs[1]), "<i4"))
            if o is not None and o.newShape is not None and len(o.newShape):
                shapes.append(np.asarray(o.newShape, np.int64))
            for new_shape in shapes:
                fixed = [int(v) for v in new_shape if v != -1]
                if (
                    len(new_shape) != len(y)
                    or len(fixed) < len(y) - 1
                    or any(v not in (-1, d) for v, d in zip(new_shape.tolist(), y, strict=True))
                ):
                    raise self.fail(
                        f"{self.op_label(i)} new shape {new_shape.tolist()} does not match its "
                        f"output {list(y)}"
                    )
        elif code == _BOP.PAD:
            self.check_pad(i, op, x, out)
        elif code == _BOP.SOFTMAX:
            a = self.activation(i, x, "input")
            y = self.activation(i, out, "output")
            scale, zp = self.quantization(i, out, "output")
            if a != y:
                raise self.fail(f"{self.op_label(i)} maps shape {list(a)} to {list(y)}")
            if zp[0] != -128 or np.float32(scale[0]) != np.float32(1 / 256):
                raise self.unsupported(
                    f"{self.op_label(i)} output has scale {scale[0]:g} and zero point {zp[0]}; "
                    "TF-Lite's int8 softmax needs 1/256 and -128"
                )
            beta = float(o.beta) if o is not None else 1.0
            in_s = float(self.tensors[x].quantization.scale[0])
            if not (math.isfinite(beta) and beta > 0 and beta * in_s * 2**26 > 1):
                raise self.unsupported(
                    f"{self.op_label(i)} has beta {beta:g} with input scale {in_s:g}; TF-Lite's "
                    "int8 softmax needs beta x input scale > 2^-26"
                )

    def check_add(self, i: int, op: Any, x: int, out: int) -> None:
        """ADD: two operands (activations, or one int8 constant) whose shapes broadcast (TF-Lite:
        aligned on the right, each dimension equal to the output's or 1) to the output's."""
        j = int(op.inputs[1])
        a = self.add_operand(i, x, "input")
        b = self.add_operand(i, j, "second input")
        if self.constant[x] and self.constant[j]:
            raise self.unsupported(
                f"{self.op_label(i)} adds two constants; fold it into one constant tensor"
            )
        y = self.activation(i, out, "output")
        if len(y) > 4:
            raise self.unsupported(
                f"{self.op_label(i)} output has rank {len(y)}; ADD supports up to 4 dimensions"
            )
        try:
            expected = tuple(int(v) for v in np.broadcast_shapes(a, b))
        except ValueError:
            raise self.fail(
                f"{self.op_label(i)} adds shapes {list(a)} and {list(b)}, which do not "
                "broadcast (aligned on the right, each dimension must be equal or 1)"
            ) from None
        if expected != tuple(y):
            raise self.fail(
                f"{self.op_label(i)} adds shapes {list(a)} and {list(b)} into {list(y)}; "
                f"expected {list(expected)}"
            )
        scales = [float(self.tensors[k].quantization.scale[0]) for k in (x, j, out)]
        if 2 * max(scales[:2]) / (2**20 * scales[2]) >= 1:
            raise self.unsupported(
                f"{self.op_label(i)} output scale {scales[2]:g} is too small for input "
                f"scales {scales[0]:g} and {scales[1]:g} (TF-Lite's int8 ADD needs "
                "2 x max input scale < 2^20 x output scale)"
            )

    def add_operand(self, i: int, j: int, what: str) -> tuple[int, ...]:
        """An ADD operand: an activation, or an int8 constant quantized per tensor."""
        self.tensor_index(i, j, what)
        if not self.constant[j]:
            return self.activation(i, j, what)
        self.typed(i, j, what, _T.INT8)
        shape = self.shapes[j]
        if 0 in shape or len(shape) > 4:
            raise self.unsupported(
                f"{self.op_label(i)} {what} {self.tensor_label(j)} is a constant of shape "
                f"{list(shape)}; ADD takes constants of at most 4 non-empty dimensions"
            )
        scale, _ = self.quantization(i, j, what)
        if len(scale) != 1:
            raise self.unsupported(
                f"{self.op_label(i)} {what} {self.tensor_label(j)} is a constant with "
                f"{len(scale)} scales; an ADD operand is quantized per tensor"
            )
        return shape

    def check_conv(self, i: int, op: Any, code: int, o: Any, x: int, out: int) -> None:
        xs = self.activation(i, x, "input", 4)
        depthwise = code == _BOP.DEPTHWISE_CONV_2D
        if len(op.inputs) < 2 or op.inputs[1] < 0:
            raise self.fail(f"{self.op_label(i)} has no weights")
        ws = self.constant_tensor(i, int(op.inputs[1]), "weights", _T.INT8, 4)
        channels = ws[3] if depthwise else ws[0]
        self.weight_quantization(i, int(op.inputs[1]), channels, 3 if depthwise else 0)
        if depthwise:
            if ws[0] != 1 or ws[3] != xs[3] or o.depthMultiplier != 1:
                raise self.unsupported(
                    f"{self.op_label(i)} has weights {list(ws)} on {xs[3]} input channels "
                    f"(depth multiplier {o.depthMultiplier}); only depth multiplier 1 is supported"
                )
        elif ws[3] != xs[3]:
            raise self.fail(
                f"{self.op_label(i)} weights {list(ws)} expect {ws[3]} input channels; the "
                f"input has {xs[3]}"
            )
        if o.dilationHFactor not in (0, 1) or o.dilationWFactor not in (0, 1):
            raise self.unsupported(f"{self.op_label(i)} uses dilation; it is not supported")
        bias = self.bias(i, op, channels)
        self.window(i, o, xs, (ws[1], ws[2]), channels, out)
        terms = ws[1] * ws[2] * (1 if depthwise else ws[3])
        self.accumulator(i, x, int(op.inputs[1]), out, terms, bias)

    def window(
        self, i: int, o: Any, xs: tuple[int, ...], kernel: tuple[int, int], channels: int, out: int
    ) -> None:
        """A sliding-window operator: stride, padding and the output shape they give."""
        ys = self.activation(i, out, "output", 4)
        if o.strideH < 1 or o.strideW < 1 or kernel[0] < 1 or kernel[1] < 1:
            raise self.fail(
                f"{self.op_label(i)} has stride {(o.strideH, o.strideW)} and window "
                f"{tuple(kernel)}; both must be positive"
            )
        if o.padding not in _PADDINGS:
            raise self.fail(f"{self.op_label(i)} has an unknown padding {o.padding}")
        # A window beyond twice the input covers nothing more (SAME pads it), and a corrupt one
        # would make the reference executor allocate the padded input.
        if any(k > max(2 * n, 16) for k, n in zip(kernel, xs[1:3], strict=True)):
            raise self.unsupported(
                f"{self.op_label(i)} has a {kernel[0]}x{kernel[1]} window on a {xs[1]}x{xs[2]} "
                "input (a corrupt size?)"
            )
        padding = _PADDINGS[o.padding]
        oh, _ = conv_output_size(xs[1], kernel[0], o.strideH, padding)
        ow, _ = conv_output_size(xs[2], kernel[1], o.strideW, padding)
        if (oh, ow, channels) != tuple(ys[1:]) or oh < 1 or ow < 1:
            raise self.fail(
                f"{self.op_label(i)} maps input {list(xs)} with window {tuple(kernel)}, stride "
                f"{(o.strideH, o.strideW)} and {padding.upper()} padding to {list(ys)}; "
                f"expected [1, {oh}, {ow}, {channels}]"
            )

    def check_fully_connected(self, i: int, op: Any, o: Any, x: int, out: int) -> None:
        xs = self.activation(i, x, "input")
        if op.inputs[1] < 0:
            raise self.fail(f"{self.op_label(i)} has no weights")
        ws = self.constant_tensor(i, int(op.inputs[1]), "weights", _T.INT8, 2)
        self.weight_quantization(i, int(op.inputs[1]), ws[0], 0)
        if o is not None and o.weightsFormat != fb.FullyConnectedOptionsWeightsFormat.DEFAULT:
            raise self.unsupported(f"{self.op_label(i)} has shuffled weights; not supported")
        if _prod(xs) != ws[1]:
            raise self.unsupported(
                f"{self.op_label(i)} reads {_prod(xs)} input values with weights {list(ws)}; "
                "only batch 1 (input size = weight columns) is supported"
            )
        bias = self.bias(i, op, ws[0])
        ys = self.activation(i, out, "output")
        if _prod(ys) != ws[0]:
            raise self.fail(
                f"{self.op_label(i)} output has shape {list(ys)} for {ws[0]} output features"
            )
        self.accumulator(i, x, int(op.inputs[1]), out, ws[1], bias)
        # TF-Lite Micro's rule for a fully connected layer: bias scale = input x weight scale
        bias_s = float(self.quantization(i, int(op.inputs[2]), "bias")[0][0])
        product = float(
            np.float32(self.tensors[x].quantization.scale[0])
            * np.float32(self.tensors[int(op.inputs[1])].quantization.scale[0])
        )
        if abs(product - bias_s) / float(self.tensors[out].quantization.scale[0]) > 0.02:
            raise self.unsupported(
                f"{self.op_label(i)} bias scale {bias_s:g} is not input scale x weight scale "
                f"({product:g}), as TF-Lite Micro requires"
            )

    def check_pad(self, i: int, op: Any, x: int, out: int) -> None:
        xs = self.activation(i, x, "input", 4)
        ys = self.activation(i, out, "output", 4)
        j = int(op.inputs[1])
        ps = self.constant_tensor(i, j, "paddings", _T.INT32, 2)
        data = self.buffers[self.tensors[j].buffer].data
        if ps != (4, 2):
            raise self.fail(f"{self.op_label(i)} paddings have shape {list(ps)}; expected [4, 2]")
        p = np.frombuffer(np.asarray(data, np.uint8).tobytes(), "<i4").reshape(4, 2)
        if np.any(p < 0) or np.any(p[0] != 0) or np.any(p[3] != 0):
            raise self.unsupported(
                f"{self.op_label(i)} pads by {p.tolist()}; only non-negative padding of height "
                "and width is supported"
            )
        expected = (1, xs[1] + int(p[1].sum()), xs[2] + int(p[2].sum()), xs[3])
        if tuple(ys) != expected:
            raise self.fail(
                f"{self.op_label(i)} pads {list(xs)} by {p.tolist()} into {list(ys)}; expected "
                f"{list(expected)}"
            )

    # ------------------------------------------------------------------------------ graph
    def check_io(self, sub: Any) -> None:
        inputs = [] if sub.inputs is None else [int(j) for j in sub.inputs]
        outputs = [] if sub.outputs is None else [int(j) for j in sub.outputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise self.unsupported(
                f"the model has {len(inputs)} inputs and {len(outputs)} outputs; exactly one "
                "of each is supported"
            )
        for what, j in (("input", inputs[0]), ("output", outputs[0])):
            if not 0 <= j < len(self.tensors):
                raise self.fail(
                    f"the model {what} refers to tensor {j}; the subgraph has {len(self.tensors)}"
                )
            if self.tensors[j].type != _T.INT8 or self.constant[j]:
                t = self.tensors[j].type
                raise self.unsupported(
                    f"the model {what} {self.tensor_label(j)} is "
                    f"{'a constant' if self.constant[j] else _TYPE_NAMES.get(t, t)}; the model "
                    "needs an int8 input and output"
                )

    def check_dataflow(self, sub: Any) -> None:
        """Every activation an operator reads is the model input or written by an earlier
        operator; each is written once; the model output is written by an operator."""
        first = int(sub.inputs[0])
        written = {first}
        for i, op in enumerate(self.ops):
            for j in (int(j) for j in op.inputs):
                if j >= 0 and not self.constant[j] and j not in written:
                    raise self.fail(
                        f"{self.op_label(i)} reads {self.tensor_label(j)} before any operator "
                        "writes it"
                    )
            y = int(op.outputs[0])
            if y in written:
                raise self.fail(
                    f"{self.op_label(i)} writes {self.tensor_label(y)}, which is already written"
                )
            written.add(y)
        last = int(sub.outputs[0])
        if last == first or last not in written:
            raise self.fail(f"the model output {self.tensor_label(last)} is written by no operator")
