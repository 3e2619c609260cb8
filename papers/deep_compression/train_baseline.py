"""Stage ``deep_compression_baseline@<network>``: train a Table 1 reference network.

Deep Compression starts from LeNet-300-100 (1.64% top-1 error, 1070 KB) and LeNet-5 (0.80%,
1720 KB) trained with Caffe (paper, Table 1). This stage trains the same architectures with the
shared loop and records, besides the test error, the measurements later stages compare against:
parameters, float32 size, MACs, batch-1 CPU latency and the int8 peak activation memory.

Deviation: PyTorch with the solver in params.yaml instead of Caffe. The ``paper`` profile uses
Caffe's LeNet solver (SGD, lr 0.01, momentum 0.9, weight decay 5e-4, ``inv`` policy, batch 64,
about 10k iterations); the ``default`` profile a short cosine schedule.

Outputs: ``<out>/model.safetensors`` (+ ``.json`` architecture and config), ``<out>/config.json``,
the flat metrics JSON and a per-epoch history CSV (a DVC plot). Interrupt it at any time: the
next run resumes after the last finished epoch. Under ``torchrun`` every process trains and only
rank 0 writes.
"""

from __future__ import annotations

import torch

from common.checkpoint import save_model
from common.config import to_dict
from common.measure import (
    count_macs,
    count_parameters,
    measure_latency,
    model_size_bytes,
    peak_activation_memory,
)
from common.models import create_model
from common.stage import StageContext
from common.train import Trainer, init_distributed
from papers.deep_compression.stage import datasets, dc_stage


def measure(model: torch.nn.Module, input_shape: tuple[int, ...], repeats: int) -> dict[str, float]:
    """Size and speed of ``model`` for one image (batch size 1, as the paper's layer timings)."""
    model = model.cpu().eval()
    x = torch.zeros(1, *input_shape)
    return {
        "params": float(count_parameters(model)),
        "size_kb": model_size_bytes(model) / 1000.0,
        "macs": float(count_macs(model, x).total),
        "latency_ms_b1": measure_latency(model, x, repeats=repeats).median_ms,
        "peak_activation_int8_bytes": float(peak_activation_memory(model, x).peak_bytes),
    }


@dc_stage(
    name="deep_compression_baseline@{name}",
    flags=["name", "data", "out", "checkpoints", "metrics", "history"],
    track=lambda ctx: ctx.entry("baseline"),
    distributed=lambda ctx: init_distributed(ctx.entry("baseline").train.device),
)
def main(ctx: StageContext) -> None:
    """Train a Table 1 reference network (``--name``) and measure it."""
    cfg = ctx.entry("baseline")
    args = ctx.args
    train, test = datasets(cfg, args.data)
    ctx.seed(cfg.train.seed)
    model = create_model(cfg.model, num_classes=train.num_classes, **cfg.model_kwargs)
    result = Trainer(
        model,
        cfg.train,
        train_data=train,
        eval_data=test,
        checkpoint_dir=args.checkpoints,
        hooks=[ctx.epoch_logger()],
        fingerprint_extra={
            "model": cfg.model,
            "dataset": cfg.dataset,
            "subsets": [cfg.train_subset, cfg.test_subset],
        },
        dist_context=ctx.dist,
    ).fit()
    if not ctx.is_main:
        return
    prefix = f"{args.name}/baseline"
    measured = measure(model, tuple(train.input_shape), cfg.latency_repeats)
    metrics = {
        f"{prefix}/test_error": result.final["eval_error"],
        f"{prefix}/train_seconds": sum(r["epoch_seconds"] for r in result.history),
        f"{prefix}/epochs": float(cfg.train.epochs),
        f"{prefix}/train_samples": float(len(train)),
        f"{prefix}/test_samples": float(len(test)),
        **{f"{prefix}/{k}": v for k, v in measured.items()},
    }
    arch = {"name": cfg.model, "kwargs": {"num_classes": train.num_classes, **cfg.model_kwargs}}
    extra = {"profile": ctx.profile, "config": to_dict(cfg)}
    save_model(model, args.out / "model.safetensors", arch=arch, extra=extra)
    config = ctx.save_config(cfg, args.out / "config.json")
    ctx.finish(
        metrics,
        artifacts=[config],
        history=result.history,
        summary=f"{args.name}: test error {result.final['eval_error']:.2f}%  -> {args.metrics}",
    )


if __name__ == "__main__":
    raise SystemExit(main())
