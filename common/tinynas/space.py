"""TinyNAS stage 1: search-space optimisation (Lin et al., MCUNet, NeurIPS 2020, Section 3.1).

A *space* is the elastic MobileNet-style space (kernel, expand ratio and depth per stage, as in
:class:`common.ofa.OFAMobileNetV3Config`) at one input resolution R and one width multiplier W.
The paper's grid is 12 resolutions x 9 width multipliers; for each space it samples m random
networks, keeps those that fit the microcontroller's memory, and picks the space whose fitting
networks have the **largest mean computation** (FLOPs; MACs here): more computation within the
same memory means more capacity, hence, the paper argues (Fig. 10), more accuracy. No training.

**Memory of one network** (:class:`MemoryModel`), with no weights and no compiler:

* peak SRAM: the int8 activation arena (plus in-place scratch) of the engine's own memory plan on
  the network's shapes-only graph (:func:`common.mcu.memory.plan_tinyengine`: in-place
  depthwise, lifetime-based reuse), the planner the deployment uses (tests compare with the
  converted model);
* flash: the int8 model's constants exactly as the reference-kernel build stores them (int8
  weights, int32 biases, a 32-bit multiplier and shift per output channel; :func:`const_bytes`)
  plus ``code_kb`` for the engine's code, a setting. These constants are what the generated code
  needs at the least: its per-channel code is optional, traded for flash under a budget.

**Common random numbers.** Every space is scored on the *same* m architectures (kernel sizes,
expand ratios, depths; only R and W differ), so two spaces' difference is not sampling noise of
different draws.

**Budgets at another scale** (:func:`scaled_budget`): an MCU's budget scaled by the ratio of the
largest network's memory in our grid to the largest network's memory in a reference grid (the
paper's), per resource: the budget then cuts our largest network as much as the real one cuts
the paper's.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.config import ConfigError, bounds
from common.mcu.graph import Graph, Op, Tensor
from common.mcu.memory import plan_tflm, plan_tinyengine
from common.models.mbconv import MBConvNetSpec
from common.ofa.efficiency import arch_macs, shapes_graph
from common.ofa.supernet import OFAMobileNetV3Config, subnet_spec
from common.ofa.training import extreme_archs, full_space

Arch = dict[str, Any]
KB = 1024  # the datasheets' kB: the STM32F746 has 320 x 1024 bytes of SRAM


@dataclass(frozen=True)
class MemoryBudget:
    """What a microcontroller leaves the model: peak activation SRAM and flash (kB = 1024 B)."""

    sram_kb: float = field(metadata=bounds(gt=0))
    flash_kb: float = field(metadata=bounds(gt=0))
    label: str = ""

    @property
    def sram_bytes(self) -> int:
        return int(self.sram_kb * KB)

    @property
    def flash_bytes(self) -> int:
        return int(self.flash_kb * KB)

    def fits(self, sram_bytes: int, flash_bytes: int) -> bool:
        return sram_bytes <= self.sram_bytes and flash_bytes <= self.flash_bytes

    def scaled(self, sram: float, flash: float) -> MemoryBudget:
        """This budget with its SRAM times ``sram`` and its flash times ``flash``."""
        return dataclasses.replace(
            self, sram_kb=self.sram_kb * sram, flash_kb=self.flash_kb * flash
        )


PLANNERS = ("tinyengine", "tflm")


@dataclass(frozen=True)
class MemoryModel:
    """How a network's memory is counted on one engine: peak SRAM from the engine's memory plan,
    flash = the int8 constants + ``code_kb`` (the engine's code, a setting).

    ``planner``: ``"tinyengine"``, our engine's plan (:func:`common.mcu.memory.plan_tinyengine`:
    in-place depthwise, lifetime-based reuse), or ``"tflm"``, TF-Lite Micro's
    (:func:`common.mcu.memory.plan_tflm`: a buffer per tensor, greedy by size) on the graph the
    converter writes for it, explicit PAD tensors included (:func:`tflm_graph`)."""

    code_kb: float = field(default=0.0, metadata=bounds(ge=0))
    planner: str = "tinyengine"

    def __post_init__(self) -> None:
        if self.planner not in PLANNERS:
            raise ConfigError(
                f"planner: {self.planner!r} is not allowed; allowed values: {', '.join(PLANNERS)}"
            )

    def measure(self, config: OFAMobileNetV3Config, arch: Arch) -> tuple[int, int]:
        """``(peak SRAM bytes, flash bytes)`` of ``arch`` (at its resolution ``arch["r"]``)."""
        return self.measure_spec(subnet_spec(config, arch), int(arch["r"]))

    def measure_spec(self, spec: MBConvNetSpec, resolution: int) -> tuple[int, int]:
        """``(peak SRAM bytes, flash bytes)`` of any MBConv network (e.g. a scaled MobileNetV2)."""
        return self.measure_graph(shapes_graph(spec, resolution))

    def measure_graph(self, g: Graph) -> tuple[int, int]:
        """``(peak SRAM bytes, flash bytes)`` of a shapes-only graph
        (:func:`common.ofa.efficiency.shapes_graph`)."""
        if self.planner == "tflm":
            sram = plan_tflm(tflm_graph(g)).arena_bytes
        else:
            sram = plan_tinyengine(g).peak_bytes
        return sram, const_bytes(g) + int(self.code_kb * KB)


def tflm_graph(g: Graph) -> Graph:
    """A shapes-only graph (:func:`common.ofa.efficiency.shapes_graph`) as the converter
    (:func:`common.mcu.convert.convert`) writes it for TF-Lite Micro: TF-Lite's SAME padding
    matches PyTorch's only at stride 1, so every other padded convolution reads an explicit PAD
    operator's output, a tensor of its own that TF-Lite Micro's arena holds. The PAD tensor is
    placed just before the convolution's output in the tensor order, as the converter places it
    (the order breaks TF-Lite Micro's ties between equal-sized buffers)."""
    tensors: dict[str, Tensor] = {}
    ops: list[Op] = []
    pads: dict[str, Tensor] = {}  # the convolution's output -> the PAD tensor before it
    for op in g.ops:
        padding = op.options.get("padding")
        if op.kind not in ("conv2d", "depthwise_conv2d") or not isinstance(padding, tuple):
            ops.append(op)
            continue
        (pt, pb), (pl, pr) = padding
        k = g.tensors[op.inputs[1]].shape[1]
        same = tuple(op.options["stride"]) == (1, 1) and pt == pb == pl == pr == (k - 1) // 2
        if same or not (pt or pb or pl or pr):
            ops.append(op)
            continue
        x = g.tensors[op.inputs[0]]
        n, h, w, c = x.shape
        padded = dataclasses.replace(
            x, name=f"{op.name}/pad", shape=(n, h + pt + pb, w + pl + pr, c)
        )
        pads[op.outputs[0]] = padded
        ops.append(Op("pad", [x.name], [padded.name], {"paddings": padding}, f"{op.name}_pad"))
        options = {**op.options, "padding": ((0, 0), (0, 0))}
        ops.append(dataclasses.replace(op, inputs=[padded.name, *op.inputs[1:]], options=options))
    for name, t in g.tensors.items():
        if name in pads:
            tensors[pads[name].name] = pads[name]
        tensors[name] = t
    return Graph(tensors, ops, list(g.inputs), list(g.outputs))


def const_bytes(g: Any) -> int:
    """Flash bytes of an int8 graph's constants as the reference-kernel build stores them: int8
    weights, int32 biases, and a 32-bit requantization multiplier and shift per output channel.
    ``g`` may be a shapes-only graph (:func:`common.ofa.efficiency.shapes_graph`)."""
    total = 0
    for op in g.ops:
        if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
            w, b = g.tensors[op.inputs[1]].shape, g.tensors[op.inputs[2]].shape
            total += math.prod(w) + 4 * math.prod(b) + 8 * math.prod(b)
    return total


@dataclass(frozen=True)
class SpaceGrid:
    """The spaces to compare (every resolution x every width multiplier) and the m random
    networks scored in each."""

    resolutions: list[int]
    width_mults: list[float]
    samples: int = field(default=1000, metadata=bounds(ge=1))
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.resolutions or any(r < 8 for r in self.resolutions):
            raise ConfigError(f"resolutions: need sizes >= 8 px, got {self.resolutions}")
        if not self.width_mults or any(not w > 0 for w in self.width_mults):
            raise ConfigError(f"width_mults: need multipliers > 0, got {self.width_mults}")

    def spaces(self) -> list[tuple[int, float]]:
        return [(int(r), float(w)) for r in self.resolutions for w in self.width_mults]


def space_config(
    base: OFAMobileNetV3Config, resolution: int, width_mult: float
) -> OFAMobileNetV3Config:
    """The space of ``base``'s skeleton and choices at one resolution and width multiplier."""
    return dataclasses.replace(
        base, width_mult=width_mult, resolution_range=(resolution, resolution)
    )


def sample_choices(base: OFAMobileNetV3Config, n: int, seed: int) -> list[Arch]:
    """``n`` uniformly random architectures (kernel, expand per block, depth per stage) of
    ``base``'s choices, with no resolution: the same in every space of a grid."""
    rng = random.Random(seed)
    n_blocks = base.num_stages * max(base.depths)
    return [
        {
            "ks": [rng.choice(base.kernel_sizes) for _ in range(n_blocks)],
            "e": [rng.choice(base.expand_ratios) for _ in range(n_blocks)],
            "d": [rng.choice(base.depths) for _ in range(base.num_stages)],
        }
        for _ in range(n)
    ]


@dataclass
class SpaceStats:
    """One space's m networks measured: their MACs, peak SRAM and flash."""

    resolution: int
    width_mult: float
    macs: list[int]
    sram_bytes: list[int]
    flash_bytes: list[int]

    @property
    def name(self) -> str:
        return f"w{self.width_mult:g}-r{self.resolution}"

    def fits(self, budget: MemoryBudget) -> list[bool]:
        """Which networks fit ``budget`` (both SRAM and flash)."""
        return [budget.fits(s, f) for s, f in zip(self.sram_bytes, self.flash_bytes, strict=True)]

    def fitting_macs(self, budget: MemoryBudget) -> list[int]:
        """The MACs of the networks that fit ``budget``, ascending (the FLOPs CDF's points)."""
        return sorted(m for m, ok in zip(self.macs, self.fits(budget), strict=True) if ok)

    def mean_macs(self, budget: MemoryBudget) -> float:
        """Mean MACs of the networks that fit ``budget`` (NaN when none does)."""
        fm = self.fitting_macs(budget)
        return sum(fm) / len(fm) if fm else float("nan")

    def largest_fitting(self, budget: MemoryBudget, first: int | None = None) -> int | None:
        """The index of the network with the most MACs among those that fit ``budget`` (only
        the ``first`` fitting ones in sample order when given: the same search effort in every
        space); the first of equals; None when none fits."""
        ok = [i for i, fit in enumerate(self.fits(budget)) if fit][:first]
        return max(ok, key=lambda i: (self.macs[i], -i)) if ok else None

    def summary(self, budget: MemoryBudget) -> dict[str, Any]:
        fm = self.fitting_macs(budget)
        top = fm[min(len(fm) - 1, math.ceil(0.8 * len(fm)) - 1)] if fm else float("nan")
        return {
            "name": self.name,
            "resolution": self.resolution,
            "width_mult": self.width_mult,
            "samples": len(self.macs),
            "fitting": len(fm),
            "fit_fraction": len(fm) / len(self.macs),
            "mean_macs": self.mean_macs(budget),
            "top20_macs": float(top),  # the smallest MACs of the top 20% fitting networks
            "sram_bytes": [min(self.sram_bytes), max(self.sram_bytes)],
            "flash_bytes": [min(self.flash_bytes), max(self.flash_bytes)],
        }


def space_stats(
    base: OFAMobileNetV3Config,
    resolution: int,
    width_mult: float,
    choices: Sequence[Arch],
    model: MemoryModel,
) -> SpaceStats:
    """Measure the networks ``choices`` in the space (``resolution``, ``width_mult``) of ``base``."""
    config = space_config(base, resolution, width_mult)
    stats = SpaceStats(resolution, width_mult, [], [], [])
    for c in choices:
        arch = {**c, "r": resolution}
        sram, flash = model.measure(config, arch)
        stats.macs.append(arch_macs(config, arch))
        stats.sram_bytes.append(sram)
        stats.flash_bytes.append(flash)
    return stats


def best_space(stats: Iterable[SpaceStats], budget: MemoryBudget) -> SpaceStats | None:
    """The space whose networks that fit ``budget`` have the largest mean MACs (None when no
    network of any space fits); ties go to the space where more fit."""
    ok = [s for s in stats if any(s.fits(budget))]
    if not ok:
        return None
    return max(ok, key=lambda s: (s.mean_macs(budget), sum(s.fits(budget))))


def measure_grid(
    base: OFAMobileNetV3Config, grid: SpaceGrid, model: MemoryModel, *, progress: bool = False
) -> list[SpaceStats]:
    """Every space of ``grid`` measured on the same ``grid.samples`` random networks."""
    choices = sample_choices(base, grid.samples, grid.seed)
    spaces: Iterable[tuple[int, float]] = grid.spaces()
    if progress:
        from tqdm.auto import tqdm

        spaces = tqdm(spaces, desc="TinyNAS spaces", leave=False)
    return [space_stats(base, r, w, choices, model) for r, w in spaces]


def scaled_budget(
    budget: MemoryBudget,
    model: MemoryModel,
    ours: tuple[OFAMobileNetV3Config, int, float],
    reference: tuple[OFAMobileNetV3Config, int, float],
) -> tuple[MemoryBudget, dict[str, float]]:
    """``budget`` scaled from a reference grid to ours: per resource, times (our largest
    network's memory / the reference's largest network's memory). ``ours`` and ``reference`` are
    (base space, largest resolution, largest width multiplier). Returns the budget and the two
    factors."""

    def largest(base: OFAMobileNetV3Config, r: int, w: float) -> tuple[int, int]:
        config = space_config(base, r, w)
        return model.measure(config, extreme_archs(config, full_space(config))["max"])

    s_ours, f_ours = largest(*ours)
    s_ref, f_ref = largest(*reference)
    factors = {"sram": s_ours / s_ref, "flash": f_ours / f_ref}
    return budget.scaled(factors["sram"], factors["flash"]), factors
