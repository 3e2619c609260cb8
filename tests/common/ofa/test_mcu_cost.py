"""Cortex-M7 instruction counts of sub-networks and the MCU instruction lookup table."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from common.mcu import toolchain
from common.ofa.efficiency import random_archs
from common.ofa.mcu_cost import (
    McuInstructionTable,
    McuMeasurement,
    arch_signatures,
    measure_subnet_instructions,
    validate_mcu_table,
)
from common.ofa.search import EvolutionConfig, EvolutionSearch
from common.ofa.supernet import OFAMobileNetV3, OFAMobileNetV3Config
from common.ofa.training import extreme_archs, full_space
from tests.common.ofa.conftest import perturb_

needs_toolchain = pytest.mark.skipif(
    not all(toolchain.have(t) for t in (*toolchain.BUILD_TOOLS, "arm-none-eabi-addr2line")),
    reason=f"Arm toolchain missing; install: {toolchain.INSTALL_COMMAND}",
)


@pytest.fixture(scope="module")
def space() -> OFAMobileNetV3Config:
    """Two stages of a quarter-width space at 16 px: a few seconds per deployment."""
    return OFAMobileNetV3Config(
        width_mult=0.25,
        kernel_sizes=(3, 5),
        expand_ratios=(3, 4),
        depths=(2, 3),
        stage_widths=(24, 40),
        stage_strides=(2, 2),
        head_width=320,
        resolution_range=(16, 16),
    )


@pytest.fixture(scope="module")
def measured(space: OFAMobileNetV3Config) -> dict[str, McuMeasurement]:
    """Arch ``a`` and ``b``: ``a`` with its last stage one block shorter, so every operator of
    ``b`` has a twin of the same signature in ``a`` (different calibration ranges after it)."""
    if toolchain.missing((*toolchain.BUILD_TOOLS, "arm-none-eabi-addr2line")):
        pytest.skip(f"Arm toolchain missing; install: {toolchain.INSTALL_COMMAND}")
    torch.manual_seed(0)
    net = perturb_(OFAMobileNetV3(space)).eval()
    a = {"ks": [5, 3, 3, 3, 5, 3], "e": [4, 3, 4, 3, 4, 4], "d": [3, 3], "r": 16}
    b = copy.deepcopy(a) | {"d": [3, 2]}
    calib = [torch.rand(8, 3, 20, 20, generator=torch.Generator().manual_seed(1))]
    return {k: measure_subnet_instructions(net, arch, calib) for k, arch in (("a", a), ("b", b))}


@pytest.mark.mcu
@needs_toolchain
def test_measurement_is_split_exactly_by_operator_and_signatures_match(
    space: OFAMobileNetV3Config, measured: dict[str, McuMeasurement]
) -> None:
    for m in measured.values():
        assert m.other + sum(n for _, _, n in m.ops) == m.instructions
        assert m.other < 50  # call set-up only
        # The shapes-only graph of the arch names the same operators as the generated code.
        assert [s for s, _ in arch_signatures(space, m.arch)] == [s for s, _, _ in m.ops]
    assert measured["b"].instructions < measured["a"].instructions


@pytest.mark.mcu
@needs_toolchain
def test_table_predicts_measured_subnetworks_whose_operators_it_holds(
    space: OFAMobileNetV3Config, measured: dict[str, McuMeasurement]
) -> None:
    a, b = measured["a"], measured["b"]
    table = McuInstructionTable.build(space, [a])
    # Mean per signature: the network the table was built from is predicted exactly.
    assert table.predict(a.arch) == pytest.approx(a.instructions, abs=1e-6)
    # Another network made only of operators in the table, with the same weights: every
    # convolution and FC layer is predicted to within 0.5%: the same operator's code differs
    # only in the arena addresses of its tensors and scratch (each operator's scratch goes into
    # a gap of its own network's arena), which the compiler folds into a few instructions. ADD
    # and average pooling rescale int8 values by a fast or an exact path chosen from the
    # quantization scales (see common.ofa.mcu_cost), which move with the calibrated ranges: a
    # small, bounded error.
    pred, missing = table.predict_detail(b.arch)
    assert missing == 0
    rescaling = ("add/", "avg_pool2d/")
    addressing = 0.0
    for sig, _, n in b.ops:
        if not sig.startswith(rescaling):
            assert table.entries[sig]["instructions"] == pytest.approx(n, rel=0.005), sig
            addressing += abs(table.entries[sig]["instructions"] - n)
    slack = sum(n for sig, _, n in b.ops if sig.startswith(rescaling))
    assert abs(pred - b.instructions) <= 0.1 * slack + addressing
    assert abs(pred - b.instructions) / b.instructions < 0.005
    check = validate_mcu_table(table, [b])
    assert check["n"] == 1 and check["fallback_fraction"] == 0
    assert check["mean_rel_error"] == pytest.approx(
        abs(pred - b.instructions) / b.instructions * 100
    )


@pytest.mark.mcu
@needs_toolchain
def test_table_round_trips_and_falls_back_on_missing_operators(
    tmp_path: Path, space: OFAMobileNetV3Config, measured: dict[str, McuMeasurement]
) -> None:
    table = McuInstructionTable.build(space, list(measured.values()))
    table.meta = {"note": "x"}
    again = McuInstructionTable.load(table.save(tmp_path / "t.json"))
    assert again == table
    archs = [m.arch for m in measured.values()] + random_archs(space, 3, seed=0)
    assert [again.predict(x) for x in archs] == [table.predict(x) for x in archs]
    # Drop one depthwise entry: it is predicted from its nearest relative, scaled by MACs.
    b = measured["b"]
    sig = next(s for s, _, _ in b.ops if s.startswith("depthwise"))
    del again.entries[sig]
    again.reset_counts()
    pred, missing = again.predict_detail(b.arch)
    assert missing >= 1 and again.fallbacks == missing
    assert pred != table.predict(b.arch)
    assert abs(pred - b.instructions) / b.instructions < 0.2


def test_search_under_an_instruction_limit_never_exceeds_it(
    space: OFAMobileNetV3Config,
) -> None:
    """A fake table (1.5 instructions per unit of work, no toolchain needed)."""
    entries: dict[str, dict[str, float]] = {}
    for arch in [
        *random_archs(space, 30, seed=0),
        *extreme_archs(space, full_space(space)).values(),
    ]:
        for sig, work in arch_signatures(space, arch):
            entries[sig] = {
                "instructions": 1.5 * work + 100,
                "work": work,
                "n": 1,
                "min": 0,
                "max": 0,
            }
    table = McuInstructionTable(space, entries, other=4)
    lo, hi = (table.predict_minstr(a) for a in extreme_archs(space, full_space(space)).values())
    lo, hi = min(lo, hi), max(lo, hi)
    for fraction in (0.2, 0.6):
        limit = lo + fraction * (hi - lo)
        found = EvolutionSearch(
            space,
            full_space(space),
            predictor=lambda xs: [table.predict(a) for a in xs],  # bigger scores higher
            efficiency=table.predict_minstr,
            limit=limit,
            evolution=EvolutionConfig(population=12, generations=4),
            seed=0,
        ).run()
        assert found.efficiency <= limit
        assert table.predict_minstr(found.arch) == found.efficiency
        assert found.efficiency > lo  # the search was pushed against the limit
