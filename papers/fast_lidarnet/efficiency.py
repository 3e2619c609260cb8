"""Stage ``fast_lidarnet_efficiency``: MACs, CPU latency and frames per second of every trained
network, and Fast-LiDARNet's efficiency ratios over the two baselines.

Figure 1 of the paper states "efficiency gains over 2D ResNet 6.2x, 3D MinkNet 89x" without
saying whether the ratio is of computation or of measured time, nor on which device (the paper
reports 11 FPS on an NVIDIA Jetson AGX Xavier). So both are computed here, separately:

* **MACs** of one forward pass at batch 1, counted by :func:`common.measure.count_macs` on the
  operations actually executed: a sparse convolution's matrix products cover only the active
  sites' pairs, a dense convolution every site. Averaged over ``efficiency.frames`` test scans
  (the sparse network's cost depends on the scan).
* **Latency** on this CPU at batch 1, end to end from the raw points (voxelisation or
  rasterisation included), the median over the same scans of each scan's median; frames per
  second are ``1000 / latency``.

The ratios compare the networks at the same input resolution (the sparse network's voxel size):
where a baseline was trained on coarser voxels (the default profile's dense 3D network, which
2 CPU cores cannot train at the fine grid in the time budget), an untrained copy at the sparse
network's voxel size is measured for the ratio (cost does not depend on the weights); the trained
one's own cost is reported beside it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from common.stage import STAGE_FLAGS, StageContext, stage
from papers.fast_lidarnet.config import FastLidarnetProfile

FLAGS = {
    **STAGE_FLAGS,
    "models": {
        "type": Path,
        "required": True,
        "help": "runs/fast_lidarnet/train (one folder per model)",
    },
}
BASELINES = ("resnet2d", "dense3d")


@stage(
    section="fast_lidarnet",
    name="fast_lidarnet_efficiency",
    config=FastLidarnetProfile,
    flags=["models", "data", "metrics"],
    catalogue=FLAGS,
    track=lambda ctx: ctx.config.efficiency,
)
def main(ctx: StageContext) -> None:
    """MACs, latency and FPS of every network; the ratios over the baselines."""
    import dataclasses

    from common.sparse import SparseConv3d
    from papers.fast_lidarnet.data import DriveFrames
    from papers.fast_lidarnet.design import time_model
    from papers.fast_lidarnet.models import build_model
    from papers.fast_lidarnet.train import load_network

    profile, cfg = ctx.config, ctx.config.efficiency
    test = DriveFrames.load(ctx.args.data, "test")
    stride = max(len(test) // cfg.frames, 1)
    frames = [test[i] for i in range(0, len(test), stride)][: cfg.frames]
    timing = {"warmup": cfg.warmup, "repeats": cfg.repeats, "threads": cfg.threads}
    metrics: dict[str, float] = {}
    nets = {
        n: load_network(Path(ctx.args.models) / n / "model.safetensors") for n in profile.models
    }
    for name, model in nets.items():
        t = time_model(model, frames, **timing)
        metrics[f"{name}/gmacs"] = t["macs"] / 1e9
        metrics[f"{name}/latency_ms"] = t["latency_ms"]
        metrics[f"{name}/fps"] = 1000.0 / t["latency_ms"]
        print(f"{name}: {metrics[f'{name}/gmacs']:.3f} GMACs, {t['latency_ms']:.1f} ms")
    if "sparse3d" in nets:
        sparse = nets["sparse3d"]
        # The kernel optimisation alone: the same trained network with the naive sparse kernels.
        for module in sparse.modules():
            if isinstance(module, SparseConv3d):
                module.impl = "naive"
        naive = time_model(sparse, frames, warmup=1, repeats=max(cfg.repeats // 2, 1),
                           threads=cfg.threads, macs=False)  # fmt: skip
        metrics["sparse3d/latency_naive_ms"] = naive["latency_ms"]
        metrics["ratio/latency_naive_kernels"] = (
            naive["latency_ms"] / metrics["sparse3d/latency_ms"]
        )
        voxel = sparse.cfg.voxel_size
        for base in BASELINES:
            if base not in nets:
                continue
            # Cost at the sparse network's voxel size (the same input resolution): architecture
            # and latency do not depend on the weights, so an untrained copy is timed where the
            # trained baseline uses coarser voxels (what 2 CPU cores could train).
            if nets[base].cfg.voxel_size != voxel:
                matched = build_model(dataclasses.replace(nets[base].cfg, voxel_size=voxel),
                                      nets[base].geo)  # fmt: skip
                t = time_model(matched, frames, **timing)
                gmacs, ms = t["macs"] / 1e9, t["latency_ms"]
            else:
                gmacs, ms = metrics[f"{base}/gmacs"], metrics[f"{base}/latency_ms"]
            metrics[f"{base}/matched_gmacs"] = gmacs
            metrics[f"{base}/matched_latency_ms"] = ms
            metrics[f"{base}/matched_voxel_size"] = voxel
            metrics[f"ratio/macs_{base}"] = gmacs / metrics["sparse3d/gmacs"]
            metrics[f"ratio/latency_{base}"] = ms / metrics["sparse3d/latency_ms"]
            print(f"{base} at {voxel:g} m voxels: {gmacs:.3f} GMACs, {ms:.1f} ms")
        if "resnet2d" in nets and "dense3d" in nets:
            # The press article's "3D models need 14x the computation of their 2D counterpart".
            metrics["ratio/macs_dense3d_over_resnet2d"] = (
                metrics["dense3d/matched_gmacs"] / metrics["resnet2d/matched_gmacs"]
            )
    metrics["efficiency/threads"] = float(cfg.threads or torch.get_num_threads())
    metrics["time/efficiency"] = ctx.seconds()
    ctx.finish(metrics)


if __name__ == "__main__":
    raise SystemExit(main())
