"""Stage ``deep_compression_speedup``: dense against sparse fully connected layers, batch size 1.

Figures 9-10 and Table 8: with pruning alone, the fully connected layers of AlexNet and VGG-16
run about 3x faster on a CPU (MKL CBLAS GEMV against SPBLAS CSRMV) at batch size 1, because a
matrix-vector product is memory-bound and a pruned matrix is 10-25x smaller. Quantization and
Huffman coding only save storage; they were not benchmarked and are not here either.

Each layer of params.yaml (shape and density from Tables 2-5) is timed here as a dense
``torch.mv`` against ``torch.mv`` on a CSR matrix, and as numpy against ``scipy.sparse``, on
this machine's CPU: repeats interleaved, medians compared, the ratio reported.
"""

from __future__ import annotations

import statistics
import time
import warnings

import numpy as np
import scipy.sparse
import torch

from common.stage import StageContext
from papers.deep_compression.config import FcLayer, SpeedupConfig
from papers.deep_compression.stage import dc_stage, finish_analysis


def _matrix(layer: FcLayer, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(layer.out_features, layer.in_features, generator=g)
    n_keep = round(layer.density * w.numel())
    scores = torch.rand(w.numel(), generator=g)
    keep = torch.zeros(w.numel(), dtype=torch.bool)
    keep[torch.topk(scores, n_keep).indices] = True
    return w * keep.view_as(w)


def _median_us(fns: dict[str, object], repeats: int, warmup: int) -> dict[str, float]:
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():  # interleaved: noise hits every variant alike
            t0 = time.perf_counter()
            fn()
            samples[key].append((time.perf_counter() - t0) * 1e6)
    return {k: statistics.median(v) for k, v in samples.items()}


def time_layer(layer: FcLayer, cfg: SpeedupConfig) -> dict[str, float]:
    w = _matrix(layer, cfg.seed)
    x = torch.randn(layer.in_features, generator=torch.Generator().manual_seed(cfg.seed + 1))
    with warnings.catch_warnings():  # torch calls CSR support "beta"; the product is checked below
        warnings.simplefilter("ignore", UserWarning)
        w_csr = w.to_sparse_csr()
    w_np, x_np = w.numpy(), x.numpy()
    w_sp = scipy.sparse.csr_matrix(w_np)
    if not torch.allclose(torch.mv(w_csr, x), torch.mv(w, x), atol=1e-3, rtol=1e-4):
        raise RuntimeError(f"{layer.name}: sparse and dense products differ")
    # Each library's pair is timed on its own: interleaving torch (OpenMP) with numpy/scipy
    # (OpenBLAS) leaves one runtime's threads spinning while the other works, which on two cores
    # distorts both. Within a pair, dense and sparse alternate so noise hits both alike.
    t = _median_us(
        {"torch_dense": lambda: torch.mv(w, x), "torch_csr": lambda: torch.mv(w_csr, x)},
        cfg.repeats,
        cfg.warmup,
    )
    t |= _median_us(
        {"numpy_dense": lambda: w_np @ x_np, "scipy_csr": lambda: w_sp @ x_np},
        cfg.repeats,
        cfg.warmup,
    )
    return {
        "density": float(w_csr.values().numel() / w.numel()),
        **{f"{k}_us": v for k, v in t.items()},
        "speedup_torch": t["torch_dense"] / t["torch_csr"],
        "speedup_scipy": t["numpy_dense"] / t["scipy_csr"],
    }


@dc_stage(
    name="deep_compression_speedup", flags=["out", "metrics"], track=lambda c: c.config.speedup
)
def main(ctx: StageContext) -> None:
    """Time dense against sparse matrix-vector products of pruned fc layers (Figures 9-10)."""
    sc = ctx.config.speedup
    previous = torch.get_num_threads()
    if sc.threads:
        torch.set_num_threads(sc.threads)
    rows = []
    metrics: dict[str, float] = {"speedup/threads": float(torch.get_num_threads())}
    for layer in sc.layers:
        r = time_layer(layer, sc)
        rows.append({"layer": layer.name, "shape": [layer.out_features, layer.in_features], **r})
        for k, v in r.items():
            metrics[f"speedup/{layer.name}/{k}"] = v
        print(
            f"{layer.name:<14} {layer.out_features}x{layer.in_features} "
            f"density {r['density']:.2f}: "
            f"dense {r['torch_dense_us']:.0f} us, CSR {r['torch_csr_us']:.0f} us -> "
            f"{r['speedup_torch']:.2f}x (scipy {r['speedup_scipy']:.2f}x)"
        )
    groups = {
        "alexnet": ("alexnet.",),
        "vgg16": ("vgg16.",),
        "alexnet_vgg16": ("alexnet.", "vgg16."),
    }
    for group, prefixes in groups.items():
        sel = [r for r in rows if r["layer"].startswith(prefixes)]
        if sel:
            for lib in ("torch", "scipy"):
                metrics[f"speedup/{group}/mean_{lib}"] = float(
                    np.mean([r[f"speedup_{lib}"] for r in sel])
                )
    finish_analysis(ctx, sc, {"threads": torch.get_num_threads(), "layers": rows}, metrics)
    torch.set_num_threads(previous)


if __name__ == "__main__":
    raise SystemExit(main())
