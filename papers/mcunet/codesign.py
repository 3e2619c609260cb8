"""Stage ``mcunet_codesign``: MCUNet Table 2's memory half (:mod:`common.tinynas.codesign`).

For the MCU budget ``tinynas.codesign.budget`` (scaled as stage 1 scaled it, read from
``--space``), every member of each baseline family (``tinynas.grid``'s width multipliers x
resolutions) is measured under two engines' memory: TF-Lite Micro's plan with the reference
kernels' code, and our engine's plan with its code. Per family and engine, the largest member
(most MACs) within the budget is the one Table 2 would train. The network TinyNAS searched for
our engine (``--searched``) is measured under both too. No training, no compiler: seconds.

Writes ``<out>/results.json`` (every member under both engines, the chosen ones, the searched
network) and the metrics ``codesign/<family>/<engine>/...``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from common.config import ConfigError
from common.io import write_json
from common.models import MODELS
from common.models.mbconv import MBConvNetSpec
from common.stage import StageContext
from common.tinynas.codesign import family_members, largest_fitting
from papers.mcunet.config import ENGINES, CodesignConfig, TinyNASConfig
from papers.mcunet.stage import mcunet_stage, stage_result, tinynas_block
from papers.mcunet.tinynas import chosen_space


def codesign_config(ctx: StageContext) -> tuple[TinyNASConfig, CodesignConfig]:
    return tinynas_block(ctx, "codesign")


def family_spec(name: str, num_classes: int):
    """``width -> MBConvNetSpec`` of the registered family ``name``."""

    def spec_of(width: float) -> MBConvNetSpec:
        spec = getattr(MODELS.get(name)(num_classes=num_classes, width=width), "spec", None)
        if not isinstance(spec, MBConvNetSpec):
            raise ConfigError(
                f"tinynas.codesign.families: {name!r} is not an MBConv network (no spec); use "
                "mobilenet_v2, proxyless_mobile or mcunet_style"
            )
        return spec

    return spec_of


def searched_spec(directory: Path, stage_name: str = "mcunet_tinynas") -> tuple[MBConvNetSpec, int]:
    """The network the TinyNAS search found (``stage_name`` wrote ``directory``), and its
    resolution."""
    with stage_result(directory, stage_name, "TinyNAS search") as r:
        return MBConvNetSpec.from_dict(r["spec"]), int(r["space"]["resolution"])


def run(
    cfg: TinyNASConfig, budget: Any, searched: tuple[MBConvNetSpec, int] | None
) -> tuple[dict[str, Any], dict[str, float]]:
    """The stage's work: results (JSON-ready) and metrics."""
    c = cfg.codesign
    assert c is not None
    models = cfg.memory_models()
    num_classes = cfg.space.num_classes
    results: dict[str, Any] = {
        "budget_key": c.budget,
        "budget": {"sram_kb": budget.sram_kb, "flash_kb": budget.flash_kb, "label": budget.label},
        "engines": {k: {"label": ENGINES[k], "code_kb": m.code_kb} for k, m in models.items()},
        "families": {},
    }
    metrics: dict[str, float] = {}
    for family in c.families:
        spec_of = family_spec(family, num_classes)
        entry: dict[str, Any] = {}
        for key, model in models.items():
            members = family_members(
                family, spec_of, cfg.grid.resolutions, cfg.grid.width_mults, model
            )
            best = largest_fitting(members, budget)
            entry[key] = {
                "members": [m.to_dict() for m in members],
                "largest": best.to_dict() if best else None,
                "fitting": sum(m.fits(budget) for m in members),
            }
            p = f"codesign/{family}/{key}"
            metrics[f"{p}/fitting_members"] = float(entry[key]["fitting"])
            if best is not None:
                metrics[f"{p}/mmacs"] = best.macs / 1e6
                metrics[f"{p}/sram_kb"] = best.sram_bytes / 1024
                metrics[f"{p}/flash_kb"] = best.flash_bytes / 1024
                metrics[f"{p}/width_mult"] = best.width_mult
                metrics[f"{p}/resolution"] = float(best.resolution)
        if entry["tflm"]["largest"] and entry["ours"]["largest"]:
            metrics[f"codesign/{family}/mac_ratio"] = (
                entry["ours"]["largest"]["macs"] / entry["tflm"]["largest"]["macs"]
            )
        results["families"][family] = entry
    if searched is not None:
        spec, r = searched
        row: dict[str, Any] = {"resolution": r}
        for key, model in models.items():
            sram, flash = model.measure_spec(spec, r)
            row[key] = {
                "sram_bytes": sram,
                "flash_bytes": flash,
                "fits": budget.fits(sram, flash),
            }
            metrics[f"codesign/tinynas/{key}/sram_kb"] = sram / 1024
            metrics[f"codesign/tinynas/{key}/fits"] = float(budget.fits(sram, flash))
        results["searched"] = row
    return results, metrics


@mcunet_stage(
    name="mcunet_codesign",
    flags=["space", "searched", "out", "metrics"],
    track=lambda ctx: codesign_config(ctx)[1],
)
def main(ctx: StageContext) -> None:
    cfg, c = codesign_config(ctx)
    t0 = time.perf_counter()
    _, _, budget = chosen_space(ctx.args.space, c.budget)
    results, metrics = run(cfg, budget, searched_spec(ctx.args.searched))
    metrics["time/codesign"] = time.perf_counter() - t0
    write_json(results, ctx.args.out / "results.json")
    parts = []
    for family, e in results["families"].items():
        t, o = e["tflm"]["largest"], e["ours"]["largest"]
        parts.append(f"{family}: {t['name'] if t else 'none'} -> {o['name'] if o else 'none'}")
    ctx.finish(
        metrics,
        summary=f"largest member within {budget.sram_kb:.1f} kB SRAM, TF-Lite Micro -> ours: "
        + "; ".join(parts)
        + f" -> {ctx.args.out}",
    )


if __name__ == "__main__":
    raise SystemExit(main())
