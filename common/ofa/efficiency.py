"""Efficiency of Once-for-All sub-networks, without training or running them on the target.

Three models of cost for the search's constraint (Cai et al., ICLR 2020, Section 3.4, and the
MCU deployment of MCUNet):

* :func:`arch_macs`: multiply-accumulates, exact and analytic
  (:func:`common.ofa.supernet.analytic_macs`).
* :class:`LatencyTable`: a per-block latency lookup table measured on *this* machine (the
  paper builds one per phone); a sub-network's latency is the sum of its blocks' entries.
  :func:`validate_latency_table` measures whole sub-networks to say how good that sum is.
* :func:`arch_peak_sram`: the int8 peak activation SRAM of the sub-network under the MCU engine's
  TinyEngine memory plan (in-place depthwise, lifetime-based reuse), computed by the same planner
  the deployment uses (:func:`common.mcu.memory.plan_tinyengine`) on a shapes-only graph, so no
  weights, conversion or calibration are needed: milliseconds per candidate.

A fourth, Cortex-M7 instruction counts of the deployed sub-network and their per-operator
lookup table, needs the Arm toolchain and lives in :mod:`common.ofa.mcu_cost`.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from common.mcu.graph import Graph, Op
from common.mcu.graph import Tensor as QTensor
from common.mcu.memory import plan_tinyengine
from common.measure import measure_latency
from common.models.mbconv import BlockSpec, MBConv, MBConvNetSpec
from common.ofa.supernet import (
    OFAMobileNetV3Config,
    analytic_macs,
    build_static_subnet,
    subnet_spec,
)

Arch = dict[str, Any]


def _out(h: int, stride: int) -> int:
    return (h - 1) // stride + 1  # odd kernel, padding k // 2


def arch_macs(config: OFAMobileNetV3Config, arch: Arch) -> int:
    """MACs of ``arch`` at its resolution ``arch["r"]``."""
    return analytic_macs(config, arch, int(arch["r"]))


# ---------------------------------------------------------------------- MCU peak SRAM
def shapes_graph(spec: MBConvNetSpec, resolution: int) -> Graph:
    """The int8 graph :func:`common.mcu.convert.convert` would produce for ``spec``, with
    shapes only (weights are placeholders): what the memory planners need."""
    scale, zp = np.ones(1, np.float32), np.zeros(1, np.int64)
    tensors: dict[str, QTensor] = {}
    ops: list[Op] = []

    def act(name: str, shape: tuple[int, ...]) -> str:
        tensors[name] = QTensor(name, shape, "int8", scale, zp)
        return name

    def const(name: str, shape: tuple[int, ...]) -> str:
        tensors[name] = QTensor(name, shape, "int8", scale, zp, data=np.zeros(0, np.int8))
        return name

    def conv(x: str, cout: int, k: int, stride: int, depthwise: bool, name: str) -> str:
        _, h, w, cin = tensors[x].shape
        oh, ow = _out(h, stride), _out(w, stride)
        p = k // 2
        wshape = (1, k, k, cin) if depthwise else (cout, k, k, cin)
        y = act(name, (1, oh, ow, cout))
        ops.append(
            Op(
                "depthwise_conv2d" if depthwise else "conv2d",
                [x, const(f"{name}/w", wshape), const(f"{name}/b", (cout,))],
                [y],
                {"stride": (stride, stride), "padding": ((p, p), (p, p))},
                name,
            )
        )
        return y

    x = act("input", (1, resolution, resolution, spec.in_channels))
    y = conv(x, spec.stem, 3, 2, False, "stem")
    cin = spec.stem
    for i, b in enumerate(spec.blocks):
        inp = y
        mid = cin * b.expand
        if b.expand != 1:
            y = conv(y, mid, 1, 1, False, f"b{i}/expand")
        y = conv(y, mid, b.kernel, b.stride, True, f"b{i}/dw")
        y = conv(y, b.out, 1, 1, False, f"b{i}/project")
        if b.stride == 1 and cin == b.out:
            out = act(f"b{i}/add", tensors[y].shape)
            ops.append(Op("add", [inp, y], [out], {}, f"b{i}/add"))
            y = out
        cin = b.out
    y = conv(y, spec.head, 1, 1, False, "head")
    _, h, w, c = tensors[y].shape
    pooled = act("pool", (1, 1, 1, c))
    ops.append(Op("avg_pool2d", [y], [pooled], {"filter": (h, w), "stride": (1, 1)}, "pool"))
    flat = act("flatten", (1, c))
    ops.append(Op("reshape", [pooled], [flat], {}, "flatten"))
    logits = act("logits", (1, spec.num_classes))
    ops.append(
        Op(
            "fully_connected",
            [flat, const("fc/w", (spec.num_classes, c)), const("fc/b", (spec.num_classes,))],
            [logits],
            {},
            "fc",
        )
    )
    return Graph(tensors, ops, [x], [logits])


def arch_peak_sram(config: OFAMobileNetV3Config, arch: Arch) -> int:
    """Peak int8 activation SRAM (bytes: arena + in-place scratch) of the TinyEngine plan."""
    plan = plan_tinyengine(shapes_graph(subnet_spec(config, arch), int(arch["r"])))
    return plan.peak_bytes


# ---------------------------------------------------------------------- latency table
class _DictCodec(Protocol):
    """What :class:`JsonTable` needs of the class it is mixed into."""

    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any: ...


class JsonTable:
    """Mixin: ``save`` / ``load`` of a table as JSON through the class's ``to_dict`` /
    ``from_dict``."""

    def save(self: _DictCodec, path: str | Path) -> Path:
        from common.io import write_json

        return write_json(self.to_dict(), path)

    @classmethod
    def load(cls: type[_DictCodec], path: str | Path) -> Any:
        return cls.from_dict(json.loads(Path(path).read_text()))


def _lut_key(kind: str, *parts: int) -> str:
    return "/".join([kind, *(str(p) for p in parts)])


@dataclass
class LatencyTable(JsonTable):
    """Per-block latencies (ms, batch 1) of one space on one machine; see :meth:`build`.

    Keys: ``stem/<r>``, ``first/<r>``, ``block/<stage>/<first in stage: 0|1>/<k>/<e>/<r>`` and
    ``head/<r>`` (head conv, pooling and classifier), ``r`` being the *input image* resolution.
    """

    config: OFAMobileNetV3Config
    resolutions: tuple[int, ...]
    entries: dict[str, float]
    threads: int = 1
    meta: dict[str, Any] = field(default_factory=dict)

    def predict(self, arch: Arch) -> float:
        """Predicted latency (ms) of ``arch``: the sum of its blocks' entries."""
        r = int(arch["r"])
        if r not in self.resolutions:
            raise ValueError(f"resolution {r} is not in the table's {self.resolutions}")
        total = self.entries[_lut_key("stem", r)] + self.entries[_lut_key("first", r)]
        per_stage = max(self.config.depths)
        for s, depth in enumerate(arch["d"]):
            for i in range(depth):
                b = s * per_stage + i
                key = _lut_key("block", s, int(i == 0), arch["ks"][b], arch["e"][b], r)
                total += self.entries[key]
        return total + self.entries[_lut_key("head", r)]

    # ------------------------------------------------------------------ build / io
    @classmethod
    def build(
        cls,
        config: OFAMobileNetV3Config,
        resolutions: Sequence[int],
        *,
        repeats: int = 30,
        warmup: int = 5,
        threads: int = 1,
        progress: Callable[[int, int], None] | None = None,
    ) -> LatencyTable:
        """Time every distinct block of the space at every resolution on this machine.

        Each entry is the median of ``repeats`` timed forward passes (batch 1, ``threads``
        threads) of a standalone block in eval mode, after ``warmup`` untimed ones.
        """
        jobs: list[tuple[str, nn.Module, tuple[int, int, int]]] = []
        for r in resolutions:
            h = _out(r, 2)
            stem = nn.Sequential(
                nn.Conv2d(config.in_channels, config.stem_channels, 3, 2, 1, bias=False),
                nn.BatchNorm2d(config.stem_channels),
                nn.ReLU6(),
            )
            jobs.append((_lut_key("stem", r), stem, (config.in_channels, r, r)))
            first = MBConv(config.stem_channels, BlockSpec(3, 1, config.first_block_channels, 1))
            jobs.append((_lut_key("first", r), first, (config.stem_channels, h, h)))
            cin = config.first_block_channels
            for s, (cout, stride) in enumerate(
                zip(config.stage_channels, config.stage_strides, strict=True)
            ):
                for is_first in (1, 0):
                    c_in = cin if is_first else cout
                    st = stride if is_first else 1
                    size = h if is_first else _out(h, stride)
                    for k in config.kernel_sizes:
                        for e in config.expand_ratios:
                            block = MBConv(c_in, BlockSpec(k, e, cout, st))
                            key = _lut_key("block", s, is_first, k, e, r)
                            jobs.append((key, block, (c_in, size, size)))
                h = _out(h, stride)
                cin = cout
            head = nn.Sequential(
                nn.Conv2d(cin, config.head_channels, 1, bias=False),
                nn.BatchNorm2d(config.head_channels),
                nn.ReLU6(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(config.head_channels, config.num_classes),
            )
            jobs.append((_lut_key("head", r), head, (cin, h, h)))
        entries: dict[str, float] = {}
        torch.manual_seed(0)
        with torch.inference_mode():
            for i, (key, module, shape) in enumerate(jobs):
                x = torch.randn(1, *shape)
                entries[key] = measure_latency(
                    module.eval(), x, warmup=warmup, repeats=repeats, threads=threads
                ).median_ms
                if progress:
                    progress(i + 1, len(jobs))
        return cls(config, tuple(int(r) for r in resolutions), entries, threads)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "resolutions": list(self.resolutions),
            "threads": self.threads,
            "entries": self.entries,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatencyTable:
        return cls(
            OFAMobileNetV3Config.from_dict(d["config"]),
            tuple(d["resolutions"]),
            {k: float(v) for k, v in d["entries"].items()},
            int(d.get("threads", 1)),
            dict(d.get("meta", {})),
        )


def measure_arch_latency(
    config: OFAMobileNetV3Config, arch: Arch, *, repeats: int = 30, threads: int = 1
) -> float:
    """Measured median latency (ms, batch 1) of the whole static sub-network."""
    net = build_static_subnet(subnet_spec(config, arch)).eval()
    r = int(arch["r"])
    with torch.inference_mode():
        return measure_latency(
            net, torch.randn(1, config.in_channels, r, r), repeats=repeats, threads=threads
        ).median_ms


def validate_latency_table(
    table: LatencyTable, archs: Sequence[Arch], *, repeats: int = 30
) -> dict[str, float]:
    """How well the table's sums predict measured whole-network latencies.

    Returns ``mean_abs_pct_error``, ``max_abs_pct_error`` and ``spearman`` (rank correlation of
    predicted and measured latency) over ``archs``, and the seconds it took.
    """
    from common.ofa.predictor import rank_correlation

    t0 = time.perf_counter()
    pred = [table.predict(a) for a in archs]
    meas = [
        measure_arch_latency(table.config, a, repeats=repeats, threads=table.threads) for a in archs
    ]
    errs = [abs(p - m) / m * 100.0 for p, m in zip(pred, meas, strict=True)]
    return {
        "mean_abs_pct_error": float(np.mean(errs)),
        "max_abs_pct_error": float(np.max(errs)),
        "spearman": rank_correlation(pred, meas),
        "seconds": time.perf_counter() - t0,
        "n": float(len(archs)),
    }


def random_archs(config: OFAMobileNetV3Config, n: int, *, seed: int) -> list[Arch]:
    """``n`` uniformly random archs of the whole space (resolutions included)."""
    from common.ofa.training import full_space

    rng = random.Random(seed)
    space = full_space(config)
    return [space.sample(config, rng) for _ in range(n)]
