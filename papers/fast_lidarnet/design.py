"""Stage ``fast_lidarnet_design``: hardware-aware design of the sparse network, for this CPU.

Fast-LiDARNet's abstract credits part of its speed to "hardware-aware model design"; what it
searched could not be read. Here the two knobs that set a sparse network's cost, the voxel size
(how many sites are active) and the width (channels per site), are chosen by *measured* latency:
every candidate of ``design.voxel_sizes`` x ``design.widths`` (the rest of ``models.sparse3d``
unchanged, untrained weights: latency does not depend on them) is timed at batch 1 on
``design.frames`` validation scans, end to end from the points (voxelisation included). The
chosen one is the finest voxel size, then the widest network, whose median latency is within
``design.budget_ms``; when none is, the fastest. MACs are counted on the active sites.

Output: ``design.json`` (every candidate's latency and MACs, and the choice), which the training
stage of ``sparse3d`` reads when ``models.sparse3d.designed`` is true.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path

import torch

from common.stage import StageContext, stage
from papers.fast_lidarnet.config import FastLidarnetProfile


def time_model(
    model: torch.nn.Module,
    frames: list,
    *,
    warmup: int,
    repeats: int,
    threads: int | None = None,
    macs: bool = True,
) -> dict:
    """Batch-1 latency (ms: the median over ``frames`` of each frame's median of ``repeats``),
    end to end from the points, and the mean MACs over the frames."""
    from common.measure import count_macs, measure_latency
    from papers.fast_lidarnet.models import WithPoints

    model.eval()
    lat, counts = [], []
    for batch in frames:
        bound = WithPoints(model, batch.points)
        lat.append(measure_latency(bound, batch.maps, warmup=warmup, repeats=repeats,
                                   threads=threads).median_ms)  # fmt: skip
        if macs:
            counts.append(count_macs(bound, batch.maps).total)
    out = {"latency_ms": statistics.median(lat)}
    if macs:
        out["macs"] = float(statistics.fmean(counts))
    return out


@stage(
    section="fast_lidarnet",
    name="fast_lidarnet_design",
    config=FastLidarnetProfile,
    flags=["data", "out", "metrics"],
    track=lambda ctx: ctx.config.design,
)
def main(ctx: StageContext) -> None:
    """Choose the sparse network's voxel size and width by measured CPU latency."""
    from tqdm.auto import tqdm

    from papers.fast_lidarnet.data import DriveFrames
    from papers.fast_lidarnet.models import build_model
    from papers.fast_lidarnet.train import geometry

    profile, out = ctx.config, Path(ctx.args.out)
    design, base = profile.design, profile.models["sparse3d"]
    val = DriveFrames.load(ctx.args.data, "val")
    step = max(len(val) // design.frames, 1)
    frames = [val[i] for i in range(0, len(val), step)][: design.frames]
    geo = geometry(profile)
    torch.manual_seed(0)
    candidates = []
    grid = [(v, w) for v in design.voxel_sizes for w in design.widths]
    for voxel, width in tqdm(grid, desc="design", unit="candidate"):
        cfg = dataclasses.replace(base, voxel_size=voxel, width=width)
        t = time_model(build_model(cfg, geo), frames, warmup=1, repeats=design.repeats)
        candidates.append({"voxel_size": voxel, "width": width, **t})
    fits = [c for c in candidates if c["latency_ms"] <= design.budget_ms]
    chosen = (
        min(fits, key=lambda c: (c["voxel_size"], -c["width"]))
        if fits
        else min(candidates, key=lambda c: c["latency_ms"])
    )
    out.mkdir(parents=True, exist_ok=True)
    record = {"budget_ms": design.budget_ms, "threads": torch.get_num_threads(),
              "candidates": candidates, "chosen": chosen, "within_budget": bool(fits)}  # fmt: skip
    (out / "design.json").write_text(json.dumps(record, indent=2) + "\n")
    metrics = {
        "design/voxel_size": chosen["voxel_size"],
        "design/width": float(chosen["width"]),
        "design/latency_ms": chosen["latency_ms"],
        "design/gmacs": chosen["macs"] / 1e9,
        "design/candidates": float(len(candidates)),
        "design/within_budget": float(bool(fits)),
        "time/design": ctx.seconds(),
    }
    ctx.finish(metrics, summary=f"chosen voxel {chosen['voxel_size']} m, width {chosen['width']}: "
                                f"{chosen['latency_ms']:.1f} ms (budget {design.budget_ms} ms)")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
