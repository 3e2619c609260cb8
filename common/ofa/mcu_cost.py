"""Instruction counts of Once-for-All sub-networks on the int8 MCU engine (emulated Cortex-M7).

The fourth cost model of the search (after MACs, the CPU latency table and the MCU peak SRAM):
how many instructions the deployed sub-network executes on an STM32F746's Cortex-M7.

* :func:`measure_subnet_instructions` deploys one sub-network for real: the static sub-network
  with its weights is extracted from the supernet (BN recalibrated on the calibration batches),
  converted to int8 (:func:`common.mcu.convert.convert`), generated as TinyEngine-style C
  (:func:`common.mcu.codegen.generate`), cross-compiled at ``-O2`` and run once on the emulated
  Cortex-M7 with the per-operator profile (:func:`common.mcu.cortexm.run`): exact counts, total
  and per operator. Seconds per sub-network (gcc dominates).
* :class:`McuInstructionTable` is the lookup table built from those per-operator profiles,
  like :class:`common.ofa.efficiency.LatencyTable`: a sub-network's prediction is the sum of its
  operators' entries (microseconds per candidate, no compiler).
* :func:`validate_mcu_table` compares the table with measurements of held-out sub-networks.

**What an operator's count depends on, and the table's key.** Measured on this engine (a
sub-network of the default space, see the stage ``once_for_all_mcu_table``):

* not on the input values: two different inputs give identical per-operator counts (the
  kernels have no data-dependent branches);
* on the *whole network* through the per-channel code budget: by default
  (:class:`~common.mcu.codegen.CodegenOptions` ``channel_flash`` = 192 kB) the generator picks
  per-channel or GEMM code for each convolution under one global flash budget, so a layer's
  code, and its count (up to 1.6x for the same layer), changes with the other layers of the
  network. The measurements here therefore use an unlimited budget
  (:data:`MEASURE_OPTIONS`): every convolution then takes the code with the fewest estimated
  instructions on its own, and its count depends on the operator alone. The table thus models
  the fastest code the generator emits; a deployment whose per-channel code exceeds the
  default budget (or the flash) trades some of it back for flash and runs more instructions
  (9 of 13 default-space sub-networks measured wanted more: 144-273 kB by the generator's
  estimate).
  Images that would not fit the STM32F746's 1 MB flash are built for the same core with
  larger memories (``mps2-an500``: same flags, same code, same counts);
* on the weights, through the quantization: the requantization constants (from the weights
  and the calibrated ranges) pick the code per channel and layer. ADD and average pooling
  rescale by a fast or an exact path (a pooling layer moved by 27 of 8,956 instructions when
  the weights were rescaled; ADD layers of equal shapes differed by up to 5%); convolutions
  whose fast requantization cannot be proven exact fall back to the 64-bit one without
  per-channel code. On the trained smoke supernet no convolution of equal signature differed;
  on an *untrained* default-space supernet, whose residual projections are zero-initialised,
  expand convolutions differed by about 0.2% and projections by up to 31%. Each entry
  therefore keeps the mean of its observations and their range (``min``, ``max``;
  :meth:`McuInstructionTable.spread`), and :func:`validate_mcu_table` measures what that costs
  on held-out sub-networks.

An entry's key is the operator's *signature*: kind, kernel, stride, fused activation, input
and output shapes (:func:`op_signature`); signatures are computed from a shapes-only graph
(:func:`common.ofa.efficiency.shapes_graph`) at prediction time. A signature the table lacks is
predicted from an entry of the same kind, kernel, stride and activation (one with the same
feature-map sizes if any, then the closest in work: MACs, or output elements for ADD and
pooling), scaled by the ratio of work; the table counts how often that happened
(:attr:`McuInstructionTable.fallbacks`). A greedy choice of the sub-networks to measure
(:func:`covering_archs`) keeps that rare: 4% of the operators of four held-out default-space
sub-networks with a table from nine (random weights; mean error 0.46%, worst 0.73%).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from common.mcu import cortexm, toolchain
from common.mcu.codegen import CodegenOptions, generate
from common.mcu.convert import convert, quantize_input
from common.mcu.graph import Graph, Op
from common.ofa.efficiency import Arch, JsonTable, random_archs, shapes_graph
from common.ofa.predictor import rank_correlation
from common.ofa.supernet import OFAMobileNetV3, OFAMobileNetV3Config, subnet_spec
from common.ofa.training import recalibrate_bn_, resize_batch, set_arch

#: The code generator's options for every measurement: the default specialized
#: (TinyEngine-style) kernels with an unlimited per-channel code budget, so that no layer's code
#: depends on the rest of the network (see the module docstring).
MEASURE_OPTIONS = CodegenOptions(channel_flash=2**40)

#: The deployment target, and the same core with 4 MB memories for images over its 1 MB flash.
TARGET = "stm32f746"
LAB_TARGET = "mps2-an500"

_CONST_KINDS = ("reshape",)  # views: no code in the specialized engine


# ---------------------------------------------------------------------- signatures
def op_family(g: Graph, op: Op) -> str:
    """``kind/k<kh>x<kw>/s<stride>/<activation>``: what a fallback may scale across."""
    k = "k1x1"
    if op.kind in ("conv2d", "depthwise_conv2d"):
        w = g.tensors[op.inputs[1]].shape  # (cout, kh, kw, cin) or (1, kh, kw, c)
        k = f"k{w[1]}x{w[2]}"
    elif op.kind == "avg_pool2d":
        k = "k{}x{}".format(*op.options["filter"])
    s = op.options.get("stride", (1, 1))
    stride = f"s{s[0]}x{s[1]}"
    if (
        op.kind == "avg_pool2d"
        and tuple(op.options["filter"]) == g.tensors[op.inputs[0]].shape[1:3]
    ):
        stride = "global"  # one window: the stride is irrelevant (and written either way)
    act = op.options.get("activation", "none")
    return f"{op.kind}/{k}/{stride}/{act}"


def op_signature(g: Graph, op: Op) -> str:
    """The table key of ``op``: its family and input and output shapes (NHWC, batch dropped)."""
    shape = "x".join(str(d) for d in g.tensors[op.inputs[0]].shape[1:])
    out = "x".join(str(d) for d in g.tensors[op.outputs[0]].shape[1:])
    return f"{op_family(g, op)}/{shape}/{out}"


def op_work(g: Graph, op: Op) -> int:
    """MACs of a convolution or FC layer; elements of the output for other operators."""
    macs = Graph(g.tensors, [op], list(op.inputs[:1]), list(op.outputs)).macs()
    return int(macs) if macs else int(np.prod(g.tensors[op.outputs[0]].shape))


def arch_signatures(config: OFAMobileNetV3Config, arch: Arch) -> list[tuple[str, int]]:
    """``(signature, work)`` of every operator of ``arch``'s int8 graph, in order."""
    g = _shapes_graph(config, arch)
    return [(op_signature(g, op), op_work(g, op)) for op in g.ops]


def _shapes_graph(config: OFAMobileNetV3Config, arch: Arch) -> Graph:
    g = shapes_graph(subnet_spec(config, arch), int(arch["r"]))
    # The converter fuses the activation into the stem, expand, depthwise and head convolutions,
    # not into the linear projection, ADD or classifier: it is part of the signature.
    for op in g.ops:
        if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected", "add"):
            linear = op.kind in ("fully_connected", "add") or op.name.endswith("/project")
            op.options.setdefault("activation", "none" if linear else config.act)
    return g


def _spatial(sig: str) -> tuple[str, str]:
    """Input and output feature-map sizes (``HxW``) of a signature."""
    shape_in, shape_out = sig.rsplit("/", 2)[1:]
    return shape_in.rsplit("x", 1)[0], shape_out.rsplit("x", 1)[0]


def covering_archs(
    config: OFAMobileNetV3Config, n: int, *, seed: int, pool: int = 50
) -> list[Arch]:
    """``n`` archs that hold many distinct operator signatures: chosen greedily, each adding the
    most signatures not yet covered, from ``pool * n`` uniformly random archs (seeded).

    The table's prediction is exact for operators it holds; measuring covering archs instead
    of random ones leaves fewer operators of a new arch to the scaled fallback.
    """
    candidates = random_archs(config, pool * n, seed=seed)
    sigs = [{s for s, _ in arch_signatures(config, a)} for a in candidates]
    covered: set[str] = set()
    chosen: list[Arch] = []
    for _ in range(min(n, len(candidates))):
        best = max(range(len(candidates)), key=lambda i: len(sigs[i] - covered))
        chosen.append(candidates[best])
        covered |= sigs[best]
        sigs[best] = set()  # never picked twice
    return chosen


# ---------------------------------------------------------------------- measurement
@dataclass
class McuMeasurement:
    """One sub-network deployed and run once on the emulated Cortex-M7.

    ``ops``: ``(signature, work, instructions)`` per operator of the generated code's graph
    (PAD fused), in order; with ``other`` (instructions outside every operator) they sum to
    ``instructions`` exactly.
    """

    arch: Arch
    instructions: int
    ops: list[tuple[str, int, int]]
    other: int
    target: str
    flash_bytes: int
    channel_bytes: int
    seconds: float

    @property
    def minstr(self) -> float:
        """Millions of instructions."""
        return self.instructions / 1e6

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "instructions": self.instructions,
            "ops": [list(o) for o in self.ops],
            "other": self.other,
            "target": self.target,
            "flash_bytes": self.flash_bytes,
            "channel_bytes": self.channel_bytes,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> McuMeasurement:
        return cls(
            dict(d["arch"]),
            int(d["instructions"]),
            [(str(s), int(w), int(n)) for s, w, n in d["ops"]],
            int(d["other"]),
            str(d["target"]),
            int(d["flash_bytes"]),
            int(d["channel_bytes"]),
            float(d["seconds"]),
        )


def _profile_index(label: str) -> int | None:
    head, _, _ = label.partition(": ")
    return int(head) if head.isdigit() else None


def measure_subnet_instructions(
    supernet: OFAMobileNetV3,
    arch: Arch,
    calibration: Sequence[Tensor],
    *,
    options: CodegenOptions = MEASURE_OPTIONS,
    opt: str = "-O2",
    work_dir: str | Path | None = None,
) -> McuMeasurement:
    """Deploy ``arch`` of ``supernet`` on the emulated Cortex-M7 and count its instructions.

    Args:
        supernet: the trained supernet (left with its largest sub-network active).
        arch: the sub-network (``ks``, ``e``, ``d``, ``r``).
        calibration: float NCHW batches (any resolution: resized to ``arch["r"]``); they
            recalibrate the sub-network's BN and calibrate the int8 ranges, and the first image
            is the emulated input (counts do not depend on it).
        options: code generator options (default :data:`MEASURE_OPTIONS`).
        opt: the cross-compiler's optimisation level.
        work_dir: where the C project and the image go (default: a temporary directory).

    Raises:
        common.mcu.toolchain.ToolchainMissingError: without the Arm toolchain.
    """
    toolchain.require((*toolchain.BUILD_TOOLS, "arm-none-eabi-addr2line"))
    t0 = time.perf_counter()
    r = int(arch["r"])
    batches = [resize_batch(x, r).contiguous() for x in calibration]
    set_arch(supernet, arch)
    sub = supernet.get_active_subnet()
    supernet.set_max_net()
    with torch.no_grad():
        recalibrate_bn_(sub, batches)
        g = convert(sub.eval(), batches)
    x = quantize_input(g, batches[0][:1])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(work_dir) if work_dir is not None else Path(tmp)
        project = generate(g, root / "c", options)
        try:
            built = cortexm.build(project.out_dir, TARGET, out_dir=root / "elf", opt=opt)
        except cortexm.DoesNotFitError:
            built = cortexm.build(project.out_dir, LAB_TARGET, out_dir=root / "elf_lab", opt=opt)
        result = cortexm.run(built, x, profile=True)
    assert result.profile is not None
    run_graph = project.graph
    per_op = [0] * len(run_graph.ops)
    other = 0
    for label, n in result.profile.items():
        i = _profile_index(label)
        if i is None:
            other += n
            continue
        kind = label.split(": ", 1)[1].split(" ", 1)[0]
        if run_graph.ops[i].kind != kind:  # the profile and the graph must agree
            raise RuntimeError(f"profile region {label!r} is not operator {i} of the graph")
        per_op[i] += n
    ops = [
        (op_signature(run_graph, op), op_work(run_graph, op), per_op[i])
        for i, op in enumerate(run_graph.ops)
    ]
    return McuMeasurement(
        arch=dict(arch),
        instructions=int(result.instructions),
        ops=ops,
        other=other,
        target=built.target.name,
        flash_bytes=int(built.flash_bytes),
        channel_bytes=int(project.channel_bytes),
        seconds=time.perf_counter() - t0,
    )


# ---------------------------------------------------------------------- table
@dataclass
class McuInstructionTable(JsonTable):
    """Per-operator Cortex-M7 instruction counts of one space; see the module docstring.

    ``entries`` maps an operator signature (:func:`op_signature`) to ``instructions`` (the
    mean of its observations), ``work`` (its MACs or elements), ``n`` (observations),
    ``min`` and ``max``; ``other`` is the instructions outside every operator.
    ``lookups`` and ``fallbacks`` count the operators predicted so far and those whose
    signature was missing (predicted from the nearest entry, scaled by work).
    """

    config: OFAMobileNetV3Config
    entries: dict[str, dict[str, float]]
    other: float = 0.0
    target: str = TARGET
    clock_hz: int = cortexm.TARGETS[TARGET].clock_hz
    meta: dict[str, Any] = field(default_factory=dict)
    lookups: int = field(default=0, compare=False)
    fallbacks: int = field(default=0, compare=False)

    # ------------------------------------------------------------------ predict
    def predict(self, arch: Arch) -> float:
        """Predicted instructions of one inference of ``arch``."""
        return self.predict_detail(arch)[0]

    def predict_minstr(self, arch: Arch) -> float:
        """Predicted millions of instructions (the search metric ``mcu_minstr``)."""
        return self.predict(arch) / 1e6

    def latency_ms_estimate(self, instructions: float) -> float:
        """An *estimate*, not a measurement: instructions at IPC 1 and the target's clock."""
        return 1e3 * instructions / self.clock_hz

    def predict_detail(self, arch: Arch) -> tuple[float, int]:
        """``(instructions, operators not in the table)`` of ``arch``."""
        total, missing = float(self.other), 0
        for sig, work in arch_signatures(self.config, arch):
            self.lookups += 1
            entry = self.entries.get(sig)
            if entry is not None:
                total += entry["instructions"]
                continue
            missing += 1
            self.fallbacks += 1
            total += self._fallback(sig, work)
        return total, missing

    def _fallback(self, sig: str, work: int) -> float:
        family = sig.rsplit("/", 2)[0]
        kind = family.split("/", 1)[0]
        if kind in _CONST_KINDS:
            return 0.0
        same = [(k, e) for k, e in self.entries.items() if k.rsplit("/", 2)[0] == family]
        same = same or [(k, e) for k, e in self.entries.items() if k.split("/", 1)[0] == kind]
        if not same:
            raise KeyError(f"no entry of kind {kind!r} in the MCU instruction table for {sig}")
        hw = _spatial(sig)

        def distance(item: tuple[str, dict[str, float]]) -> tuple[int, float]:
            # The same feature-map sizes first (then the count scales with the channels, which
            # the kernels loop over), then the closest work.
            k, e = item
            return (int(_spatial(k) != hw), abs(math.log(max(e["work"], 1) / max(work, 1))))

        near = min(same, key=distance)[1]
        return near["instructions"] * work / max(near["work"], 1)

    def reset_counts(self) -> None:
        self.lookups = self.fallbacks = 0

    # ------------------------------------------------------------------ build / io
    @classmethod
    def build(
        cls, config: OFAMobileNetV3Config, measurements: Sequence[McuMeasurement]
    ) -> McuInstructionTable:
        """The table of every operator signature seen in ``measurements`` (mean count: a table
        built from one sub-network predicts that sub-network's total exactly)."""
        seen: dict[str, list[int]] = {}
        work: dict[str, int] = {}
        for m in measurements:
            for sig, w, n in m.ops:
                seen.setdefault(sig, []).append(n)
                work[sig] = w
        entries = {
            sig: {
                "instructions": float(np.mean(ns)),
                "work": work[sig],
                "n": len(ns),
                "min": min(ns),
                "max": max(ns),
            }
            for sig, ns in sorted(seen.items())
        }
        other = float(np.mean([m.other for m in measurements])) if measurements else 0.0
        return cls(config, entries, other)

    def spread(self) -> dict[str, float]:
        """How much entries seen more than once vary (weights, quantization): the number of
        such entries, how many vary at all, and the largest ``(max - min) / median``."""
        multi = [e for e in self.entries.values() if e["n"] > 1]
        varied = [e for e in multi if e["max"] != e["min"]]
        worst = max(((e["max"] - e["min"]) / max(e["instructions"], 1) for e in multi), default=0)
        return {
            "repeated_entries": float(len(multi)),
            "varying_entries": float(len(varied)),
            "max_rel_spread": float(worst),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "target": self.target,
            "clock_hz": self.clock_hz,
            "other": self.other,
            "entries": self.entries,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> McuInstructionTable:
        return cls(
            OFAMobileNetV3Config.from_dict(d["config"]),
            {k: {f: float(v) for f, v in e.items()} for k, e in d["entries"].items()},
            float(d.get("other", 0.0)),
            str(d.get("target", TARGET)),
            int(d.get("clock_hz", cortexm.TARGETS[TARGET].clock_hz)),
            dict(d.get("meta", {})),
        )


def validate_mcu_table(
    table: McuInstructionTable, measurements: Sequence[McuMeasurement]
) -> dict[str, Any]:
    """Predicted against measured instructions of held-out sub-networks.

    Returns flat numbers (``mean_rel_error`` and ``max_rel_error`` in percent, ``spearman``
    with two or more sub-networks, ``n``, ``fallback_fraction``: the share of their operators missing from the table) and
    ``rows``: per sub-network its arch, predicted and measured instructions and missing ops.
    """
    rows = []
    n_ops = 0
    for m in measurements:
        pred, missing = table.predict_detail(m.arch)
        n_ops += len(m.ops)
        rows.append(
            {
                "arch": m.arch,
                "predicted": pred,
                "measured": m.instructions,
                "rel_error": abs(pred - m.instructions) / m.instructions * 100.0,
                "missing_ops": missing,
                "ops": len(m.ops),
            }
        )
    errs = [r["rel_error"] for r in rows]
    pred = [r["predicted"] for r in rows]
    meas = [float(r["measured"]) for r in rows]
    out: dict[str, Any] = {
        "mean_rel_error": float(np.mean(errs)),
        "max_rel_error": float(np.max(errs)),
        "n": float(len(rows)),
        "fallback_fraction": sum(r["missing_ops"] for r in rows) / max(n_ops, 1),
        "rows": rows,
    }
    if len(rows) > 1:  # a rank correlation needs two points
        out["spearman"] = rank_correlation(pred, meas)
    return out
