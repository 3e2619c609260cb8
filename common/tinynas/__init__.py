"""TinyNAS (Lin et al., MCUNet, NeurIPS 2020, Section 3.1): neural architecture search for
microcontrollers in two stages, on this repository's MCU engine and Once-for-All machinery.

1. **Search-space optimisation** (:mod:`common.tinynas.space`): among spaces that differ in input
   resolution and width multiplier, pick the one whose random networks that *fit the memory
   budget* have the largest mean computation (MACs), with each network's peak SRAM from the
   engine's own memory plan and its flash from its int8 constants. No training.
2. **One-shot search in the chosen space**: the supernet trained with progressive shrinking
   (:mod:`common.ofa.shrinking`), then evolution under the engine's constraints
   (:mod:`common.ofa.search`), scored by held-out accuracy and constrained by the engine's
   memory (:mod:`common.tinynas.search`).
"""

from common.tinynas.search import EngineConstraints, HoldoutAccuracy, arch_key
from common.tinynas.space import (
    MemoryBudget,
    MemoryModel,
    SpaceGrid,
    SpaceStats,
    best_space,
    const_bytes,
    measure_grid,
    scaled_budget,
    space_config,
    space_stats,
)

__all__ = [
    "EngineConstraints",
    "HoldoutAccuracy",
    "MemoryBudget",
    "MemoryModel",
    "SpaceGrid",
    "SpaceStats",
    "arch_key",
    "best_space",
    "const_bytes",
    "measure_grid",
    "scaled_budget",
    "space_config",
    "space_stats",
]
