"""A ``.tflite`` produced elsewhere deploys and matches TF-Lite Micro bit for bit.

The model here is *not* written by :func:`common.mcu.tflite_io.export_tflite`: it is assembled
field by field with the low-level flatbuffers builder functions of the TF-Lite schema (the
``schema_py_generated`` module of the tflite-micro wheel), in the layout TF-Lite's converter
produces and unlike our exporter's:

* tensors in a shuffled order (the graph input is not tensor 0), TF-style names with ``/``,
  ``;`` and ``:``, a ``shape_signature`` on the input and output;
* buffer 0 empty, the graph input and output each with an empty buffer of their own (as the MLIR
  converter does), constant buffers in reverse tensor order, 16-byte aligned, and two biases with
  equal bytes sharing one buffer; the buffers are serialised after the subgraph, so their bytes
  lie before the tensor tables in the file;
* per-channel weights (``quantized_dimension`` 0 for convolutions, 3 for the depthwise one),
  per-channel quantization on the biases, per-tensor fully connected weights;
* operator codes with versions > 1 and ``deprecated_builtin_code`` set, RESHAPE with an int32
  shape tensor holding ``[-1, C]`` plus ``ReshapeOptions``, a ``min_runtime_version`` metadata
  entry.

The file is imported with :func:`~common.mcu.tflite_io.import_tflite` and every engine must give
the interpreter's output on the original bytes: the numpy reference, the host C build and the
emulated Cortex-M7 build, with specialized (TinyEngine-style) and reference kernels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from common.mcu import codegen, cortexm, reference, tflm, toolchain
from common.mcu.graph import UnsupportedOperatorError
from common.mcu.tflite_io import import_tflite
from common.mcu.tflite_writer import (
    OperatorSpec,
    TensorSpec,
    add_options,
    conv_options,
    depthwise_options,
    fc_options,
    pool_options,
    reshape_options,
    softmax_options,
    write_tflite,
)

INPUT_SHAPE = (1, 12, 12, 3)
N_INPUTS = 4
BOP = fb.BuiltinOperator


# The converter-style writer and its option writers live in common.mcu.tflite_writer (the fuzz
# harness writes its random models with them too).
_Tensor, _Operator, write_foreign_tflite = TensorSpec, OperatorSpec, write_tflite
_conv_options = conv_options
_depthwise_options = depthwise_options(1, fb.Padding.SAME, fb.ActivationFunctionType.RELU6)
_add_options = add_options(fb.ActivationFunctionType.NONE)
_pool_options = pool_options((6, 6), 1, fb.Padding.VALID, fb.ActivationFunctionType.NONE)
_reshape_options = reshape_options((-1, 8))
_fc_options = fc_options(fb.ActivationFunctionType.NONE)
_softmax_options = softmax_options(1.0)


# --- the model --------------------------------------------------------------------------------

I8, I32 = fb.TensorType.INT8, fb.TensorType.INT32
RELU6_Q = ((6.0 / 255.0,), (-128,))  # what TF's converter gives a relu6 output


def _weights(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-127, 128, size=shape).astype(np.int8)


def foreign_model(seed: int = 0) -> tuple[bytes, bytes]:
    """``(tflite bytes, first convolution's weight bytes)`` of the hand-written model.

    input 1x12x12x3 -> CONV 3x3/2 SAME relu6 (8 ch, per-channel) -> DEPTHWISE 3x3 SAME relu6 ->
    CONV 1x1 (no act) -> ADD with the first convolution's output (residual) -> AVERAGE_POOL 6x6
    -> RESHAPE [-1, 8] -> FULLY_CONNECTED 8->10 -> SOFTMAX (1/256, -128).
    """
    rng = np.random.default_rng(seed)
    in_s, in_zp = 1.0 / 128.0, 0
    c = 8

    w1 = _weights(rng, (c, 3, 3, 3))
    s1 = rng.uniform(0.005, 0.015, size=c)
    b1 = rng.integers(-300, 300, size=c).astype("<i4")
    w2 = _weights(rng, (1, 3, 3, c))
    s2 = rng.uniform(0.003, 0.01, size=c)
    w3 = _weights(rng, (c, 1, 1, c))
    s3 = rng.uniform(0.004, 0.01, size=c)
    b23 = rng.integers(-200, 200, size=c).astype("<i4")  # one buffer, two biases
    w4 = _weights(rng, (10, c))
    s4 = 0.008
    b4 = rng.integers(-500, 500, size=10).astype("<i4")

    relu6_s = RELU6_Q[0][0]
    conv3_q = ((0.05,), (3,))
    add_q = ((0.06,), (-20,))
    fc_q = ((0.04,), (5,))

    def bias_scale(in_scale: float, ws: np.ndarray) -> tuple[float, ...]:
        return tuple(float(in_scale * s) for s in ws)

    n_conv1 = "model/conv2d/Relu6;model/conv2d/BiasAdd;model/conv2d/Conv2D"
    n_dw = "model/depthwise_conv2d/Relu6;model/depthwise_conv2d/depthwise"
    n_conv3 = "model/conv2d_1/BiasAdd;model/conv2d_1/Conv2D"
    tensors = [
        _Tensor("serving_default_input_1:0", INPUT_SHAPE, I8, (in_s,), (in_zp,), signature=True),
        _Tensor("model/conv2d/Conv2D", (c, 3, 3, 3), I8, tuple(s1), (0,) * c, 0, w1.tobytes()),
        _Tensor(
            "model/conv2d/BiasAdd/ReadVariableOp",
            (c,),
            I32,
            bias_scale(in_s, s1),
            (0,) * c,
            0,
            b1.tobytes(),
        ),
        _Tensor(n_conv1, (1, 6, 6, c), I8, *RELU6_Q),
        _Tensor(
            "model/depthwise_conv2d/depthwise",
            (1, 3, 3, c),
            I8,
            tuple(s2),
            (0,) * c,
            3,
            w2.tobytes(),
        ),
        _Tensor(
            "model/depthwise_conv2d/BiasAdd/ReadVariableOp",
            (c,),
            I32,
            bias_scale(relu6_s, s2),
            (0,) * c,
            0,
            b23.tobytes(),
        ),
        _Tensor(n_dw, (1, 6, 6, c), I8, *RELU6_Q),
        _Tensor("model/conv2d_1/Conv2D", (c, 1, 1, c), I8, tuple(s3), (0,) * c, 0, w3.tobytes()),
        _Tensor(
            "model/conv2d_1/BiasAdd/ReadVariableOp",
            (c,),
            I32,
            bias_scale(relu6_s, s3),
            (0,) * c,
            0,
            b23.tobytes(),
        ),
        _Tensor(n_conv3, (1, 6, 6, c), I8, *conv3_q),
        _Tensor("model/add/add", (1, 6, 6, c), I8, *add_q),
        # Average pooling and reshape keep their input's quantization (TF-Lite requires it).
        _Tensor("model/global_average_pooling2d/Mean", (1, 1, 1, c), I8, *add_q),
        _Tensor("model/flatten/Const", (2,), I32, data=np.array([-1, c], "<i4").tobytes()),
        _Tensor("model/flatten/Reshape", (1, c), I8, *add_q),
        _Tensor("model/dense/MatMul", (10, c), I8, (s4,), (0,), 0, w4.tobytes()),
        _Tensor(
            "model/dense/BiasAdd/ReadVariableOp",
            (10,),
            I32,
            (add_q[0][0] * s4,),
            (0,),
            0,
            b4.tobytes(),
        ),
        _Tensor("model/dense/BiasAdd", (1, 10), I8, *fc_q),
        _Tensor("StatefulPartitionedCall:0", (1, 10), I8, (1.0 / 256.0,), (-128,), signature=True),
    ]
    t = [x.name for x in tensors]
    act = fb.ActivationFunctionType
    ops = [
        _Operator(
            BOP.CONV_2D,
            3,
            [t[0], t[1], t[2]],
            [t[3]],
            fb.BuiltinOptions.Conv2DOptions,
            _conv_options(2, fb.Padding.SAME, act.RELU6),
        ),
        _Operator(
            BOP.DEPTHWISE_CONV_2D,
            3,
            [t[3], t[4], t[5]],
            [t[6]],
            fb.BuiltinOptions.DepthwiseConv2DOptions,
            _depthwise_options,
        ),
        _Operator(
            BOP.CONV_2D,
            3,
            [t[6], t[7], t[8]],
            [t[9]],
            fb.BuiltinOptions.Conv2DOptions,
            _conv_options(1, fb.Padding.VALID, act.NONE),
        ),
        _Operator(BOP.ADD, 2, [t[9], t[3]], [t[10]], fb.BuiltinOptions.AddOptions, _add_options),
        _Operator(
            BOP.AVERAGE_POOL_2D, 2, [t[10]], [t[11]], fb.BuiltinOptions.Pool2DOptions, _pool_options
        ),
        _Operator(
            BOP.RESHAPE,
            1,
            [t[11], t[12]],
            [t[13]],
            fb.BuiltinOptions.ReshapeOptions,
            _reshape_options,
        ),
        _Operator(
            BOP.FULLY_CONNECTED,
            4,
            [t[13], t[14], t[15]],
            [t[16]],
            fb.BuiltinOptions.FullyConnectedOptions,
            _fc_options,
        ),
        _Operator(
            BOP.SOFTMAX, 2, [t[16]], [t[17]], fb.BuiltinOptions.SoftmaxOptions, _softmax_options
        ),
    ]
    return write_foreign_tflite(tensors, ops, [t[0]], [t[17]]), w1.tobytes()


# --- tests ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> tuple[bytes, bytes]:
    return foreign_model(0)


@pytest.fixture(scope="module")
def inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(123)
    return [rng.integers(-128, 128, size=INPUT_SHAPE).astype(np.int8) for _ in range(N_INPUTS)]


@pytest.fixture(scope="module")
def expected(model: tuple[bytes, bytes], inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The tflite-micro interpreter's outputs on the original bytes."""
    return [tflm.run(model[0], x).reshape(-1) for x in inputs]


def test_file_is_foreign_and_interpreter_output_is_informative(
    model: tuple[bytes, bytes], expected: list[np.ndarray]
) -> None:
    data, _ = model
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    sub = m.subgraphs[0]
    assert int(sub.inputs[0]) != 0  # shuffled tensor order
    assert m.buffers[0].data is None and len(m.buffers) > 10
    assert {int(oc.version) for oc in m.operatorCodes} >= {2, 3, 4}
    assert all(oc.deprecatedBuiltinCode == oc.builtinCode for oc in m.operatorCodes)
    used = [t.buffer for t in sub.tensors if m.buffers[t.buffer].data is not None]
    assert len(used) > len(set(used))  # a shared buffer
    # Not a degenerate model: the softmax output depends on the input and is not saturated.
    assert len({e.tobytes() for e in expected}) == len(expected)
    assert all(e.max() < 127 for e in expected)


def test_import_matches_interpreter(
    model: tuple[bytes, bytes], inputs: list[np.ndarray], expected: list[np.ndarray]
) -> None:
    g = import_tflite(model[0])
    assert [op.kind for op in g.ops] == [
        "conv2d",
        "depthwise_conv2d",
        "conv2d",
        "add",
        "avg_pool2d",
        "reshape",
        "fully_connected",
        "softmax",
    ]
    assert g.tensors[g.inputs[0]].shape == INPUT_SHAPE
    for x, e in zip(inputs, expected, strict=True):
        ours = reference.run(g, x)[g.outputs[0]].reshape(-1)
        assert np.array_equal(ours, e)


def test_perturbed_weight_changes_output(
    model: tuple[bytes, bytes], inputs: list[np.ndarray], expected: list[np.ndarray]
) -> None:
    """The comparison is not vacuous: one flipped weight byte in the file changes the output,
    and the importer sees the same change as the interpreter."""
    data, w1 = model
    at = data.find(w1)
    assert at > 0 and data.find(w1, at + 1) == -1
    bad = bytearray(data)
    bad[at + 5] ^= 0x80
    bad = bytes(bad)
    g = import_tflite(bad)
    changed = 0
    for x, e in zip(inputs, expected, strict=True):
        theirs = tflm.run(bad, x).reshape(-1)
        assert np.array_equal(reference.run(g, x)[g.outputs[0]].reshape(-1), theirs)
        changed += not np.array_equal(theirs, e)
    assert changed > 0


@pytest.mark.parametrize("kernels", ["specialized", "reference"])
def test_host_c_build_matches_interpreter(
    kernels: str,
    model: tuple[bytes, bytes],
    inputs: list[np.ndarray],
    expected: list[np.ndarray],
    tmp_path: Path,
) -> None:
    if not toolchain.have("gcc"):
        pytest.skip("needs gcc (apt: gcc)")
    g = import_tflite(model[0])
    project = codegen.generate(g, tmp_path / "c", codegen.CodegenOptions(kernels=kernels))
    exe = codegen.build_host(project)
    for x, e in zip(inputs, expected, strict=True):
        assert np.array_equal(codegen.run_host(exe, x), e)


@pytest.mark.mcu
@pytest.mark.parametrize("kernels", ["specialized", "reference"])
def test_cortex_m7_matches_interpreter(
    kernels: str,
    model: tuple[bytes, bytes],
    inputs: list[np.ndarray],
    expected: list[np.ndarray],
    tmp_path: Path,
) -> None:
    if not toolchain.have("arm-none-eabi-gcc"):
        pytest.skip(toolchain.install_hint(["arm-none-eabi-gcc"]))  # names the apt-get command
    g = import_tflite(model[0])
    project = codegen.generate(g, tmp_path / "c", codegen.CodegenOptions(kernels=kernels))
    build = cortexm.build(project.out_dir, "stm32f746", out_dir=tmp_path / "m7")
    for x, e in zip(inputs, expected, strict=True):
        assert np.array_equal(cortexm.run(build, x).output.reshape(-1), e)


@pytest.mark.parametrize(
    ("builtin", "name"),
    [(BOP.TANH, "TANH"), (BOP.CONV_3D, "CONV_3D"), (BOP.CUMSUM, "CUMSUM")],
)
def test_unsupported_operator_in_foreign_file_is_named(builtin: int, name: str) -> None:
    q = ((0.02,), (0,))
    tensors = [
        _Tensor("x", (1, 4, 4, 2), I8, *q),
        _Tensor("y", (1, 4, 4, 2), I8, *q),
    ]
    data = write_foreign_tflite(tensors, [_Operator(builtin, 2, ["x"], ["y"])], ["x"], ["y"])
    with pytest.raises(UnsupportedOperatorError, match=rf"\b{name}\b"):
        import_tflite(data)
