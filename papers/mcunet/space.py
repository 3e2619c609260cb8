"""Stage ``mcunet_space``: TinyNAS stage 1, search-space optimisation (MCUNet Section 3.1, Fig. 3).

Every space of ``tinynas.grid`` (input resolution x width multiplier of MCUNet's skeleton) is
scored on the same random networks (:func:`common.tinynas.space.measure_grid`): MACs, peak SRAM
under our engine's TinyEngine-style memory plan, and flash. For every MCU of
``tinynas.budgets`` (scaled to our grid when ``tinynas.reference`` is set), the space whose
fitting networks have the largest mean MACs is chosen. Writes ``<out>/results.json`` (per budget:
the budget, every space's summary, and every space's fitting MACs for the CDF figure) and the
metrics. No training; a few minutes at the paper's grid.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from common.config import ConfigError
from common.io import write_json
from common.stage import StageContext
from common.tinynas.space import (
    MemoryModel,
    best_space,
    measure_grid,
    scaled_budget,
)
from papers.mcunet.config import TinyNASConfig
from papers.mcunet.stage import mcunet_stage


def tinynas_config(ctx: StageContext) -> TinyNASConfig:
    cfg = ctx.config.tinynas
    if cfg is None:
        raise ConfigError(
            f"papers/mcunet/params.yaml: {ctx.profile}.tinynas is missing: add the block "
            "(see the default profile)"
        )
    return cfg


def run(cfg: TinyNASConfig, *, progress: bool = True) -> tuple[dict[str, Any], dict[str, float]]:
    """The stage's work: results (JSON-ready) and metrics."""
    t0 = time.perf_counter()
    model = MemoryModel(code_kb=cfg.code_kb)
    stats = measure_grid(cfg.space, cfg.grid, model, progress=progress)
    seconds = time.perf_counter() - t0
    n = len(stats) * cfg.grid.samples
    metrics: dict[str, float] = {
        "space/seconds": seconds,
        "space/networks": float(n),
        "space/ms_per_network": 1e3 * seconds / n,
        "space/spaces": float(len(stats)),
    }
    results: dict[str, Any] = {"grid": dataclasses.asdict(cfg.grid), "budgets": {}}
    for key, paper_budget in cfg.budgets.items():
        budget, factors = paper_budget, None
        if cfg.reference is not None:
            ref = cfg.reference
            ref_space = dataclasses.replace(cfg.space, num_classes=ref.num_classes)
            ours = (cfg.space, max(cfg.grid.resolutions), max(cfg.grid.width_mults))
            budget, factors = scaled_budget(
                paper_budget, model, ours, (ref_space, ref.resolution, ref.width_mult)
            )
        best = best_space(stats, budget)
        spaces = [s.summary(budget) for s in stats]
        results["budgets"][key] = {
            "label": paper_budget.label or key,
            "paper": dataclasses.asdict(paper_budget),
            "budget": dataclasses.asdict(budget),
            "factors": factors,
            "best": best.name if best else None,
            "spaces": spaces,
            "fitting_macs": {s.name: s.fitting_macs(budget) for s in stats},
        }
        p = f"space/{key}"
        metrics[f"{p}/sram_kb"] = budget.sram_kb
        metrics[f"{p}/flash_kb"] = budget.flash_kb
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
    return results, metrics


@mcunet_stage(name="mcunet_space", flags=["out", "metrics"], track=tinynas_config)
def main(ctx: StageContext) -> None:
    cfg = tinynas_config(ctx)
    results, metrics = run(cfg)
    write_json(results, ctx.args.out / "results.json")
    lines = []
    for key, b in results["budgets"].items():
        lines.append(
            f"{key}: {b['budget']['sram_kb']:.0f} kB SRAM / {b['budget']['flash_kb']:.0f} kB "
            f"flash -> best space {b['best'] or 'none fits'}"
        )
    ctx.finish(metrics, summary="; ".join(lines) + f" -> {ctx.args.out}")


if __name__ == "__main__":
    raise SystemExit(main())
