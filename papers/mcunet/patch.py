"""Stage ``mcunet_patch``: MCUNetV2 Table 1's analytic row, MobileNetV2 at 224 px, 4x4 patches.

MCUNetV2 runs the memory-heavy first blocks of MobileNetV2 (width 1.0, 224 px) patch by patch and
reports the int8 peak SRAM falling from 1372 kB (per layer) to 172 kB (per patch) for +10% MACs.
Peak memory and MACs depend only on the architecture, so this row uses the paper's network
(1000 classes) with random weights: the per-layer peak is our TinyEngine plan of the int8 graph,
the per-patch peak :func:`common.mcu.memory.best_patch_plan` restricted to the paper's 4x4 grid.
"""

from __future__ import annotations

import json

import torch

from common.mcu.convert import convert
from common.mcu.memory import best_patch_plan, plan_tflm, plan_tinyengine
from common.models import create_model
from common.stage import StageContext
from papers.mcunet.stage import mcunet_stage


@mcunet_stage(
    name="mcunet_patch",
    flags=["metrics"],
    track=lambda ctx: ctx.config.patch,
    errors=(ValueError,),
)
def main(ctx: StageContext) -> None:
    p = ctx.config.patch
    torch.manual_seed(ctx.config.seed)
    model = create_model("mobilenet_v2", width=p.width, num_classes=p.num_classes).eval()
    calib = torch.randn(2, 3, p.resolution, p.resolution)
    g = convert(model, [calib], name="mobilenet_v2")
    per_layer = plan_tinyengine(g).peak_bytes
    plan = best_patch_plan(g, (p.patches,), p.max_overhead)
    if plan is None:
        raise ValueError(f"no {p.patches}x{p.patches} patch plan within +{p.max_overhead:.0%} MACs")
    metrics = {
        "patch_mbv2/resolution": float(p.resolution),
        "patch_mbv2/width": float(p.width),
        "patch_mbv2/tflm_bytes": float(plan_tflm(g).arena_bytes),
        "patch_mbv2/per_layer_bytes": float(per_layer),
        "patch_mbv2/per_patch_bytes": float(plan.peak_bytes),
        "patch_mbv2/reduction": per_layer / plan.peak_bytes,
        "patch_mbv2/mac_overhead_pct": 100.0 * plan.mac_overhead,
        "patch_mbv2/macs": float(plan.base_macs),
        "patch_mbv2/patches": float(plan.patches),
        "patch_mbv2/n_ops": float(plan.n_ops),
        "patch_mbv2/patch_stage_peak_bytes": float(plan.patch_stage_peak),
        "patch_mbv2/rest_peak_bytes": float(plan.rest_peak),
    }
    ctx.finish(metrics, summary=json.dumps(metrics, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
