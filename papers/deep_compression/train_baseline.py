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
next run resumes after the last finished epoch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from common.checkpoint import save_model
from common.config import ConfigError, load_profile, save_resolved, to_dict
from common.data import DataError, build_dataset
from common.env import configure_environment
from common.io import write_history, write_metrics
from common.measure import (
    count_macs,
    count_parameters,
    measure_latency,
    model_size_bytes,
    peak_activation_memory,
)
from common.models import create_model
from common.seed import seed_everything
from common.tracking import epoch_logger, stage_run
from common.train import Trainer, init_distributed
from common.train.distributed import cleanup
from papers.deep_compression.config import BaselineConfig, DeepCompressionProfile

EXPERIMENT = "deep_compression"


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


def run(args: argparse.Namespace) -> dict[str, float]:
    profile, cfg_all = load_profile(DeepCompressionProfile, args.params, "deep_compression")
    if args.name not in cfg_all.baseline:
        raise ConfigError(
            f"{args.params}: deep_compression.profiles.{profile}.baseline has no {args.name!r}; "
            f"it has {', '.join(cfg_all.baseline)}"
        )
    cfg: BaselineConfig = cfg_all.baseline[args.name]
    ctx = init_distributed(cfg.train.device)
    train = build_dataset(
        cfg.dataset, "train", root=args.data, subset=cfg.train_subset, seed=cfg.train.seed
    )
    test = build_dataset(
        cfg.dataset, "test", root=args.data, subset=cfg.test_subset, seed=cfg.train.seed
    )
    seed_everything(cfg.train.seed)
    model = create_model(cfg.model, num_classes=train.num_classes, **cfg.model_kwargs)
    stage = f"deep_compression_baseline@{args.name}"
    with stage_run(
        experiment=EXPERIMENT, stage=stage, config=cfg, profile=profile, enabled=ctx.is_main
    ) as mlrun:
        result = Trainer(
            model,
            cfg.train,
            train_data=train,
            eval_data=test,
            checkpoint_dir=args.checkpoints,
            hooks=[epoch_logger(mlrun)],
            fingerprint_extra={
                "model": cfg.model,
                "dataset": cfg.dataset,
                "subsets": [cfg.train_subset, cfg.test_subset],
            },
            dist_context=ctx,
        ).fit()
        if not ctx.is_main:
            cleanup(ctx)
            return {}
        prefix = f"{args.name}/baseline"
        metrics = {
            f"{prefix}/test_error": result.final["eval_error"],
            f"{prefix}/train_seconds": sum(r["epoch_seconds"] for r in result.history),
            f"{prefix}/epochs": float(cfg.train.epochs),
            f"{prefix}/train_samples": float(len(train)),
            f"{prefix}/test_samples": float(len(test)),
            **{
                f"{prefix}/{k}": v
                for k, v in measure(model, tuple(train.input_shape), cfg.latency_repeats).items()
            },
        }
        arch = {"name": cfg.model, "kwargs": {"num_classes": train.num_classes, **cfg.model_kwargs}}
        save_model(
            model,
            args.out / "model.safetensors",
            arch=arch,
            extra={"profile": profile, "config": to_dict(cfg)},
        )
        save_resolved(cfg, args.out / "config.json", profile=profile, stage=stage)
        write_history(result.history, args.history)
        write_metrics(metrics, args.metrics)
        if mlrun is not None:
            mlrun.log_metrics(metrics)
            mlrun.log_artifact(args.out / "config.json")
            mlrun.log_artifact(args.history)
            mlrun.log_artifact(args.metrics)
    cleanup(ctx)
    return metrics


def main(argv: list[str] | None = None) -> int:
    configure_environment()
    parser = argparse.ArgumentParser(
        prog="python -m papers.deep_compression.train_baseline", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument(
        "--name", required=True, help="key under deep_compression.profiles.<p>.baseline"
    )
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset directory")
    parser.add_argument("--out", type=Path, required=True, help="output directory for the model")
    parser.add_argument(
        "--checkpoints", type=Path, required=True, help="resumable checkpoint directory"
    )
    parser.add_argument("--metrics", type=Path, required=True, help="flat metrics JSON")
    parser.add_argument("--history", type=Path, required=True, help="per-epoch history CSV")
    args = parser.parse_args(argv)
    try:
        metrics = run(args)
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if metrics:
        print(
            f"{args.name}: test error {metrics[f'{args.name}/baseline/test_error']:.2f}%  -> {args.metrics}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
