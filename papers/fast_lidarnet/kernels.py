"""Stage ``fast_lidarnet_kernels``: the "sparse convolution kernel optimization" half of
Fast-LiDARNet, measured on this CPU.

The same stack of sparse convolutions (``kernels.layers`` submanifold 3x3x3 layers and one
strided layer, ``kernels.channels`` channels, random weights) runs on ``kernels.frames``
validation scans voxelised at ``kernels.voxel_size`` (:func:`common.sparse.bench.benchmark_layers`):

* ``naive``: what a first implementation does: a kernel map built with a Python dictionary in
  every layer, one gather -> matmul -> scatter per kernel offset;
* ``reuse``: the kernel map hashed with vectorised sorting and searching, and built once per
  stride, then reused by every layer at that stride (TorchSparse's kernel-map reuse);
* ``optimized``: reuse + the fused gather / grouped matrix multiplication of every offset at once
  (:mod:`common.sparse.conv` explains it);
* ``dense``: the same layers as ``conv3d`` over the whole voxel grid.

Forward alone (inference) and forward + backward (training), median milliseconds.
"""

from __future__ import annotations

from common.stage import StageContext, stage
from papers.fast_lidarnet.config import FastLidarnetProfile


@stage(
    section="fast_lidarnet",
    name="fast_lidarnet_kernels",
    config=FastLidarnetProfile,
    flags=["data", "metrics"],
    track=lambda ctx: ctx.config.kernels,
)
def main(ctx: StageContext) -> None:
    """Time the sparse-convolution implementations against each other and dense conv3d."""
    from common.sparse import voxelize
    from common.sparse.bench import benchmark_layers
    from papers.fast_lidarnet.data import DriveFrames

    profile, k = ctx.config, ctx.config.kernels
    val = DriveFrames.load(ctx.args.data, "val")
    stride = max(len(val) // k.frames, 1)
    batch = val[list(range(0, len(val), stride))[: k.frames]]
    x = voxelize(batch.points, voxel_size=k.voxel_size, bounds=tuple(profile.data.bounds))
    res = benchmark_layers(x, channels=k.channels, layers=k.layers, repeats=k.repeats,
                           backward=True)  # fmt: skip
    grid = x.spatial_shape[0] * x.spatial_shape[1] * x.spatial_shape[2] * x.batch_size
    metrics = {
        "kernels/active_sites": float(x.num_sites),
        "kernels/grid_sites": float(grid),
        "kernels/sparse_over_dense_macs": res["sparse_over_dense_macs"],
        "time/kernels": 0.0,
    }
    for impl in ("naive", "reuse", "optimized", "dense"):
        metrics[f"kernels/{impl}_ms"] = res[f"forward/{impl}_ms"]
        metrics[f"kernels/{impl}_train_ms"] = res[f"forward_backward/{impl}_ms"]
    for mode, tag in (("forward", ""), ("forward_backward", "_train")):
        metrics[f"kernels/speedup_naive_over_optimized{tag}"] = res[f"{mode}/naive_over_optimized"]
        metrics[f"kernels/speedup_naive_over_reuse{tag}"] = res[f"{mode}/naive_over_reuse"]
        metrics[f"kernels/speedup_dense_over_optimized{tag}"] = res[f"{mode}/dense_over_optimized"]
    metrics["time/kernels"] = ctx.seconds()
    ctx.finish(metrics, summary=(
        f"optimised sparse kernels: {metrics['kernels/speedup_naive_over_optimized']:.1f}x faster "
        f"than naive, {metrics['kernels/speedup_dense_over_optimized']:.1f}x than dense conv3d"))  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
