"""Table 2's memory half (common/tinynas/codesign.py): every member of a family measured under an
engine's memory, and the largest member within a budget."""

from __future__ import annotations

import pytest

from common.models import MODELS
from common.tinynas.codesign import Member, family_members, largest_fitting
from common.tinynas.space import MemoryBudget, MemoryModel


def spec_of(width: float):
    return MODELS.get("mobilenet_v2")(num_classes=10, width=width).spec


RESOLUTIONS, WIDTHS = [32, 48, 64], [0.2, 0.35, 0.5]


@pytest.fixture(scope="module")
def members() -> dict[str, list[Member]]:
    return {
        planner: family_members(
            "mobilenet_v2", spec_of, RESOLUTIONS, WIDTHS, MemoryModel(planner=planner)
        )
        for planner in ("tflm", "tinyengine")
    }


def test_every_member_is_measured_by_its_engine(members: dict[str, list[Member]]) -> None:
    for planner, ms in members.items():
        assert [(m.width_mult, m.resolution) for m in ms] == [
            (w, r) for w in WIDTHS for r in RESOLUTIONS
        ]
        model = MemoryModel(planner=planner)
        for m in ms:
            assert (m.sram_bytes, m.flash_bytes) == model.measure_spec(
                spec_of(m.width_mult), m.resolution
            )
        macs = {(m.width_mult, m.resolution): m.macs for m in ms}
        assert macs[(0.5, 64)] > macs[(0.5, 32)] > macs[(0.2, 32)]


def test_the_largest_fitting_member_is_within_the_budget_and_has_the_most_macs(
    members: dict[str, list[Member]],
) -> None:
    tflm, ours = members["tflm"], members["tinyengine"]
    # budgets between the engines' needs: every SRAM value of either engine's members
    for sram in sorted({m.sram_bytes for m in tflm + ours}):
        budget = MemoryBudget(sram_kb=sram / 1024, flash_kb=10_000)
        for ms in (tflm, ours):
            best = largest_fitting(ms, budget)
            fitting = [m for m in ms if m.sram_bytes <= sram]
            assert (best is None) == (not fitting)
            if best is not None:
                assert best.fits(budget) and best.macs == max(m.macs for m in fitting)
    # a budget our engine's plan of the largest member meets and TF-Lite Micro's does not
    big = max(ours, key=lambda m: m.macs)
    budget = MemoryBudget(sram_kb=big.sram_bytes / 1024, flash_kb=10_000)
    assert largest_fitting(ours, budget) == big
    shrunk = largest_fitting(tflm, budget)
    assert shrunk is not None and shrunk.macs < big.macs
    # flash binds too; nothing fits a budget below the smallest member
    assert largest_fitting(ours, MemoryBudget(sram_kb=10_000, flash_kb=1)) is None
