"""Stage ``mcunet_space``: TinyNAS stage 1, search-space optimisation (MCUNet Section 3.1, Fig. 3).

Every space of ``tinynas.grid`` (input resolution x width multiplier of MCUNet's skeleton) is
scored on the same random networks (:func:`common.tinynas.space.measure_grid`): MACs, peak SRAM
and flash, under each engine's memory: our engine's TinyEngine-style plan (``ours``) and
TF-Lite Micro's plan with the reference kernels (``tflm``, for Table 2's TinyNAS x TF-Lite Micro
cell). For every MCU of ``tinynas.budgets`` (scaled to our grid when ``tinynas.reference`` is
set), the space whose fitting networks have the largest mean MACs is chosen, per engine. Writes
``<out>/results.json`` (per budget: the budget, and per engine every space's summary, its fitting
MACs for the CDF figure and the choice) and the metrics. No training; minutes at the paper's
grid.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from common.io import write_json
from common.stage import StageContext
from common.tinynas.space import (
    best_space,
    measure_grid,
    scaled_budget,
)
from papers.mcunet.config import TinyNASConfig
from papers.mcunet.stage import mcunet_stage, tinynas_block

ENGINE_ORDER = ("ours", "tflm")  # ours first: its metrics keep stage 1's original names


def tinynas_config(ctx: StageContext) -> TinyNASConfig:
    return tinynas_block(ctx)[0]


def run(cfg: TinyNASConfig, *, progress: bool = True) -> tuple[dict[str, Any], dict[str, float]]:
    """The stage's work: results (JSON-ready) and metrics. The same random networks are measured
    under each engine's memory (:meth:`TinyNASConfig.memory_models`); each MCU's budget is scaled
    once, with our engine's plan, and is the same for both engines (one MCU)."""
    models = cfg.memory_models()
    stats: dict[str, list] = {}
    metrics: dict[str, float] = {}
    for engine in ENGINE_ORDER:
        t0 = time.perf_counter()
        stats[engine] = measure_grid(cfg.space, cfg.grid, models[engine], progress=progress)
        seconds = time.perf_counter() - t0
        n = len(stats[engine]) * cfg.grid.samples
        p = "space" if engine == "ours" else f"space/{engine}"
        metrics[f"{p}/seconds"] = seconds
        metrics[f"{p}/ms_per_network"] = 1e3 * seconds / n
    metrics["time/space"] = sum(metrics[k] for k in ("space/seconds", "space/tflm/seconds"))
    metrics["space/networks"] = float(len(stats["ours"]) * cfg.grid.samples)
    metrics["space/spaces"] = float(len(stats["ours"]))
    results: dict[str, Any] = {"grid": dataclasses.asdict(cfg.grid), "budgets": {}}
    for key, paper_budget in cfg.budgets.items():
        budget, factors = paper_budget, None
        if cfg.reference is not None:
            ref = cfg.reference
            ref_space = dataclasses.replace(cfg.space, num_classes=ref.num_classes)
            ours = (cfg.space, max(cfg.grid.resolutions), max(cfg.grid.width_mults))
            budget, factors = scaled_budget(
                paper_budget, models["ours"], ours, (ref_space, ref.resolution, ref.width_mult)
            )
        entry: dict[str, Any] = {
            "label": paper_budget.label or key,
            "paper": dataclasses.asdict(paper_budget),
            "budget": dataclasses.asdict(budget),
            "factors": factors,
            "engines": {},
        }
        metrics[f"space/{key}/sram_kb"] = budget.sram_kb
        metrics[f"space/{key}/flash_kb"] = budget.flash_kb
        for engine in ENGINE_ORDER:
            best = best_space(stats[engine], budget)
            spaces = [s.summary(budget) for s in stats[engine]]
            entry["engines"][engine] = {
                "best": best.name if best else None,
                "spaces": spaces,
                "fitting_macs": {s.name: s.fitting_macs(budget) for s in stats[engine]},
            }
            p = f"space/{key}" if engine == "ours" else f"space/{key}/{engine}"
            metrics[f"{p}/fitting_spaces"] = float(sum(1 for s in spaces if s["fitting"]))
            if best is not None:
                row = best.summary(budget)
                metrics[f"{p}/best_resolution"] = float(best.resolution)
                metrics[f"{p}/best_width_mult"] = best.width_mult
                metrics[f"{p}/best_mean_mmacs"] = row["mean_macs"] / 1e6
                metrics[f"{p}/best_fit_fraction"] = row["fit_fraction"]
                # the best space against the median space that fits something (mean MACs)
                means = sorted(s["mean_macs"] for s in spaces if s["fitting"])
                metrics[f"{p}/median_mean_mmacs"] = means[len(means) // 2] / 1e6
        results["budgets"][key] = entry
    return results, metrics


@mcunet_stage(name="mcunet_space", flags=["out", "metrics"], track=tinynas_config)
def main(ctx: StageContext) -> None:
    cfg = tinynas_config(ctx)
    results, metrics = run(cfg)
    write_json(results, ctx.args.out / "results.json")
    lines = []
    for key, b in results["budgets"].items():
        best = ", ".join(f"{e} {v['best'] or 'none fits'}" for e, v in b["engines"].items())
        lines.append(
            f"{key}: {b['budget']['sram_kb']:.0f} kB SRAM / {b['budget']['flash_kb']:.0f} kB "
            f"flash -> best space {best}"
        )
    ctx.finish(metrics, summary="; ".join(lines) + f" -> {ctx.args.out}")


if __name__ == "__main__":
    raise SystemExit(main())
