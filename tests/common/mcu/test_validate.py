"""The ``.tflite`` validator: every corrupt or unsupported file is one :class:`ModelFormatError`
line, and whatever it accepts the importer reads and TF-Lite Micro runs like our reference."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import pytest
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from common.errors import InputError
from common.mcu import reference, tflm
from common.mcu.fixtures import GraphBuilder, random_graph
from common.mcu.graph import SUPPORTED_OPS, UnsupportedOperatorError
from common.mcu.tflite_io import export_tflite, import_tflite
from common.mcu.validate import (
    MAX_ACTIVATION_BYTES,
    ModelFormatError,
    UnsupportedModelError,
    read_tflite,
    validate_tflite,
)
from tests.common.mcu.test_foreign_tflite import foreign_model


def small_model() -> bytes:
    """1x8x8x3 -> CONV 3x3 (4 ch) -> RESHAPE -> FULLY_CONNECTED 10: a 2 kB file."""
    b = GraphBuilder((1, 8, 8, 3), seed=3)
    b.conv(4, 3, stride=2)
    b.reshape((1, 64))
    b.fc(10)
    return export_tflite(b.build())


def edit(data: bytes, change: Callable[[Any], None]) -> bytes:
    """``data`` unpacked with the schema's object API, changed in place, packed again."""
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    change(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def rejected(data: bytes, match: str, kind: type[Exception] = ModelFormatError) -> str:
    with pytest.raises(kind, match=match) as info:
        validate_tflite(data, source="m.tflite")
    msg = str(info.value)
    assert msg.startswith("m.tflite: ") and "\n" not in msg
    return msg


def agrees_with_tflm(data: bytes, seed: int = 0) -> None:
    """What the validator accepts, the importer reads and TF-Lite Micro computes the same."""
    g = import_tflite(data)
    x = np.random.default_rng(seed).integers(-128, 128, g.tensors[g.inputs[0]].shape, np.int8)
    ours = reference.run(g, x)[g.outputs[0]]
    assert np.array_equal(ours.reshape(-1), tflm.run(data, x).reshape(-1))


# --- valid files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [small_model, lambda: export_tflite(random_graph(1)), lambda: foreign_model(0)[0]],
    ids=["small", "every_operator", "foreign"],
)
def test_valid_models_pass(make: Callable[[], bytes]) -> None:
    data = make()
    validate_tflite(data)
    agrees_with_tflm(data)


def test_the_validator_knows_every_supported_operator() -> None:
    from common.mcu.validate import _OP_NAMES, _OPTIONS

    kinds = {_OP_NAMES[c].lower().replace("_2d", "2d") for c in _OPTIONS}
    kinds = {"avg_pool2d" if k == "average_pool2d" else k for k in kinds}
    assert kinds == set(SUPPORTED_OPS)


def test_errors_are_input_errors_and_value_errors() -> None:
    assert issubclass(ModelFormatError, InputError) and issubclass(ModelFormatError, ValueError)
    assert issubclass(UnsupportedModelError, UnsupportedOperatorError)


def test_read_tflite_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="not found"):
        read_tflite(tmp_path / "missing.tflite")
    with pytest.raises(ModelFormatError, match="is a directory"):
        read_tflite(tmp_path)
    path = tmp_path / "good.tflite"
    path.write_bytes(small_model())
    assert read_tflite(path) == path.read_bytes()


# --- corrupt files ----------------------------------------------------------------------------


def test_empty_and_random_bytes() -> None:
    rejected(b"", "empty")
    for seed in range(5):
        junk = np.random.default_rng(seed).integers(0, 256, 3000, np.uint8).tobytes()
        rejected(junk, "not a TF-Lite model")
        rejected(junk[:4] + b"TFL3" + junk[8:], ".")


@pytest.mark.parametrize("fraction", [0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_truncated_files(fraction: float) -> None:
    data = small_model()
    rejected(data[: int(len(data) * fraction)], ".")


def test_single_bit_flips_are_rejected_or_harmless() -> None:
    """Thirty seeded single-bit flips: each is one ModelFormatError line, or a model that the
    importer reads and TF-Lite Micro computes exactly like our reference (a flipped weight)."""
    data = small_model()
    rng = np.random.default_rng(2024)
    outcomes = {"rejected": 0, "accepted": 0}
    for pos, bit in zip(rng.integers(0, len(data), 30), rng.integers(0, 8, 30), strict=True):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << bit
        try:
            validate_tflite(bytes(flipped), source="m.tflite")
        except ModelFormatError as exc:
            assert str(exc).startswith("m.tflite: ") and "\n" not in str(exc)
            outcomes["rejected"] += 1
            continue
        agrees_with_tflm(bytes(flipped))
        outcomes["accepted"] += 1
    assert outcomes["rejected"] >= 5, outcomes  # the flips do reach the structure


def test_an_enormous_tensor_is_refused_before_tflm() -> None:
    def grow(m: Any) -> None:
        m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]].shape = np.array(
            [1, 65536, 65536, 3], np.int32
        )

    msg = rejected(edit(small_model(), grow), "MiB")
    assert f"{MAX_ACTIVATION_BYTES >> 20} MiB limit" in msg and "65536" in msg


# --- structure ----------------------------------------------------------------------------------


def _sub(m: Any) -> Any:
    return m.subgraphs[0]


def _conv(m: Any) -> Any:
    return _sub(m).operators[0]


def _with(values: np.ndarray, k: int, v: int) -> np.ndarray:
    """A copy of the (read-only) index vector ``values`` with ``values[k] = v``."""
    out = np.array(values)
    out[k] = v
    return out


@pytest.mark.parametrize(
    ("change", "match", "kind"),
    [
        (
            lambda m: setattr(_conv(m), "inputs", _conv(m).inputs[:2]),
            r"operator 0 \(CONV_2D\) has no bias tensor",
            UnsupportedModelError,
        ),
        (
            lambda m: setattr(_conv(m), "inputs", _with(_conv(m).inputs, 2, -1)),
            r"operator 0 \(CONV_2D\) has no bias tensor",
            UnsupportedModelError,
        ),
        (
            lambda m: setattr(_conv(m), "inputs", _with(_conv(m).inputs, 1, 999)),
            "refers to tensor 999",
            ModelFormatError,
        ),
        (lambda m: setattr(_conv(m), "opcodeIndex", 7), "operator code 7", ModelFormatError),
        (
            lambda m: setattr(_sub(m).tensors[1], "buffer", 99),
            "refers to buffer 99",
            ModelFormatError,
        ),
        (
            lambda m: setattr(m.buffers[_sub(m).tensors[1].buffer], "data", np.zeros(5, np.uint8)),
            "holds 5 bytes",
            ModelFormatError,
        ),
        (lambda m: setattr(_sub(m).tensors[0], "quantization", None), "no quantization", None),
        (
            lambda m: setattr(_sub(m).tensors[0].quantization, "scale", np.array([np.nan])),
            "finite positive",
            ModelFormatError,
        ),
        (
            lambda m: setattr(_sub(m).tensors[0], "type", fb.TensorType.FLOAT32),
            "FLOAT32",
            UnsupportedModelError,
        ),
        (lambda m: m.subgraphs.append(m.subgraphs[0]), "2 subgraphs", UnsupportedModelError),
        (
            lambda m: setattr(_sub(m), "outputs", np.array([_sub(m).outputs[0]] * 2, np.int32)),
            "1 inputs and 2 outputs",
            UnsupportedModelError,
        ),
        (
            lambda m: setattr(m.operatorCodes[0], "builtinCode", fb.BuiltinOperator.TANH),
            r"operator 0 \(TANH\) is not supported",
            UnsupportedModelError,
        ),
        (
            lambda m: setattr(m.operatorCodes[0], "builtinCode", 4000),
            "builtin code 4000",
            ModelFormatError,
        ),
        (
            lambda m: setattr(_conv(m).builtinOptions, "strideH", 0),
            "must be positive",
            ModelFormatError,
        ),
        (
            lambda m: setattr(_conv(m).builtinOptions, "fusedActivationFunction", 4),
            "TANH",
            UnsupportedModelError,
        ),
        (
            lambda m: setattr(_conv(m).builtinOptions, "dilationHFactor", 2),
            "dilation",
            UnsupportedModelError,
        ),
        (
            lambda m: setattr(_conv(m), "builtinOptionsType", fb.BuiltinOptions.NONE),
            "options",
            ModelFormatError,
        ),
        (
            lambda m: setattr(
                _sub(m).tensors[_conv(m).outputs[0]], "shape", np.array([1, 8, 8, 4], np.int32)
            ),
            r"expected \[1, 4, 4, 4\]",
            ModelFormatError,
        ),
        (
            lambda m: setattr(_sub(m), "operators", _sub(m).operators[::-1]),
            "before any operator writes it",
            ModelFormatError,
        ),
        (lambda m: setattr(m, "version", 2), "schema version 2", ModelFormatError),
    ],
    ids=[
        "no_bias",
        "bias_minus_one",
        "tensor_index",
        "opcode_index",
        "buffer_index",
        "buffer_size",
        "no_quantization",
        "nan_scale",
        "float_activations",
        "two_subgraphs",
        "two_outputs",
        "unsupported_op",
        "unknown_op",
        "zero_stride",
        "tanh_activation",
        "dilation",
        "missing_options",
        "output_shape",
        "operator_order",
        "schema_version",
    ],
)
def test_structural_errors_are_named(
    change: Callable[[Any], None], match: str, kind: type[Exception] | None
) -> None:
    data = edit(small_model(), change)
    rejected(data, match, kind or ModelFormatError)


def _buffer_of(m: Any, j: int) -> Any:
    return m.buffers[_sub(m).tensors[j].buffer]


def _int32_bytes(values: list[int]) -> np.ndarray:
    return np.frombuffer(np.array(values, "<i4").tobytes(), np.uint8)


def _op(m: Any, k: int) -> Any:
    return _sub(m).operators[k]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (  # TF-Lite Micro accumulates in int32, our reference in int64: they would differ
            lambda m: setattr(
                _buffer_of(m, _conv(m).inputs[2]), "data", _int32_bytes([2**31 - 1] * 4)
            ),
            "could overflow its int32 accumulator",
        ),
        (
            lambda m: setattr(_sub(m).tensors[0].quantization, "scale", np.array([6e36])),
            "could overflow its int32 accumulator",
        ),
        (  # TF-Lite Micro refuses a fully connected bias scale != input x weight scale
            lambda m: setattr(
                _sub(m).tensors[_op(m, 2).inputs[2]].quantization,
                "scale",
                _sub(m).tensors[_op(m, 2).inputs[2]].quantization.scale * 10,
            ),
            "bias scale",
        ),
        (  # TF-Lite Micro reads RESHAPE's new_shape option
            lambda m: setattr(_op(m, 1).builtinOptions, "newShape", np.arange(10, dtype=np.int32)),
            "new shape",
        ),
    ],
    ids=["bias_overflow", "absurd_scale", "fc_bias_scale", "reshape_new_shape"],
)
def test_numerics_tflite_micro_and_the_reference_would_disagree_on(
    change: Callable[[Any], None], match: str
) -> None:
    rejected(edit(small_model(), change), match)


def test_add_and_softmax_parameters_tflite_micro_would_abort_on() -> None:
    b = GraphBuilder((1, 4, 4, 2), seed=1)
    skip = b.conv(2, 1)
    b.conv(2, 1)
    b.add(skip)
    b.reshape((1, 32))
    b.fc(4)
    b.softmax()
    data = export_tflite(b.build())
    validate_tflite(data)
    agrees_with_tflm(data)
    add = 2  # operator index of the ADD

    def tiny_add_output(m: Any) -> None:
        _sub(m).tensors[_op(m, add).outputs[0]].quantization.scale = np.array([1e-12], np.float32)

    rejected(edit(data, tiny_add_output), r"operator 2 \(ADD\) output scale")

    def tiny_beta(m: Any) -> None:
        _op(m, 5).builtinOptions.beta = 1e-12

    rejected(edit(data, tiny_beta), r"operator 5 \(SOFTMAX\) has beta")


def test_pool_parameters_tflite_micro_or_the_reference_would_choke_on() -> None:
    b = GraphBuilder((1, 8, 8, 2), seed=2)
    b.pool("max_pool2d", 2, 2, padding="same")
    data = export_tflite(b.build())
    validate_tflite(data)
    agrees_with_tflm(data)

    def rescale_output(m: Any) -> None:
        q = _sub(m).tensors[_op(m, 0).outputs[0]].quantization
        q.scale = q.scale * 2

    rejected(edit(data, rescale_output), r"operator 0 \(MAX_POOL_2D\) output quantization")

    def huge_window(m: Any) -> None:  # SAME padding: the output shape stays right
        _op(m, 0).builtinOptions.filterHeight = 1 << 28

    rejected(edit(data, huge_window), "window on a 8x8 input")
