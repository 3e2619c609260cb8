"""MACs, the MCU peak-SRAM model and the latency lookup table of sub-networks."""

from __future__ import annotations

import pytest
import torch

from common.mcu.convert import convert
from common.mcu.memory import plan_tinyengine
from common.measure import count_macs
from common.ofa.efficiency import (
    LatencyTable,
    arch_macs,
    arch_peak_sram,
    random_archs,
    shapes_graph,
    validate_latency_table,
)
from common.ofa.supernet import OFAMobileNetV3Config, build_static_subnet, subnet_spec


@pytest.fixture
def space() -> OFAMobileNetV3Config:
    return OFAMobileNetV3Config(
        width_mult=0.25, stage_strides=(1, 2, 2, 1, 2), resolution_range=(16, 24), resolution_step=8
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_peak_sram_equals_the_planner_on_the_converted_int8_graph(
    space: OFAMobileNetV3Config, seed: int
) -> None:
    """The shapes-only graph gives the deployment planner's exact peak, without conversion."""
    arch = random_archs(space, 1, seed=seed)[0]
    net = build_static_subnet(subnet_spec(space, arch)).eval()
    r = arch["r"]
    g = convert(net, [torch.randn(1, 3, r, r) for _ in range(2)])
    assert arch_peak_sram(space, arch) == plan_tinyengine(g).peak_bytes
    assert shapes_graph(subnet_spec(space, arch), r).macs() == g.macs() == arch_macs(space, arch)


def test_macs_match_the_reference_counter(space: OFAMobileNetV3Config) -> None:
    for arch in random_archs(space, 3, seed=4):
        net = build_static_subnet(subnet_spec(space, arch)).eval()
        r = arch["r"]
        assert count_macs(net, torch.randn(1, 3, r, r)).total == arch_macs(space, arch)


def test_latency_table_covers_every_block_and_predicts_their_sum(
    space: OFAMobileNetV3Config,
) -> None:
    table = LatencyTable.build(space, space.resolution_choices(), repeats=3, warmup=1)
    # stem + first + head per resolution, and 5 stages x (first, rest) x 3 kernels x 3 expands.
    assert len(table.entries) == 2 * (3 + 5 * 2 * 3 * 3)
    assert all(v > 0 for v in table.entries.values())
    arch = random_archs(space, 1, seed=0)[0]
    r = arch["r"]
    manual = table.entries[f"stem/{r}"] + table.entries[f"first/{r}"] + table.entries[f"head/{r}"]
    for s, d in enumerate(arch["d"]):
        for i in range(d):
            b = s * 4 + i
            manual += table.entries[f"block/{s}/{int(i == 0)}/{arch['ks'][b]}/{arch['e'][b]}/{r}"]
    assert table.predict(arch) == pytest.approx(manual)
    again = LatencyTable.from_dict(table.to_dict())
    assert again.predict(arch) == table.predict(arch)
    check = validate_latency_table(table, [arch, random_archs(space, 1, seed=1)[0]], repeats=3)
    assert check["n"] == 2 and check["mean_abs_pct_error"] >= 0
    with pytest.raises(ValueError, match="resolution"):
        table.predict({**arch, "r": 20})
