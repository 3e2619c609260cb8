"""ADD with TF-Lite broadcasting and with a constant operand, from converter-style files: the
numpy reference matches TF-Lite Micro on the file, the file round-trips through our importer and
exporter, and every engine (reference kernels, TinyEngine-style, patch-based, streamed) is
bit-exact on the host and, for one engine, on the emulated Cortex-M7.

The models (written with :mod:`common.mcu.tflite_writer`, not our exporter) are
``input [1, 8, 8, 4] -> conv 1x1 (x) -> ADD(x, other) -> conv 1x1``, with ``other`` the global
average pool of ``x`` (``[1, 1, 1, 4]``), a constant of ``x``'s whole shape or a per-channel
constant (``[1, 1, 1, 4]``), in either operand order.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from common.mcu import reference, tflm, toolchain
from common.mcu.deploy import DeployOptions, deploy
from common.mcu.memory import inplace_aliases, plan_tflm
from common.mcu.tflite_io import export_tflite, import_tflite
from common.mcu.tflite_writer import (
    BOP,
    I8,
    I32,
    OperatorSpec,
    TensorSpec,
    add_options,
    conv_options,
    pool_options,
    write_tflite,
)
from common.mcu.validate import ModelFormatError, UnsupportedModelError, validate_tflite

SHAPE = (1, 8, 8, 4)
HAVE_ARM = all(toolchain.have(t) for t in toolchain.BUILD_TOOLS)
ACT = fb.ActivationFunctionType


def add_model(other: str, small_first: bool, *, seed: int = 0, **overrides: object) -> bytes:
    """The model of the module docstring; ``other`` is ``"pool"``, ``"const_same"`` or
    ``"const_channel"``. ``overrides`` replace fields of the ADD's second operand's spec (to
    write invalid files)."""
    rng = np.random.default_rng(seed)
    c = SHAPE[3]
    in_s, x_s = 0.02, 0.05

    def conv(name: str, src: str, cout: int, scale: float, zp: int, act: int):
        w_s = rng.uniform(0.005, 0.02, size=cout)
        w = rng.integers(-127, 128, size=(cout, 1, 1, c)).astype(np.int8)
        b = rng.integers(-3000, 3000, size=cout).astype("<i4")
        out_shape = (1, 8, 8, cout)
        tensors = [
            TensorSpec(f"{name}/w", w.shape, I8, tuple(w_s), (0,) * cout, 0, w.tobytes()),
            TensorSpec(f"{name}/b", b.shape, I32, tuple(in_s * w_s), (0,) * cout, 0, b.tobytes()),
            TensorSpec(f"{name}/out", out_shape, I8, (scale,), (zp,)),
        ]
        op = OperatorSpec(BOP.CONV_2D, 3, [src, f"{name}/w", f"{name}/b"], [f"{name}/out"],
                          fb.BuiltinOptions.Conv2DOptions,
                          conv_options(1, fb.Padding.SAME, act))  # fmt: skip
        return tensors, op

    tensors = [TensorSpec("serving_default_input:0", SHAPE, I8, (in_s,), (-3,), signature=True)]
    ops = []
    t, op = conv("model/conv1", "serving_default_input:0", c, x_s, -128, ACT.RELU)
    tensors += t
    ops.append(op)
    x = "model/conv1/out"
    if other == "pool":
        tensors.append(TensorSpec("model/pool/Mean", (1, 1, 1, c), I8, (x_s,), (-128,)))
        ops.append(OperatorSpec(BOP.AVERAGE_POOL_2D, 2, [x], ["model/pool/Mean"],
                                fb.BuiltinOptions.Pool2DOptions, pool_options((8, 8))))  # fmt: skip
        small = "model/pool/Mean"
    else:
        shape = SHAPE if other == "const_same" else (1, 1, 1, c)
        data = rng.integers(-128, 128, size=shape).astype(np.int8)
        tensors.append(TensorSpec("model/add/y", shape, I8, (0.04,), (5,), 0, data.tobytes()))
        small = "model/add/y"
    spec = next(s for s in tensors if s.name == small)
    for key, value in overrides.items():
        setattr(spec, key, value)
    tensors.append(TensorSpec("model/add/add", SHAPE, I8, (0.08,), (-10,)))
    operands = [small, x] if small_first else [x, small]
    ops.append(OperatorSpec(BOP.ADD, 2, operands, ["model/add/add"], fb.BuiltinOptions.AddOptions,
                            add_options(ACT.NONE)))  # fmt: skip
    t, op = conv("model/conv2", "model/add/add", 3, 0.1, 2, ACT.NONE)
    tensors += t
    ops.append(op)
    tensors[-1].signature = True
    return write_tflite(tensors, ops, ["serving_default_input:0"], ["model/conv2/out"])


CASES = [
    ("pool", True),
    ("pool", False),
    ("const_same", True),
    ("const_channel", False),
]


def _inputs(n: int = 3, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, size=SHAPE).astype(np.int8) for _ in range(n)]


@pytest.mark.parametrize("other", ["pool", "const_same", "const_channel"])
@pytest.mark.parametrize("small_first", [True, False])
def test_reference_matches_tflite_micro_and_the_file_round_trips(
    other: str, small_first: bool
) -> None:
    data = add_model(other, small_first)
    validate_tflite(data)
    g = import_tflite(data)
    add = next(op for op in g.ops if op.kind == "add")
    assert len(add.inputs) == 2
    const = [t for t in add.inputs if g.tensors[t].is_constant]
    assert len(const) == (0 if other == "pool" else 1)
    again = export_tflite(g)
    validate_tflite(again)
    assert [op.kind for op in import_tflite(again).ops] == [op.kind for op in g.ops]
    for x in _inputs():
        want = tflm.run(data, x).reshape(-1)
        ours = reference.run(g, x)
        assert np.array_equal(ours[g.outputs[0]].reshape(-1), want)
        assert np.array_equal(tflm.run(again, x).reshape(-1), want)
        # the ADD itself is not saturated: it tests the arithmetic
        assert len(np.unique(ours[add.outputs[0]])) > 20


def test_the_in_place_rule_never_picks_a_constant_or_broadcast_operand() -> None:
    for other, small_first in [(o, f) for o in ("pool", "const_same", "const_channel")
                               for f in (True, False)]:  # fmt: skip
        g = import_tflite(add_model(other, small_first))
        add = next(op for op in g.ops if op.kind == "add")
        x = next(t for t in add.inputs if not g.tensors[t].is_constant and t.endswith("out"))
        aliases, _ = inplace_aliases(g)
        # the feature map dies at the ADD and has the output's size: it is the one reused
        assert aliases.get(add.outputs[0]) == x, (other, small_first)
        assert not any(g.tensors[t].is_constant for t in aliases.values())


@pytest.mark.parametrize(("other", "small_first"), CASES)
def test_every_engine_is_bit_exact_on_the_host(
    other: str, small_first: bool, tmp_path: Path
) -> None:
    data = add_model(other, small_first)
    g = import_tflite(data)
    logs: list[str] = []
    m = deploy(g, tmp_path / "out", _inputs(), DeployOptions(emulate=False), name="add",
               log=logs.append, source=data)  # fmt: skip
    assert m["bitexact"] == 1.0
    for engine in ("reference", "tinyengine", "tinyengine_patch", "tinyengine_stream"):
        assert m[f"{engine}/arena_bytes"] > 0, engine
    # the patch stage ends before the ADD (operator 1, or 2 after the pool)
    add_index = next(i for i, op in enumerate(g.ops) if op.kind == "add")
    assert 1 <= m["tinyengine_patch/n_ops"] <= add_index
    # our TF-Lite Micro plan is the interpreter's (constants are not in its arena)
    assert m["tflm/plan_bytes"] == m["tflm/arena_head_bytes"] == plan_tflm(g).arena_bytes
    assert not [line for line in logs if "differs" in line]
    if other != "pool":
        source = (tmp_path / "out" / "c_tinyengine" / "model.c").read_text()
        assert re.search(r"static const int8_t l\d+_in[01]\[\d+\]", source)


@pytest.mark.skipif(not HAVE_ARM, reason=f"needs the Arm toolchain: {toolchain.INSTALL_COMMAND}")
@pytest.mark.parametrize(("other", "small_first"), [("pool", True), ("const_channel", True)])
def test_cortex_m7_is_bit_exact(other: str, small_first: bool, tmp_path: Path) -> None:
    data = add_model(other, small_first)
    g = import_tflite(data)
    options = DeployOptions(
        engines={"tinyengine": DeployOptions().engines["tinyengine"]},
        patch_engine=False,
        emulate_engines=("tinyengine",),
    )
    m = deploy(g, tmp_path / "out", _inputs(2), options, name="add", log=lambda s: None,
               source=data)  # fmt: skip
    assert m["bitexact"] == 1.0 and m["tinyengine/instructions"] > 0


@pytest.mark.parametrize(
    ("overrides", "match", "error"),
    [
        ({"shape": (1, 1, 1, 3), "data": bytes(3)}, r"operator 1 \(ADD\) adds shapes .* which do not broadcast",
         ModelFormatError),
        ({"type": I32, "data": np.zeros((1, 1, 1, 4), "<i4").tobytes()},
         r"operator 1 \(ADD\) second input .* is INT32", UnsupportedModelError),
        ({"scale": (0.04, 0.05, 0.06, 0.07), "zero_point": (0, 0, 0, 0)},
         r"operator 1 \(ADD\) second input .* 4 scales; an ADD operand is quantized per tensor",
         UnsupportedModelError),
    ],
)  # fmt: skip
def test_what_the_engine_cannot_run_is_refused_in_one_line(
    overrides: dict[str, object], match: str, error: type[Exception]
) -> None:
    data = add_model("const_channel", False, **overrides)
    with pytest.raises(error, match=match) as info:
        validate_tflite(data)
    assert "\n" not in str(info.value)


def test_an_add_of_two_constants_and_a_wrong_output_shape_are_refused() -> None:
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAs(add_model("const_channel", False), 0))
    sub = m.subgraphs[0]
    add = next(op for op in sub.operators if len(op.inputs) == 2)
    out = sub.tensors[add.outputs[0]]
    out.shape = np.array([1, 8, 4, 4], np.int32)
    with pytest.raises(ModelFormatError, match=r"into \[1, 8, 4, 4\]; expected \[1, 8, 8, 4\]"):
        validate_tflite(_pack(m))
    out.shape = np.array(SHAPE, np.int32)
    const = next(j for j in add.inputs if m.buffers[sub.tensors[j].buffer].data is not None)
    add.inputs = np.array([const, const], np.int32)
    with pytest.raises(UnsupportedModelError, match=r"operator \d \(ADD\) adds two constants"):
        validate_tflite(_pack(m))


def _pack(m: object) -> bytes:
    import flatbuffers

    b = flatbuffers.Builder(4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")  # type: ignore[attr-defined]
    return bytes(b.Output())
