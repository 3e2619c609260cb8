"""MCUNet's co-design question (Table 2), memory half: how large a member of a network family fits
one microcontroller budget under each inference engine's memory.

The paper compares {scaled MobileNetV2, scaled ProxylessNAS, TinyNAS} x {CMSIS-NN with
TF-Lite Micro's memory, TinyEngine}: each baseline family is scaled (width multiplier x input
resolution) down to the largest member that fits the MCU under that engine, so an engine that
needs less memory runs a larger member. Here every member of a family grid is measured with no
weights and no compiler (:class:`~common.tinynas.space.MemoryModel`):

* **reference kernels with TF-Lite Micro's plan** (``planner="tflm"``): a buffer per tensor,
  greedy by size, on the graph the converter writes for TF-Lite Micro (explicit PAD tensors
  included; :func:`~common.tinynas.space.tflm_graph`, equal to the real interpreter's arena);
* **our engine** (``planner="tinyengine"``): in-place depthwise and lifetime-based reuse;

flash is the int8 constants plus each engine's code (settings). :func:`largest_fitting` picks,
per family and engine, the member with the most MACs among those within both budgets (the
paper's "largest member that fits"; ties go to the smaller peak SRAM).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from common.models.mbconv import MBConvNetSpec
from common.ofa.efficiency import shapes_graph
from common.tinynas.space import MemoryBudget, MemoryModel


@dataclass(frozen=True)
class Member:
    """One member of a scaled family under one engine's memory model."""

    family: str
    width_mult: float
    resolution: int
    macs: int
    sram_bytes: int
    flash_bytes: int

    @property
    def name(self) -> str:
        return f"w{self.width_mult:g}-r{self.resolution}"

    def fits(self, budget: MemoryBudget) -> bool:
        return budget.fits(self.sram_bytes, self.flash_bytes)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "name": self.name}


def family_members(
    family: str,
    spec_of: Callable[[float], MBConvNetSpec],
    resolutions: Sequence[int],
    width_mults: Sequence[float],
    model: MemoryModel,
) -> list[Member]:
    """Every (width multiplier, resolution) member of ``family`` measured with ``model``;
    ``spec_of(width)`` is the family's architecture at that width."""
    out = []
    for w in width_mults:
        spec = spec_of(float(w))
        for r in resolutions:
            g = shapes_graph(spec, int(r))
            sram, flash = model.measure_graph(g)
            macs = g.macs()
            out.append(Member(family, float(w), int(r), int(macs), int(sram), int(flash)))
    return out


def largest_fitting(members: Iterable[Member], budget: MemoryBudget) -> Member | None:
    """The member with the most MACs within ``budget`` (SRAM and flash); None when none fits."""
    ok = [m for m in members if m.fits(budget)]
    if not ok:
        return None
    return max(ok, key=lambda m: (m.macs, -m.sram_bytes))
