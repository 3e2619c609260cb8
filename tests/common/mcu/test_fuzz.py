"""The fuzz harness (:mod:`common.mcu.fuzz`): its random models are deterministic, cover every
operator kind they claim, are accepted by TF-Lite Micro and by our validator, and a handful of
them (broadcast and constant ADDs among them) deploy bit-exact on every engine on the host; its
malformed files are refused by the deploy command in one line; and the campaign counts a refusal
only where the validator refuses, anything else that goes wrong as a failure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.mcu import fuzz, tflm
from common.mcu.graph import Graph
from common.mcu.memory import plan_tflm
from common.mcu.tflite_io import import_tflite
from common.mcu.validate import validate_tflite

COVERAGE_SEEDS = range(60)
# small models: a broadcast ADD (x + its global pool), a constant ADD of the whole shape and one
# per channel, residual ADDs, PAD, max pool, softmax among them; the campaign found bugs with 11
# (a patch split holding a PAD the C code cannot tile) and 173 (a model without MACs)
DEPLOY_SEEDS = [11, 23, 34, 42, 49, 173]


def features(g: Graph) -> set[str]:
    """What a graph exercises: ``conv<k>``, ``dw<k>``, the ADD variants and the other kinds."""
    out: set[str] = set()
    for op in g.ops:
        if op.kind in ("conv2d", "depthwise_conv2d"):
            k = g.tensors[op.inputs[1]].shape[1]
            out.add(f"{'conv' if op.kind == 'conv2d' else 'dw'}{k}")
        elif op.kind == "add":
            a, b = (g.tensors[t] for t in op.inputs)
            if a.is_constant or b.is_constant:
                out.add("add_constant_" + ("same" if a.shape == b.shape else "broadcast"))
            else:
                out.add("add_residual" if a.shape == b.shape else "add_broadcast")
        else:
            out.add(op.kind)
    return out


def test_random_model_is_deterministic_per_seed() -> None:
    for seed in (0, 7, 123):
        a, b = fuzz.random_model(seed), fuzz.random_model(seed)
        assert a.data == b.data and a.layers == b.layers and a.input_shape == b.input_shape
    assert len({fuzz.random_model(s).data for s in range(10)}) == 10


def test_random_models_cover_every_operator_kind_they_claim() -> None:
    seen: set[str] = set()
    for seed in COVERAGE_SEEDS:
        model = fuzz.random_model(seed)
        validate_tflite(model.data, source=f"fuzz{seed}.tflite")  # every one is accepted
        f = features(import_tflite(model.data))
        seen |= f
        # the description names what the file holds
        text = model.description
        assert ("add(broadcast" in text) == ("add_broadcast" in f), (seed, text)
        assert ("add(constant" in text) == bool({"add_constant_same", "add_constant_broadcast"} & f)
        assert ("add(residual" in text) == ("add_residual" in f), (seed, text)
    claimed = {
        *(f"conv{k}" for k in (1, 3, 5, 7)),
        *(f"dw{k}" for k in (3, 5, 7)),
        "add_residual",
        "add_broadcast",
        "add_constant_same",
        "add_constant_broadcast",
        "max_pool2d",
        "avg_pool2d",
        "pad",
        "reshape",
        "fully_connected",
        "softmax",
    }
    assert claimed <= seen, claimed - seen
    assert not {f for f in seen if f.startswith("dw") and int(f[2:]) % 2 == 0}  # odd depthwise


def test_tflite_micro_accepts_random_models() -> None:
    for seed in range(0, 60, 3):
        model = fuzz.random_model(seed)
        x = np.random.default_rng(seed).integers(-128, 128, model.input_shape).astype(np.int8)
        y = tflm.run(model.data, x)
        g = import_tflite(model.data)
        assert y.size == int(np.prod(g.tensors[g.outputs[0]].shape))


@pytest.mark.parametrize("seed", DEPLOY_SEEDS)
def test_random_models_deploy_bit_exact_on_every_engine(seed: int, tmp_path: Path) -> None:
    model = fuzz.random_model(seed)
    m = fuzz.check_model(model, tmp_path / "out", inputs=2)
    assert m["bitexact"] == 1.0
    assert m["reference/arena_bytes"] > 0 and m["tinyengine/arena_bytes"] > 0


@pytest.mark.parametrize("seed", [109, 115, 120])
def test_our_tflite_micro_plan_is_the_interpreters_on_shuffled_files(seed: int) -> None:
    """Equal-size buffers placed in the interpreter's order (found by the campaign: placed by
    first use, these three converter-style files got a different arena than TF-Lite Micro's)."""
    data = fuzz.random_model(seed).data
    head = tflm.arena_report(data, arena_size=tflm.min_arena_size(data))["head"]
    assert plan_tflm(import_tflite(data)).arena_bytes == head


def test_deploy_seeds_hold_broadcast_and_constant_adds() -> None:
    seen = set().union(*(features(import_tflite(fuzz.random_model(s).data)) for s in DEPLOY_SEEDS))
    assert {"add_broadcast", "add_constant_same", "add_constant_broadcast"} <= seen


def test_malformed_files_are_refused_in_one_line(tmp_path: Path) -> None:
    valid = [fuzz.random_model(s).data for s in DEPLOY_SEEDS]
    files = fuzz.malformed_files(valid, 10, seed=3)
    assert {kind for kind, _ in files} == {"empty", "random", "truncated", "bitflip", "enormous"}
    for j, (kind, data) in enumerate(files):
        outcome, err, _ = fuzz.check_malformed(data, tmp_path / f"bad{j}")
        assert outcome in ("refused", "deployed"), (kind, outcome, err)
        if outcome == "refused":
            assert err.startswith("error: "), (kind, err)


def test_the_campaign_counts_refusals_and_failures_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model the validator refuses is a refusal; an accepted model whose deployment raises
    (even a ValueError) is a failure, and the report is not ok."""
    real = fuzz.random_model

    def maybe_broken(seed: int) -> fuzz.FuzzModel:
        model = real(seed)
        if seed % 2:  # truncated: the validator refuses it
            model.data = model.data[: len(model.data) // 2]
        return model

    def crash(*args: object, **kwargs: object) -> dict[str, float]:
        raise ValueError("a kernel bug")

    monkeypatch.setattr(fuzz, "random_model", maybe_broken)
    monkeypatch.setattr(fuzz, "check_model", crash)
    rep = fuzz.run(4, 0, seed=0, emulate_every=0, work=tmp_path, log=lambda s: None)
    assert rep.models == 4 and rep.accepted == 0
    assert sum(rep.refusals.values()) == 2 and len(rep.failures) == 2
    assert all("a kernel bug" in f for f in rep.failures)
    assert not rep.ok and "FAILED" in rep.summary()


def test_a_small_campaign_is_ok(tmp_path: Path) -> None:
    rep = fuzz.run(1, 2, seed=49, emulate_every=0, inputs=2, work=tmp_path, log=lambda s: None)
    assert rep.ok, rep.summary()
    assert rep.accepted == rep.bitexact_host == 1
    summary = rep.summary()
    assert summary.startswith("random models: 1, accepted 1") and summary.endswith("s")
    assert "our TF-Lite Micro plan equals the interpreter's arena head on 1/1 models" in summary
