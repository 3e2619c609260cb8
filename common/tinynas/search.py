"""TinyNAS stage 2: one-shot search in the chosen space under the engine's own memory
(Lin et al., MCUNet, NeurIPS 2020, Section 3.1, "Resource-constrained model specialization").

The chosen space (one resolution R, one width multiplier W; :mod:`common.tinynas.space`) is
trained as a weight-sharing supernet with the Once-for-All loop
(:func:`common.ofa.shrinking.train_phase`: the largest network first, then every kernel size,
expand ratio and depth at once, several sub-networks per step, distilled from the largest);
then :class:`common.ofa.search.EvolutionSearch` looks for the sub-network with the best
held-out accuracy among those that satisfy **every** constraint:

* peak SRAM under the engine's TinyEngine-style memory plan (:class:`MemoryModel`),
* flash = int8 constants + the engine's code,
* and, when given, any further cost (e.g. estimated latency) with its own limit.

:class:`EngineConstraints` folds the constraints into one cost, the largest of the ratios
``cost / limit``, so that the evolution's single limit of 1.0 means "within every budget"; the
search admits no candidate over that limit, so its result never breaks a constraint.

:class:`HoldoutAccuracy` scores candidates by their measured accuracy on images held out of
training (each sub-network's batch norm recalibrated first), cached per architecture: at this
scale measuring is cheap enough that no accuracy predictor is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from common.ofa.supernet import OFAMobileNetV3, OFAMobileNetV3Config
from common.ofa.training import evaluate_arch
from common.tinynas.space import MemoryBudget, MemoryModel

Arch = dict[str, Any]


def arch_key(arch: Arch) -> tuple:
    """A hashable identity of ``arch`` (kernel sizes, expand ratios, depths, resolution)."""
    return (tuple(arch["ks"]), tuple(arch["e"]), tuple(arch["d"]), int(arch["r"]))


@dataclass
class EngineConstraints:
    """The deployment constraints of one search: ``budget`` (peak SRAM and flash as measured by
    ``memory``) and any ``extra`` costs, each ``name: (cost(arch), limit)``.

    Calling it returns the largest ``cost / limit`` ratio (at most 1.0 means the arch satisfies
    every constraint); :meth:`measure` returns every cost of an arch."""

    config: OFAMobileNetV3Config
    budget: MemoryBudget
    memory: MemoryModel
    extra: Mapping[str, tuple[Callable[[Arch], float], float]] = field(default_factory=dict)
    _cache: dict[tuple, dict[str, float]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for name, (_, limit) in self.extra.items():
            if not limit > 0:
                raise ValueError(f"constraint {name!r}: the limit must be > 0, got {limit}")

    def limits(self) -> dict[str, float]:
        out = {"sram_bytes": float(self.budget.sram_bytes)}
        out["flash_bytes"] = float(self.budget.flash_bytes)
        out.update({name: float(limit) for name, (_, limit) in self.extra.items()})
        return out

    def measure(self, arch: Arch) -> dict[str, float]:
        """Every constrained cost of ``arch`` (cached per architecture)."""
        k = arch_key(arch)
        if k not in self._cache:
            sram, flash = self.memory.measure(self.config, arch)
            costs = {"sram_bytes": float(sram), "flash_bytes": float(flash)}
            costs.update({name: float(cost(arch)) for name, (cost, _) in self.extra.items()})
            self._cache[k] = costs
        return self._cache[k]

    def ratios(self, arch: Arch) -> dict[str, float]:
        """``cost / limit`` per constraint."""
        costs, limits = self.measure(arch), self.limits()
        return {name: costs[name] / limits[name] for name in limits}

    def satisfied(self, arch: Arch) -> bool:
        return all(r <= 1.0 for r in self.ratios(arch).values())

    def __call__(self, arch: Arch) -> float:
        return max(self.ratios(arch).values())


class HoldoutAccuracy:
    """``archs -> held-out accuracies (%)`` of sub-networks of ``supernet``: each extracted,
    its batch norm recalibrated on ``calibration``, and measured on ``loader`` (cached, so an
    architecture the evolution meets again costs nothing)."""

    def __init__(
        self,
        supernet: OFAMobileNetV3,
        *,
        calibration: Sequence[Tensor],
        loader: Any,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.supernet = supernet
        self.calibration = calibration
        self.loader = loader
        self.cache: dict[tuple, float] = {}
        self.progress = progress

    def __call__(self, archs: Sequence[Arch]) -> list[float]:
        out = []
        for arch in archs:
            k = arch_key(arch)
            if k not in self.cache:
                m = evaluate_arch(
                    self.supernet, arch, calibration=self.calibration, eval_loader=self.loader
                )
                self.cache[k] = float(m["accuracy"])
                if self.progress is not None:
                    self.progress(len(self.cache))
            out.append(self.cache[k])
        return out
