"""Stage ``mcunet_table3``: MCUNet Table 3, the co-design under latency limits.

The paper's rows are the scaled MobileNetV2 with CMSIS-NN (and TF-Lite Micro's memory), the same
family with TinyEngine, and MCUNet (TinyNAS + TinyEngine); its columns no limit, 5 FPS and
10 FPS on the STM32F746 at 216 MHz. Here the rows are ``tinynas.table3.family`` under Table 2's
two engines (the reference kernels with TF-Lite Micro's plan, and our engine) and TinyNAS under
ours; the columns no limit (Table 2's cells, read from ``--table2``) and each of
``tinynas.table3.limits``.

Latency is an *estimate* from exact counts: the instructions one inference retires on the
emulated Cortex-M7 (:mod:`common.tinynas.latency`), at an assumed IPC of 1 and 216 MHz; a limit
in ms is a limit on instructions, so whether a network meets it is decided exactly.

* **A family's cell** at a limit is its member with the most MACs that fits the engine's memory
  (the co-design stage's measurements, ``--codesign``) and whose count under that engine's
  kernels is within the limit: our engine's code with every convolution's fastest variant, or
  the reference kernels. Members are measured with their initial weights (a count depends on
  the weights only through the requantisation path, see :mod:`common.ofa.mcu_cost`).
* **TinyNAS's cell** is a new search of the supernet trained by ``mcunet_tinynas``
  (``--searched``) with the limit as one more constraint, predicted by a per-operator
  instruction table measured on that supernet (:class:`common.ofa.mcu_cost.McuInstructionTable`);
  the winner is measured exactly and searched again under a tightened limit when over.
* Every cell is trained from scratch exactly as Table 2's (its schedule, seeds and images); a
  cell whose network is one of Table 2's takes that training's accuracies, and cells with the
  same network share one training. The seed spread, pooled over Table 2's and these trainings,
  gives each difference its standard error.

Writes ``<out>/results.json`` and the metrics ``table3/...``; resumes after an interruption (the
exact counts are recorded as they are measured, the searches and trainings checkpoint).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from common.checkpoint import CheckpointError, load_model
from common.data.checksums import sha256_file
from common.fingerprint import data_digest, source_digest
from common.io import write_json
from common.mcu import toolchain
from common.mcu.codegen import CodegenOptions
from common.models.mbconv import MBConvNetSpec, build_mbconv_net
from common.ofa.efficiency import random_archs, shapes_graph
from common.ofa.mcu_cost import (
    MEASURE_OPTIONS,
    McuInstructionTable,
    McuMeasurement,
    arch_signatures,
    measure_subnet_instructions,
    validate_mcu_table,
)
from common.ofa.search import SearchError
from common.ofa.supernet import OFAMobileNetV3, OFAMobileNetV3Config, subnet_spec
from common.ofa.training import calibration_batches
from common.records import RecordLog
from common.seed import derive_seed, seed_everything
from common.stage import StageContext
from common.tinynas.latency import (
    graph_features,
    instructions_for_ms,
    largest_within,
    measure_instructions,
    ms_estimate,
)
from common.tinynas.search import EngineConstraints
from common.tinynas.space import MemoryBudget
from papers.mcunet.codesign import family_spec
from papers.mcunet.config import ENGINES, Table3Config, TinyNASConfig, limit_label
from papers.mcunet.stage import mcunet_stage, stage_result, tinynas_block
from papers.mcunet.table2 import SEARCHED_FAMILY, Cell, pooled_sd, table2_data, train_cell
from papers.mcunet.tinynas import SUPERNET_FILE, evolution, holdout_oracle, load_data

NO_LIMIT = "none"  # the no-limit column (Table 2's cells)
# each engine's code when counting instructions: our engine with every convolution's fastest
# variant (the instruction table's setting), the reference kernels for TF-Lite Micro's row
CODEGEN = {"tflm": CodegenOptions(kernels="reference"), "ours": MEASURE_OPTIONS}
ROWS = ("tflm", "ours", SEARCHED_FAMILY)  # the table's rows: the family per engine, TinyNAS
PAPER_ROWS = {"tflm": "S-MbV2 + CMSIS", "ours": "S-MbV2 + TinyEngine", SEARCHED_FAMILY: "MCUNet"}


def table3_config(ctx: StageContext) -> tuple[TinyNASConfig, Table3Config]:
    return tinynas_block(ctx, "table3")


def read_inputs(codesign: Path, searched: Path, table2: Path, family: str) -> dict[str, Any]:
    """What the stage builds on: the family's members and the budget (co-design), the search's
    winner and space (TinyNAS), and Table 2's cells and noise."""
    with stage_result(codesign, "mcunet_codesign", "co-design") as r:
        fam = r["families"][family]
        members = {e: fam[e]["members"] for e in ENGINES}
        budget = MemoryBudget(**r["budget"])
    with stage_result(searched, "mcunet_tinynas", "TinyNAS search") as r:
        search = {"arch": r["arch"], "spec": r["spec"], "resolution": int(r["space"]["resolution"])}
        search["budget"] = MemoryBudget(**r["budget"])
    with stage_result(table2, "mcunet_table2", "Table 2") as r:
        cells2 = {k: r["cells"][k] for k in (f"{family}/tflm", f"{family}/ours", "tinynas/ours")}
        for c in cells2.values():
            c["accuracies"] = [float(a) for a in c["accuracies"]]
        noise2 = {"seed_sd": r["noise"]["seed_sd"], "df": int(r["noise"]["df"])}
        seeds2 = [int(s) for s in r["seeds"]]
    return {
        "members": members,
        "budget": budget,
        "search": search,
        "table2": cells2,
        "noise2": noise2,
        "seeds2": seeds2,
    }


def latency_space(config: OFAMobileNetV3Config, resolutions: list[int]) -> OFAMobileNetV3Config:
    """The supernet's space with every grid resolution up to its own: under a latency limit the
    search may also lower the input resolution (the supernet trained at its own only; a
    sub-network at a lower one is scored with its batch norm recalibrated there)."""
    top = config.resolution_range[-1]
    rs = sorted({int(r) for r in resolutions if r <= top} | {top})
    step = min((b - a for a, b in itertools.pairwise(rs)), default=config.resolution_step)
    if any((r - rs[0]) % step for r in rs):  # not one arithmetic range: keep the own resolution
        return config
    return dataclasses.replace(config, resolution_range=(rs[0], top), resolution_step=step)


def covering_within(
    config: OFAMobileNetV3Config, n: int, within: EngineConstraints, seed: int, pool: int = 50
) -> list[dict[str, Any]]:
    """``n`` archs within the search's memory budget that cover many operator signatures
    (greedy, as :func:`common.ofa.mcu_cost.covering_archs`, from ``pool * n`` random archs):
    the table needs the operators the search can meet, and an arch over the flash budget can
    be too large to link even for the emulator's larger memories."""
    candidates = [a for a in random_archs(config, pool * n, seed=seed) if within.satisfied(a)]
    sigs = [{sig for sig, _ in arch_signatures(config, a)} for a in candidates]
    covered: set[str] = set()
    chosen = []
    for _ in range(min(n, len(candidates))):
        best = max(range(len(candidates)), key=lambda i: len(sigs[i] - covered))
        chosen.append(candidates[best])
        covered |= sigs[best]
        sigs[best] = set()
    return chosen


def load_supernet(directory: Path) -> OFAMobileNetV3:
    def build(arch: dict[str, Any]) -> OFAMobileNetV3:
        return OFAMobileNetV3(OFAMobileNetV3Config.from_dict(arch["config"]))

    net, _ = load_model(Path(directory) / SUPERNET_FILE, build=build)
    return net  # type: ignore[return-value]


class Measured:
    """Exact measurements by key, recorded as they are made (an interrupted stage keeps them)."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.log = RecordLog(path, fingerprint)
        try:
            self.known: dict[str, Any] = {str(r["key"]): r["value"] for r in self.log.records}
        except (KeyError, TypeError):
            raise CheckpointError(
                f"{path} holds a record that is not a measurement (key and value): delete the "
                "file to measure again"
            ) from None

    def get(self, key: str, measure: Any) -> Any:
        if key not in self.known:
            self.known[key] = measure()
            self.log.append({"key": key, "value": self.known[key]})
        return self.known[key]


def _fingerprint(t: Table3Config, data: Any, *files: Path) -> str:
    """What the recorded counts depend on: the settings, the code, the calibration data and
    the input files (the supernet, the co-design results)."""
    h = hashlib.sha256(json.dumps(dataclasses.asdict(t), sort_keys=True).encode())
    h.update(source_digest().encode())
    h.update(json.dumps(data_digest(data), sort_keys=True).encode())
    for f in files:
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def gains(table: dict[str, dict[str, Any]], columns: list[str], sd: float) -> dict[str, Any]:
    """Per column: TinyNAS over the family with our engine (``search``), our engine over the
    reference kernels for the family (``engine``) and TinyNAS over the family with the reference
    kernels (``total``), each with its standard error and ``gain - 2 SE``."""
    out: dict[str, Any] = {}
    for col in columns:
        for name, (a, b) in {
            "search": (SEARCHED_FAMILY, "ours"),
            "engine": ("ours", "tflm"),
            "total": (SEARCHED_FAMILY, "tflm"),
        }.items():
            ca, cb = table[col][a], table[col][b]
            if not ca["accuracies"] or not cb["accuracies"]:
                continue
            gain = ca["mean"] - cb["mean"]
            if math.isnan(sd):
                out[f"{col}/{name}"] = {"gain": gain, "se": None, "lcb2": None}
                continue
            se = sd * math.sqrt(1 / len(ca["accuracies"]) + 1 / len(cb["accuracies"]))
            out[f"{col}/{name}"] = {"gain": gain, "se": se, "lcb2": gain - 2 * se}
    return out


def _cell(name: str, resolution: int | None, spec: MBConvNetSpec | None, **extra: Any) -> dict:
    return {
        "name": name,
        "resolution": resolution,
        "spec": spec,
        "accuracies": [],
        "seeds": [],
        **extra,
    }


@mcunet_stage(
    name="mcunet_table3",
    flags=["codesign", "searched", "table2", "data", "out", "checkpoints", "metrics"],
    track=lambda ctx: table3_config(ctx)[1],
)
def main(ctx: StageContext) -> None:
    args = ctx.args
    cfg, t = table3_config(ctx)
    t2, s = cfg.table2, cfg.search
    assert t2 is not None and s is not None
    t0 = time.perf_counter()
    toolchain.require((*toolchain.BUILD_TOOLS, "arm-none-eabi-addr2line"))
    inputs = read_inputs(args.codesign, args.searched, args.table2, t.family)
    budget: MemoryBudget = inputs["budget"]
    train, test = table2_data(t2, args.data)
    calib = calibration_batches(
        train, images=t.calibration_images, batch_size=t.calibration_images, seed=t2.data_seed
    )
    supernet = load_supernet(args.searched)
    config = latency_space(supernet.config, cfg.grid.resolutions)
    measured = Measured(
        args.checkpoints / "measured.jsonl",
        _fingerprint(t, train, args.searched / SUPERNET_FILE, args.codesign / "results.json"),
    )
    spec_of = family_spec(t.family, train.num_classes)
    features: dict[str, tuple[float, float]] = {}

    def member_count(engine: str, m: dict[str, Any]) -> int:
        def measure() -> int:
            # initial weights, seeded per member: a count depends on the weights only through
            # the requantisation path
            seed_everything(derive_seed(t2.data_seed, "table3", m["name"]))
            net = build_mbconv_net(spec_of(float(m["width_mult"])))
            return measure_instructions(net, int(m["resolution"]), calib, CODEGEN[engine])

        return int(measured.get(f"{t.family}/{engine}/{m['name']}", measure))

    def member_features(m: dict[str, Any]) -> tuple[float, float]:
        if m["name"] not in features:
            g = shapes_graph(spec_of(float(m["width_mult"])), int(m["resolution"]))
            features[m["name"]] = graph_features(g)
        return features[m["name"]]

    def arch_measurement(arch: dict[str, Any]) -> McuMeasurement:
        key = "tinynas/" + json.dumps(arch, sort_keys=True)
        return McuMeasurement.from_dict(
            measured.get(key, lambda: measure_subnet_instructions(supernet, arch, calib).to_dict())
        )

    # ------------------------------------------------------------ the limits
    searched_arch = inputs["search"]["arch"]
    reference = arch_measurement(searched_arch).instructions  # no-limit TinyNAS, our engine
    limits = {
        k: (v * reference if t.unit == "fraction" else instructions_for_ms(v))
        for k, v in t.limits.items()
    }
    # ------------------------------------------------------------ the instruction table
    memory = cfg.memory_models()["ours"]
    search_budget: MemoryBudget = inputs["search"]["budget"]
    within = EngineConstraints(config, search_budget, memory)  # the archs the search may return
    build_archs = covering_within(
        config, t.table_archs, within, derive_seed(s.seed, "table3/build")
    )
    held_archs = [
        a
        for a in random_archs(
            config, 50 * t.validate_archs, seed=derive_seed(s.seed, "table3/check")
        )
        if within.satisfied(a)
    ][: t.validate_archs]
    ms = [
        arch_measurement(a)
        for a in tqdm([*build_archs, *held_archs], desc="Table 3 instruction table", leave=False)
    ]
    itable = McuInstructionTable.build(config, ms[: len(build_archs)])
    check = validate_mcu_table(itable, ms[len(build_archs) :]) if held_archs else None

    # ------------------------------------------------------------ the cells
    columns = [NO_LIMIT, *limits]
    table: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in columns}
    members = {
        e: [m for m in inputs["members"][e] if budget.fits(m["sram_bytes"], m["flash_bytes"])]
        for e in ENGINES
    }
    for row, key2 in (("tflm", f"{t.family}/tflm"), ("ours", f"{t.family}/ours")):
        c2 = inputs["table2"][key2]
        m = next((m for m in members[row] if m["name"] == c2["name"]), None)
        cell = _cell(c2["name"], c2["resolution"], None, trained="table2")
        if m is not None:
            cell.update(member_cell(m, member_count(row, m), spec_of))
        cell["accuracies"], cell["seeds"] = c2["accuracies"], c2["seeds"]
        table[NO_LIMIT][row] = cell
    c2 = inputs["table2"]["tinynas/ours"]
    table[NO_LIMIT][SEARCHED_FAMILY] = {
        **_cell(c2["name"], c2["resolution"], None, trained="table2"),
        **arch_cell(config, searched_arch, reference),
        "accuracies": c2["accuracies"],
        "seeds": c2["seeds"],
    }
    oracle = holdout_oracle(s, supernet, *load_data(s, args.data)[:2])
    for key, lim in limits.items():
        for engine in ENGINES:
            found = largest_within(
                members[engine],
                lim,
                macs=lambda m: float(m["macs"]),
                features=member_features,
                measure=lambda m, e=engine: member_count(e, m),
                probes=t.probes,
                margin=t.margin,
            )
            m = found.member
            cell = _cell(m["name"] if m else "none within the limit", None, None, trained="here")
            if m is not None:
                cell.update(member_cell(m, member_count(engine, m), spec_of))
            cell["skipped"] = [members[engine][i]["name"] for i in found.skipped]
            table[key][engine] = cell
        # TinyNAS: the search again, the limit (predicted by the table) one more constraint
        target, attempts, result = lim, [], None
        for attempt in range(t.retries + 1):
            constraints = EngineConstraints(
                config, search_budget, memory, extra={"instructions": (itable.predict, target)}
            )
            try:
                result = evolution(s, config, oracle, constraints).run(
                    checkpoint=args.checkpoints / f"search_{key}_{attempt}.json",
                    fingerprint_extra={
                        "supernet": sha256_file(args.searched / SUPERNET_FILE),
                        "target": target,
                        "table": json.dumps(itable.entries, sort_keys=True),
                    },
                )
            except SearchError:  # even the smallest sub-network is over the (tightened) limit
                attempts.append({"target": target, "predicted": None, "exact": None})
                result = None
                break
            exact = arch_measurement(result.arch).instructions
            attempts.append(
                {"target": target, "predicted": itable.predict(result.arch), "exact": exact}
            )
            if exact <= lim:
                break
            target *= lim / exact * 0.99  # tighten by the overshoot
        ok = result is not None and attempts[-1]["exact"] <= lim
        cell = _cell(
            f"searched-{key}" if ok else "none within the limit found",
            None,
            None,
            trained="here",
            attempts=attempts,
            holdout_accuracy=result.predicted_accuracy if ok else None,
        )
        if ok:
            cell.update(arch_cell(config, result.arch, attempts[-1]["exact"]))
        table[key][SEARCHED_FAMILY] = cell

    # ------------------------------------------------------------ training
    # a network trained before (Table 2's, or another cell's here) is not trained again
    origin: dict[str, tuple[str, str]] = {
        _network_key(c): (NO_LIMIT, row) for row, c in table[NO_LIMIT].items() if c.get("spec")
    }
    todo = {
        _network_key(table[k][r])
        for k in limits
        for r in ROWS
        if table[k][r].get("spec") is not None
    } - set(origin)
    bar = tqdm(total=len(todo) * len(t2.seeds), desc="Table 3 trainings", leave=False)
    trained_here: list[list[float]] = []
    for key in limits:
        for row in ROWS:
            cell = table[key][row]
            if cell.get("spec") is None:
                continue
            k = _network_key(cell)
            if k in origin:
                first = table[origin[k][0]][origin[k][1]]
                cell["accuracies"], cell["seeds"] = list(first["accuracies"]), list(first["seeds"])
                cell["trained"] = "as " + "/".join(origin[k])
                continue
            c = Cell(
                key,
                row,
                MBConvNetSpec.from_dict(cell["spec"]),
                int(cell["resolution"]),
                cell["name"],
            )
            for seed in t2.seeds:
                r = train_cell(c, seed, t2, train, test, args.checkpoints)
                cell["accuracies"].append(r["accuracy"])
                cell["seeds"].append(seed)
                bar.update(1)
            trained_here.append(cell["accuracies"])
            origin[k] = (key, row)
    bar.close()
    for col in columns:
        for cell in table[col].values():
            cell["mean"] = statistics.fmean(cell["accuracies"]) if cell["accuracies"] else None
    noise2 = inputs["noise2"]
    sd, df = pooled_sd(trained_here, prior=(noise2["seed_sd"], noise2["df"]))
    diffs = gains(table, columns, sd)

    # ------------------------------------------------------------ outputs
    metrics: dict[str, float] = {
        "table3/reference_ms": ms_estimate(reference),
        "table3/instruction_table/entries": float(len(itable.entries)),
    }
    if check is not None:
        metrics["table3/instruction_table/mean_rel_error"] = check["mean_rel_error"]
        metrics["table3/instruction_table/max_rel_error"] = check["max_rel_error"]
    for key, lim in limits.items():
        metrics[f"table3/limit_ms/{key}"] = ms_estimate(lim)
    for col in columns:
        for row, cell in table[col].items():
            p = f"table3/{col}/{row}"
            if cell["mean"] is not None:
                metrics[f"{p}/accuracy"] = cell["mean"]
            if cell.get("instructions") is not None:
                metrics[f"{p}/latency_ms"] = cell["latency_ms"]
                metrics[f"{p}/mmacs"] = cell["macs"] / 1e6
    for name, g in diffs.items():
        metrics[f"table3/gain/{name}"] = g["gain"]
        if g["lcb2"] is not None:
            metrics[f"table3/gain/{name}_lcb2"] = g["lcb2"]
    if df:
        metrics["table3/noise/seed_sd"] = sd
    metrics["table3/noise/df"] = float(df)
    metrics["table3/measured_networks"] = float(len(measured.known))
    metrics["time/table3"] = time.perf_counter() - t0
    results = {
        "family": t.family,
        "engines": ENGINES,
        "unit": t.unit,
        "reference": {"instructions": reference, "latency_ms": ms_estimate(reference)},
        "limits": {
            k: {"setting": t.limits[k], "instructions": lim, "latency_ms": ms_estimate(lim)}
            for k, lim in limits.items()
        },
        "columns": columns,
        "cells": table,
        "instruction_table": {
            "entries": len(itable.entries),
            "build_archs": len(build_archs),
            "validation": check,
        },
        "noise": {"seed_sd": sd if df else None, "df": df},
        "gains": diffs,
        "seeds": list(t2.seeds),
    }
    write_json(results, args.out / "results.json")
    ctx.save_config(t, args.out / "config.json")
    shown = "; ".join(
        f"{limit_label(col)}: "
        + ", ".join(
            f"{row} {c['mean']:.1f}%" if c["mean"] is not None else f"{row} -"
            for row, c in table[col].items()
        )
        for col in columns
    )
    ctx.finish(metrics, summary=f"Table 3 ({len(t2.seeds)} seeds) {shown} -> {args.out}")


def _network_key(cell: dict[str, Any]) -> str:
    return json.dumps([cell["spec"], cell["resolution"]], sort_keys=True)


def member_cell(m: dict[str, Any], instructions: int, spec_of: Any) -> dict[str, Any]:
    """A family member's cell entries (its spec as JSON, size, exact count and latency)."""
    return {
        "name": m["name"],
        "resolution": int(m["resolution"]),
        "spec": spec_of(float(m["width_mult"])).to_dict(),
        "macs": int(m["macs"]),
        "sram_bytes": int(m["sram_bytes"]),
        "flash_bytes": int(m["flash_bytes"]),
        "instructions": int(instructions),
        "latency_ms": ms_estimate(instructions),
    }


def arch_cell(config: OFAMobileNetV3Config, arch: dict[str, Any], instructions: int) -> dict:
    """A searched network's cell entries."""
    spec = subnet_spec(config, arch)
    r = int(arch["r"])
    return {
        "resolution": r,
        "spec": spec.to_dict(),
        "arch": arch,
        "macs": int(shapes_graph(spec, r).macs()),
        "instructions": int(instructions),
        "latency_ms": ms_estimate(instructions),
    }


if __name__ == "__main__":
    raise SystemExit(main())
