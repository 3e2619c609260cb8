"""TinyNAS stage 1 (common/tinynas/space.py): the memory of a network as the engine plans and
stores it, which networks fit, which space wins, and the budget scaling."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from common.config import ConfigError
from common.mcu.codegen import CodegenOptions, generate
from common.mcu.convert import convert
from common.mcu.memory import plan_tinyengine
from common.ofa.supernet import OFAMobileNetV3Config, build_static_subnet, subnet_spec
from common.tinynas.space import (
    MemoryBudget,
    MemoryModel,
    SpaceGrid,
    best_space,
    const_bytes,
    measure_grid,
    sample_choices,
    scaled_budget,
    space_config,
)

BASE = OFAMobileNetV3Config(
    num_classes=10,
    width_mult=1.0,
    stem_width=16,
    first_block_width=8,
    stage_widths=(16, 24, 32),
    stage_strides=(2, 2, 2),
    head_width=64,
    resolution_range=(16, 24),
)
GRID = SpaceGrid(resolutions=[16, 24], width_mults=[0.5, 1.0], samples=5, seed=3)


def converted(config: OFAMobileNetV3Config, arch: dict):
    """The int8 graph the deployment converts the sub-network into (random weights)."""
    net = build_static_subnet(subnet_spec(config, arch)).eval()
    r = int(arch["r"])
    return convert(
        net, [torch.randn(1, 3, r, r, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    )


def test_memory_is_the_deployment_planners_and_the_reference_builds_constants(
    tmp_path: Path,
) -> None:
    model = MemoryModel(code_kb=2.0)
    config = space_config(BASE, 24, 0.5)
    for c in sample_choices(BASE, 2, seed=1):
        arch = {**c, "r": 24}
        g = converted(config, arch)
        sram, flash = model.measure(config, arch)
        assert sram == plan_tinyengine(g).peak_bytes
        project = generate(g, tmp_path / "ref", CodegenOptions(kernels="reference"))
        assert const_bytes(g) == project.weight_bytes  # int8 w, int32 b, multiplier + shift
        assert flash == project.weight_bytes + 2 * 1024


def test_no_network_over_the_budget_counts_as_fitting() -> None:
    """Checked network by network against the planner on the converted model: a network counts
    as fitting exactly when both its planned SRAM and its flash are within the budget."""
    model = MemoryModel(code_kb=1.0)
    stats = measure_grid(BASE, GRID, model)
    srams = sorted(x for s in stats for x in s.sram_bytes)
    flashes = sorted(x for s in stats for x in s.flash_bytes)
    # a budget that cuts both ways (some networks fit, some do not, on each resource)
    budget = MemoryBudget(srams[len(srams) // 2] / 1024, flashes[2 * len(flashes) // 3] / 1024)
    choices = sample_choices(BASE, GRID.samples, GRID.seed)
    verdicts = []
    for s in stats:
        config = space_config(BASE, s.resolution, s.width_mult)
        for c, fit in zip(choices, s.fits(budget), strict=True):
            g = converted(config, {**c, "r": s.resolution})
            sram, flash = plan_tinyengine(g).peak_bytes, const_bytes(g) + 1024
            assert fit == (sram <= budget.sram_bytes and flash <= budget.flash_bytes)
            verdicts.append(fit)
        assert s.fitting_macs(budget) == sorted(
            m for m, f in zip(s.macs, s.fits(budget), strict=True) if f
        )
    assert any(verdicts) and not all(verdicts)


def test_every_space_scores_the_same_networks_and_a_seed_repeats() -> None:
    model = MemoryModel()
    a, b = measure_grid(BASE, GRID, model), measure_grid(BASE, GRID, model)
    assert [s.macs for s in a] == [s.macs for s in b]
    other = measure_grid(BASE, dataclasses.replace(GRID, seed=4), model)
    assert [s.macs for s in other] != [s.macs for s in a]
    # the same architectures in every space: at one resolution, each network is larger at the
    # larger width (different draws per space would break this order)
    by = {(s.resolution, s.width_mult): s for s in a}
    for r in GRID.resolutions:
        narrow, wide = by[(r, 0.5)], by[(r, 1.0)]
        assert all(n < w for n, w in zip(narrow.macs, wide.macs, strict=True))
        assert all(n <= w for n, w in zip(narrow.sram_bytes, wide.sram_bytes, strict=True))


def test_the_best_space_has_the_largest_mean_of_its_fitting_networks() -> None:
    stats = measure_grid(BASE, GRID, MemoryModel())
    roomy = MemoryBudget(1e6, 1e6)
    best = best_space(stats, roomy)
    assert best is not None and (best.resolution, best.width_mult) == (24, 1.0)
    means = {s.name: s.mean_macs(roomy) for s in stats}
    assert means[best.name] == max(means.values())
    tiny = MemoryBudget(0.001, 0.001)
    assert best_space(stats, tiny) is None
    assert all(math.isnan(s.mean_macs(tiny)) and s.summary(tiny)["fitting"] == 0 for s in stats)


def test_budget_scaling_is_the_ratio_of_the_largest_networks() -> None:
    model = MemoryModel(code_kb=4.0)
    budget = MemoryBudget(320, 1024, "F746")
    same, factors = scaled_budget(budget, model, (BASE, 24, 1.0), (BASE, 24, 1.0))
    assert factors == {"sram": 1.0, "flash": 1.0} and same == budget
    ref = dataclasses.replace(BASE, num_classes=1000)
    scaled, factors = scaled_budget(budget, model, (BASE, 16, 0.5), (ref, 24, 1.0))
    assert 0 < factors["sram"] < 1 and 0 < factors["flash"] < 1
    assert scaled.sram_kb == pytest.approx(320 * factors["sram"])
    assert scaled.flash_kb == pytest.approx(1024 * factors["flash"])
    assert MemoryBudget(320, 1024).sram_bytes == 320 * 1024  # datasheet kB


def test_bad_grids_are_config_errors() -> None:
    from common.config import ConfigError

    with pytest.raises(ConfigError, match="width_mults"):
        SpaceGrid(resolutions=[16], width_mults=[0.0])
    with pytest.raises(ConfigError, match="resolutions"):
        SpaceGrid(resolutions=[], width_mults=[1.0])


@pytest.mark.parametrize(
    "family, width, resolution",
    [("ofa", 0.5, 24), ("mobilenet_v2", 0.35, 40), ("proxyless_mobile", 0.3, 33)],
)
def test_tflm_planner_is_the_interpreters_arena(family: str, width: float, resolution: int) -> None:
    """TF-Lite Micro's plan on the shapes-only graph (explicit PAD tensors added as the converter
    adds them) is the arena the real interpreter allocates for the converted model, and larger
    than our engine's plan."""
    from common.mcu import tflm
    from common.mcu.memory import plan_tflm
    from common.mcu.tflite_io import export_tflite
    from common.models import MODELS

    if family == "ofa":
        config = space_config(BASE, resolution, width)
        specs = [subnet_spec(config, {**c, "r": resolution}) for c in sample_choices(BASE, 2, 4)]
    else:
        specs = [MODELS.get(family)(num_classes=10, width=width).spec]
    model = MemoryModel(code_kb=1.0, planner="tflm")
    for spec in specs:
        net = build_static_subnet(spec).eval()
        g = convert(
            net,
            [
                torch.randn(
                    1, 3, resolution, resolution, generator=torch.Generator().manual_seed(i)
                )
                for i in range(2)
            ],
        )
        sram, flash = model.measure_spec(spec, resolution)
        assert sram == plan_tflm(g).arena_bytes
        assert sram == tflm.arena_report(export_tflite(g))["head"]
        assert flash == const_bytes(g) + 1024
        assert sram > MemoryModel().measure_spec(spec, resolution)[0]


def test_an_unknown_planner_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="planner: 'tflite' is not allowed; allowed values"):
        MemoryModel(planner="tflite")
