"""Latency under limits for TinyNAS (MCUNet Table 3): the limit in instructions, the fit that
picks which members to measure, the walk that returns the largest member measured within the
limit, and the exact count of a real network on the emulated Cortex-M7."""

from __future__ import annotations

import pytest
import torch

from common.mcu import toolchain
from common.mcu.codegen import CodegenOptions
from common.models.mbconv import mobilenet_v2
from common.ofa.mcu_cost import MEASURE_OPTIONS
from common.tinynas.latency import (
    InstructionFit,
    instructions_for_ms,
    largest_within,
    measure_instructions,
    ms_estimate,
)

EMULATE = toolchain.have("arm-none-eabi-gcc")


def test_a_limit_in_ms_is_a_limit_in_instructions_at_the_clock() -> None:
    n = instructions_for_ms(100.0)  # 216 MHz, IPC 1: 21.6 M instructions
    assert n == pytest.approx(21.6e6)
    assert ms_estimate(n) == pytest.approx(100.0)


def test_the_fit_is_exact_on_counts_linear_in_its_features() -> None:
    pairs = [((m, e), 3 * m + 0.5 * e + 1000) for m, e in ((1e6, 4e4), (2e6, 5e4), (5e6, 9e4))]
    fit = InstructionFit.fit(pairs)
    assert fit.predict((3e6, 7e4)) == pytest.approx(3 * 3e6 + 0.5 * 7e4 + 1000, rel=1e-6)
    one = InstructionFit.fit(pairs[:1])  # too few for three coefficients: a rate per MAC
    assert one.predict((2e6, 0)) == pytest.approx(2 * pairs[0][1])
    with pytest.raises(ValueError):
        InstructionFit.fit([])


def members(n: int = 12) -> list[dict[str, float]]:
    """Members with MACs 1..n M whose count is 10 per MAC, but one (7 M) is far slower than its
    size says and one (5 M) far faster: the fit cannot know either."""
    out = []
    for i in range(1, n + 1):
        count = 10.0 * i * 1e6
        if i == 7:
            count *= 3
        if i == 5:
            count *= 0.5
        out.append({"macs": i * 1e6, "elements": i * 1e4, "count": count})
    return out


def walk(ms: list[dict[str, float]], limit: float, **kw):
    calls: list[float] = []

    def measure(m: dict[str, float]) -> int:
        calls.append(m["macs"])
        return int(m["count"])

    found = largest_within(
        ms,
        limit,
        macs=lambda m: m["macs"],
        features=lambda m: (m["macs"], m["elements"]),
        measure=measure,
        **kw,
    )
    return found, calls


def test_the_largest_member_measured_within_the_limit_is_returned() -> None:
    ms = members()
    # limit 65 M: 6 M (60 M) is the largest within; 7 M is predicted within but measured over
    found, calls = walk(ms, 65e6, probes=3, margin=0.2)
    assert found.member is not None and found.member["macs"] == 6e6
    assert int(ms[6]["count"]) == found.measured[6] > 65e6  # 7 M: measured, over the limit
    # every member with more MACs was measured over the limit or skipped on its prediction
    for i, m in enumerate(ms):
        if m["macs"] > 6e6:
            assert i in found.skipped or found.measured[i] > 65e6
    assert len(calls) == len(set(calls))  # nothing measured twice
    assert all(ms[i]["macs"] * 10 > 65e6 * 1.2 for i in found.skipped)  # predicted over


def test_a_fast_member_hidden_below_a_slow_one_is_found_and_none_when_nothing_fits() -> None:
    ms = members()
    # 5 M runs 25 M (within 26 M) where its size predicts 50 M: measured, and returned, when
    # the margin admits its prediction; skipped, and said so, when it does not
    found, _ = walk(ms, 26e6, probes=2, margin=1.0)
    assert found.member is not None and found.member["macs"] == 5e6
    found, _ = walk(ms, 26e6, probes=2, margin=0.5)
    assert found.member is not None and found.member["macs"] == 2e6 and 4 in found.skipped
    found, calls = walk(ms, 1e6, probes=2, margin=0.2)
    assert found.member is None
    assert calls  # the probes at least
    found, calls = walk([], 1e6)
    assert found.member is None and not calls


def test_counts_known_from_an_earlier_limit_are_not_measured_again() -> None:
    ms = members()
    known: dict[int, int] = {}
    _, first = walk(ms, 65e6, probes=3, known=known)
    _, second = walk(ms, 45e6, probes=3, known=known)
    assert first and not set(second) & set(first)
    assert all(known[i] == int(ms[i]["count"]) for i in known)


@pytest.mark.skipif(not EMULATE, reason="needs the Arm toolchain")
@pytest.mark.timeout(600)
def test_a_real_network_is_counted_exactly_and_the_reference_kernels_run_more() -> None:
    torch.manual_seed(0)
    net = mobilenet_v2(num_classes=10, width=0.2)
    calib = [torch.randn(4, 3, 32, 32)]
    ours = measure_instructions(net, 32, calib, MEASURE_OPTIONS)
    assert ours == measure_instructions(net, 32, calib, MEASURE_OPTIONS)  # deterministic
    reference = measure_instructions(net, 32, calib, CodegenOptions(kernels="reference"))
    assert reference > 2 * ours > 0
