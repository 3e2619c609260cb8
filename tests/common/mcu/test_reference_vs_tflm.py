"""Our numpy int8 executor against the real TF-Lite Micro interpreter, bit for bit."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.mcu import UnsupportedOperatorError, reference, tflm
from common.mcu.fixtures import GraphBuilder, broadcast_graph, random_graph
from common.mcu.graph import Graph
from common.mcu.quant import multiply_by_quantized_multiplier, quantize_multiplier
from common.mcu.tflite_io import export_tflite, import_tflite


def _truncate(g: Graph, k: int) -> Graph:
    """The graph up to and including operator ``k``, whose output becomes the graph output."""
    t = copy.deepcopy(g)
    t.ops = t.ops[: k + 1]
    t.outputs = [t.ops[-1].outputs[0]]
    used = {n for op in t.ops for n in op.inputs + op.outputs}
    t.tensors = {n: v for n, v in t.tensors.items() if n in used}
    return t


@pytest.mark.parametrize("seed", [0, 1, 2, "broadcast"])
def test_every_operator_matches_tflite_micro(seed: int | str) -> None:
    g = broadcast_graph() if seed == "broadcast" else random_graph(int(seed))
    x = (
        np.random.default_rng(seed if isinstance(seed, int) else 9)
        .integers(-128, 128, size=g.tensors["input"].shape)
        .astype(np.int8)
    )
    for k, op in enumerate(g.ops):
        sub = _truncate(g, k)
        ours = reference.run(sub, x)[sub.outputs[0]]
        theirs = tflm.run(export_tflite(sub), x)
        assert np.array_equal(ours.reshape(-1), theirs.reshape(-1)), (
            f"{op.kind} ({op.name}) differs"
        )


def test_export_import_round_trip() -> None:
    g = random_graph(3)
    again = import_tflite(export_tflite(g))
    assert [op.kind for op in again.ops] == [op.kind for op in g.ops]
    x = np.zeros(g.tensors["input"].shape, np.int8)
    assert np.array_equal(
        reference.run(again, x)[again.outputs[0]], reference.run(g, x)[g.outputs[0]]
    )
    assert export_tflite(again) == export_tflite(import_tflite(export_tflite(again)))


def test_stride_and_valid_padding_variants() -> None:
    b = GraphBuilder((1, 11, 9, 4), seed=5)
    b.conv(6, 3, stride=2, padding="valid", activation="relu")
    b.conv(6, 3, stride=1, padding="valid", depthwise=True, activation="none")
    b.pool("avg_pool2d", 3, 2, padding="same")
    g = b.build()
    x = np.random.default_rng(1).integers(-128, 128, size=(1, 11, 9, 4)).astype(np.int8)
    assert np.array_equal(
        reference.run(g, x)[g.outputs[0]].reshape(-1), tflm.run(export_tflite(g), x).reshape(-1)
    )


@pytest.mark.parametrize(
    ("seed", "beta", "in_scale"), [(0, 1.0, 0.05), (1, 1.0, 0.2), (2, 0.5, 0.01), (3, 2.0, 0.1)]
)
def test_softmax_matches_tflite_micro(seed: int, beta: float, in_scale: float) -> None:
    """Int8 softmax (gemmlowp fixed-point exp and reciprocal) on wide and narrow input ranges."""
    b = GraphBuilder((1, 40), seed=seed)
    b.g.tensors["input"].scale[:] = in_scale
    b.softmax(beta)
    g = b.build()
    rng = np.random.default_rng(seed)
    for x in (
        rng.integers(-128, 128, size=(1, 40)),
        rng.integers(-10, 10, size=(1, 40)),
        np.full((1, 40), 7),
    ):
        x = x.astype(np.int8)
        ours = reference.run(g, x)[g.outputs[0]]
        assert np.array_equal(ours.reshape(-1), tflm.run(export_tflite(g), x).reshape(-1))
    # The probabilities sum to about one (256 in the output's units).
    assert abs(int(ours.astype(np.int64).sum()) + 128 * 40 - 256) <= 40


def test_unsupported_operator_is_named() -> None:
    g = random_graph(0)
    g.ops[0].kind = "conv3d"
    with pytest.raises(UnsupportedOperatorError, match="'conv3d'"):
        g.validate()


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**31), 2**31 - 1), st.floats(1e-6, 0.999, allow_nan=False))
def test_requantization_matches_the_definition(x: int, real: float) -> None:
    """MultiplyByQuantizedMultiplier approximates x * real to within one unit."""
    m, s = quantize_multiplier(real)
    y = int(multiply_by_quantized_multiplier(np.array([x]), m, s)[0])
    assert abs(y - x * real) <= 1 + abs(x * real) * 2**-30


def test_quantize_multiplier_known_values() -> None:
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    assert quantize_multiplier(0.0) == (0, 0)
    m, s = quantize_multiplier(0.0009765625)  # 2^-10
    assert (m, s) == (1 << 30, -9)
