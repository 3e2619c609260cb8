"""TinyNAS stage 2 (common/tinynas/search.py): the engine's constraints folded into one cost, the
evolution never returning an architecture over any of them, and a search scored by measured
held-out accuracy that repeats for a seed and resumes after a kill with the same result."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from common.data.arrays import ArrayDataset
from common.data.loader import build_loader
from common.mcu.memory import plan_tinyengine
from common.ofa.efficiency import arch_macs
from common.ofa.search import EvolutionConfig, EvolutionSearch
from common.ofa.supernet import OFAMobileNetV3
from common.ofa.training import extreme_archs, full_space
from common.tinynas.search import EngineConstraints, HoldoutAccuracy
from common.tinynas.space import MemoryBudget, MemoryModel, const_bytes, space_config
from tests.common.tinynas.test_space import BASE, converted

CONFIG = space_config(BASE, 24, 1.0)
MODEL = MemoryModel(code_kb=1.0)


def budget_between(lo: float, hi: float) -> MemoryBudget:
    """A budget between the smallest and the largest network's memory (``lo``/``hi`` of the way),
    so that it binds: the largest network is over it, the smallest within."""
    ex = extreme_archs(CONFIG, full_space(CONFIG))
    (s0, f0), (s1, f1) = (MODEL.measure(CONFIG, ex[k]) for k in ("min", "max"))
    return MemoryBudget(sram_kb=(s0 + lo * (s1 - s0)) / 1024, flash_kb=(f0 + hi * (f1 - f0)) / 1024)


def test_constraints_are_the_largest_ratio_of_cost_to_limit() -> None:
    budget = budget_between(0.5, 0.5)
    c = EngineConstraints(
        CONFIG, budget, MODEL, extra={"macs": (lambda a: arch_macs(CONFIG, a), 1e9)}
    )
    ex = extreme_archs(CONFIG, full_space(CONFIG))
    for arch in ex.values():
        sram, flash = MODEL.measure(CONFIG, arch)
        costs = c.measure(arch)
        assert costs["sram_bytes"] == sram and costs["flash_bytes"] == flash
        assert costs["macs"] == arch_macs(CONFIG, arch)
        want = max(sram / budget.sram_bytes, flash / budget.flash_bytes, costs["macs"] / 1e9)
        assert c(arch) == pytest.approx(want)
        assert c.satisfied(arch) == (sram <= budget.sram_bytes and flash <= budget.flash_bytes)
    assert not c.satisfied(ex["max"]) and c.satisfied(ex["min"])
    # a third constraint binds on its own
    tight = EngineConstraints(CONFIG, budget, MODEL, extra={"macs": (lambda a: 1.0, 0.5)})
    assert not tight.satisfied(ex["min"])
    with pytest.raises(ValueError, match="limit must be > 0"):
        EngineConstraints(CONFIG, budget, MODEL, extra={"macs": (lambda a: 1.0, 0.0)})


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("where", [(0.3, 0.9), (0.9, 0.3), (0.5, 0.5)])
def test_the_search_never_returns_an_architecture_over_any_constraint(
    seed: int, where: tuple[float, float]
) -> None:
    """A predictor that rewards size pushes the search into the budget's edge; the winner must
    still fit both SRAM and flash, by the engine's planner on the converted int8 model."""
    budget = budget_between(*where)
    c = EngineConstraints(CONFIG, budget, MODEL)
    bigger = lambda archs: [float(arch_macs(CONFIG, a)) for a in archs]  # noqa: E731
    evo = EvolutionConfig(population=8, generations=4, max_tries=2000)
    result = EvolutionSearch(
        CONFIG,
        full_space(CONFIG),
        predictor=bigger,
        efficiency=c,
        limit=1.0,
        evolution=evo,
        seed=seed,
    ).run()
    assert c.satisfied(result.arch)
    g = converted(CONFIG, result.arch)
    assert plan_tinyengine(g).peak_bytes <= budget.sram_bytes
    assert const_bytes(g) + 1024 <= budget.flash_bytes
    # not trivially small: the search went for size within the budget
    assert arch_macs(CONFIG, result.arch) > arch_macs(
        CONFIG, extreme_archs(CONFIG, full_space(CONFIG))["min"]
    )


def tiny_setup(seed: int = 0) -> tuple[OFAMobileNetV3, list[torch.Tensor], object]:
    torch.manual_seed(seed)
    net = OFAMobileNetV3(dataclasses.replace(CONFIG, num_classes=3)).eval()
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (24, 3, 16, 16), dtype=torch.uint8, generator=g)
    data = ArrayDataset(images, torch.arange(24) % 3, mean=[0.5] * 3, std=[0.25] * 3, num_classes=3)
    calib = [data[torch.arange(8)][0], data[torch.arange(8, 16)][0]]
    return net, calib, build_loader(data, batch_size=12, shuffle=False)


def search(checkpoint: Path | None, predictor: object, seed: int = 5) -> object:
    config = dataclasses.replace(CONFIG, num_classes=3)
    c = EngineConstraints(config, budget_between(0.6, 0.6), MODEL)
    evo = EvolutionConfig(population=6, generations=3)
    return EvolutionSearch(
        config,
        full_space(config),
        predictor=predictor,
        efficiency=c,
        limit=1.0,
        evolution=evo,
        seed=seed,
    ).run(checkpoint=checkpoint)


def test_held_out_accuracy_is_measured_once_per_architecture() -> None:
    net, calib, loader = tiny_setup()
    oracle = HoldoutAccuracy(net, calibration=calib, loader=loader)
    ex = extreme_archs(net.config, full_space(net.config))
    first = oracle([ex["max"], ex["min"], ex["max"]])
    assert first[0] == first[2] and all(0 <= v <= 100 for v in first)
    assert len(oracle.cache) == 2
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert oracle([ex["min"]]) == [first[1]]
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # untouched


def test_the_search_repeats_for_a_seed_and_resumes_after_a_kill(tmp_path: Path) -> None:
    net, calib, loader = tiny_setup()
    whole = search(None, HoldoutAccuracy(net, calibration=calib, loader=loader))
    again = search(None, HoldoutAccuracy(net, calibration=calib, loader=loader))
    assert again.arch == whole.arch and again.history == whole.history
    other = search(None, HoldoutAccuracy(net, calibration=calib, loader=loader), seed=6)
    assert other.history != whole.history or other.arch != whole.arch  # another draw

    class Killed(Exception):
        pass

    calls = {"n": 0}
    oracle = HoldoutAccuracy(net, calibration=calib, loader=loader)

    def dies(archs):  # killed in the middle of the third batch of candidates
        calls["n"] += 1
        if calls["n"] == 3:
            raise Killed
        return oracle(archs)

    ckpt = tmp_path / "search.json"
    with pytest.raises(Killed):
        search(ckpt, dies)
    assert json.loads(ckpt.read_text())["generation"] == 1  # the first generation was saved
    resumed = search(ckpt, HoldoutAccuracy(net, calibration=calib, loader=loader))
    assert resumed.resumed_from == 1
    assert resumed.arch == whole.arch and resumed.history == whole.history
