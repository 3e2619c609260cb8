"""Latency of candidate networks on the emulated Cortex-M7, for TinyNAS under latency limits
(Lin et al., MCUNet, NeurIPS 2020, Table 3: accuracy with no limit, at 5 FPS and at 10 FPS).

No emulator here models Cortex-M7 cycles, so a network's latency is an *estimate* from an exact
count: the instructions one inference retires on the emulated core
(:func:`common.mcu.cortexm.run`), divided by an assumed IPC of 1 and the target's clock
(:meth:`common.mcu.cortexm.Target.latency_ms_estimate`). A limit in milliseconds is therefore a
limit on instructions (:func:`instructions_for_ms`), and every comparison with it is exact.

* :func:`measure_instructions` deploys one float network for real (int8 conversion, code
  generation with one engine's kernels, cross-compilation, one emulated inference) and returns
  its exact count. Seconds per network (gcc dominates).
* :class:`InstructionFit` predicts a member of a scaled family from a few measured ones (least
  squares on its MACs and its activation elements); :func:`largest_within` uses it only to
  decide which members are worth measuring: the member it returns is the one with the most
  MACs among those *measured* within the limit, and every member with more MACs was either
  measured over the limit or predicted over it by more than a stated margin.

The search inside a space uses the per-operator instruction table of
:mod:`common.ofa.mcu_cost` (the sub-networks of a supernet share operator signatures, so the
table predicts a new one within about 1%); its winner is measured exactly too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from common.mcu import cortexm, toolchain
from common.mcu.codegen import CodegenOptions, generate
from common.mcu.convert import convert, quantize_input
from common.mcu.graph import Graph
from common.ofa.mcu_cost import LAB_TARGET, TARGET
from common.ofa.training import resize_batch

T = TypeVar("T")


def instructions_for_ms(ms: float, target: str = TARGET) -> float:
    """The instruction count whose latency estimate (IPC 1, the target's clock) is ``ms``."""
    tgt = cortexm.get_target(target)
    return ms * 1e-3 * tgt.clock_hz * tgt.assumed_ipc_estimate


def ms_estimate(instructions: float, target: str = TARGET) -> float:
    """The latency *estimate* in ms of ``instructions`` (assumed IPC, the target's clock)."""
    return cortexm.get_target(target).latency_ms_estimate(round(instructions))


def graph_features(g: Graph) -> tuple[float, float]:
    """``(MACs, activation elements)`` of a graph: what an operator's count mostly scales with
    (the multiply-accumulates, and the per-output work of requantisation and the loops)."""
    elements = sum(int(np.prod(g.tensors[op.outputs[0]].shape)) for op in g.ops)
    return float(g.macs()), float(elements)


def measure_instructions(
    model: nn.Module,
    resolution: int,
    calibration: Sequence[Tensor],
    options: CodegenOptions,
    *,
    opt: str = "-O2",
) -> int:
    """Exact instructions of one inference of the float ``model`` at ``resolution`` on the
    emulated Cortex-M7, deployed with the kernels of ``options``.

    ``calibration`` (float NCHW batches, resized to ``resolution``) sets the int8 ranges; the
    first image is the emulated input (the kernels have no data-dependent branches, so the
    count does not depend on it). An image too large for the STM32F746's memories is built for
    the same core with larger ones (``mps2-an500``: same flags, same code, same count).

    Raises:
        common.mcu.toolchain.ToolchainMissingError: without the Arm toolchain.
    """
    toolchain.require(toolchain.BUILD_TOOLS)
    batches = [resize_batch(x, resolution).contiguous().float() for x in calibration]
    with torch.no_grad():
        g = convert(model.eval(), batches)
    x = quantize_input(g, batches[0][:1])
    with tempfile.TemporaryDirectory() as tmp:
        project = generate(g, Path(tmp) / "c", options)
        try:
            built = cortexm.build(project.out_dir, TARGET, out_dir=Path(tmp) / "elf", opt=opt)
        except cortexm.DoesNotFitError:
            built = cortexm.build(project.out_dir, LAB_TARGET, out_dir=Path(tmp) / "lab", opt=opt)
        return int(cortexm.run(built, x).instructions)


@dataclass
class InstructionFit:
    """``instructions ~ a * MACs + b * activation elements + c``, least squares over measured
    ``(features, instructions)`` pairs (:func:`graph_features`); with fewer than three pairs,
    a single rate per MAC."""

    coef: tuple[float, ...] = ()

    @classmethod
    def fit(cls, pairs: Sequence[tuple[tuple[float, float], float]]) -> InstructionFit:
        if not pairs:
            raise ValueError("InstructionFit.fit: no measurements")
        y = np.array([n for _, n in pairs], dtype=float)
        if len(pairs) < 3:
            macs = np.array([f[0] for f, _ in pairs], dtype=float)
            return cls((float(y.sum() / max(macs.sum(), 1.0)),))
        a = np.array([[f[0], f[1], 1.0] for f, _ in pairs], dtype=float)
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        return cls(tuple(float(c) for c in coef))

    def predict(self, features: tuple[float, float]) -> float:
        if len(self.coef) == 1:
            return self.coef[0] * features[0]
        a, b, c = self.coef
        return a * features[0] + b * features[1] + c


@dataclass
class WithinResult(Generic[T]):
    """What :func:`largest_within` found: the member (None: none within the limit), every exact
    count it measured (by member index) and the members it skipped on the prediction."""

    member: T | None
    measured: dict[int, int] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)
    fit: InstructionFit | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "measured": {str(k): v for k, v in self.measured.items()},
            "skipped": list(self.skipped),
            "fit": list(self.fit.coef) if self.fit else None,
        }


def largest_within(
    members: Sequence[T],
    limit: float,
    *,
    macs: Callable[[T], float],
    features: Callable[[T], tuple[float, float]],
    measure: Callable[[T], int],
    probes: int = 4,
    margin: float = 0.2,
    known: dict[int, int] | None = None,
) -> WithinResult[T]:
    """The member with the most MACs whose exact instruction count is at most ``limit``.

    ``probes`` members spread over the MAC range are measured first and fitted
    (:class:`InstructionFit`); then the members are walked from the most MACs down: one
    predicted over ``limit * (1 + margin)`` is skipped, any other is measured (``measure``,
    exact) and the first within the limit is returned. ``known`` holds counts measured earlier
    (index into ``members`` -> instructions) and is updated, so several limits share them.
    """
    if not members:
        return WithinResult(None)
    counts = known if known is not None else {}
    order = sorted(range(len(members)), key=lambda i: -macs(members[i]))
    n = min(max(probes, 1), len(order))
    picks = sorted({order[round(j * (len(order) - 1) / max(n - 1, 1))] for j in range(n)})
    for i in picks:
        if i not in counts:
            counts[i] = measure(members[i])
    fit = InstructionFit.fit([(features(members[i]), counts[i]) for i in sorted(counts)])
    result = WithinResult[T](None, fit=fit)
    for i in order:
        if i not in counts and fit.predict(features(members[i])) > limit * (1 + margin):
            result.skipped.append(i)
            continue
        if i not in counts:
            counts[i] = measure(members[i])
        if counts[i] <= limit:
            result.member = members[i]
            break
    result.measured = dict(counts)
    return result
