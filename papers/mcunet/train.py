"""Stage ``mcunet_train@<model>``: train a table network on the colour digits at its resolution.

The paper's networks are ImageNet models (MobileNetV2-w0.35 at 144 px, ProxylessNAS-w0.3 at
176 px, MCUNet at 160 px). Here the same architectures, with 10-class heads, learn the 32-pixel
colour digits upsampled to those resolutions, so that activation memory binds on the
microcontroller as it does in the paper; accuracy is reported, not compared with ImageNet's.
Interrupt it at any time: the next run resumes after the last finished epoch.
"""

from __future__ import annotations

import argparse

import torch

from common.checkpoint import save_model
from common.config import ConfigError, save_resolved, to_dict
from common.io import write_history, write_metrics
from common.models import create_model
from common.seed import seed_everything
from common.stage import run_stage
from common.tracking import epoch_logger, stage_run
from common.train import Trainer
from papers.mcunet.stage import EXPERIMENT, FLAGS, datasets, load_config, model_config


def run(args: argparse.Namespace) -> dict[str, float]:
    profile, cfg = load_config(args.params)
    m = model_config(args.params, cfg, args.name)
    if m.train is None:
        raise ConfigError(
            f"mcunet.profiles.{profile}.models.{args.name} has no train section: it is trained by another stage"
        )
    train, test = datasets(m, args.data, m.train.seed)
    seed_everything(m.train.seed)
    model = create_model(m.model, num_classes=train.num_classes, **m.model_kwargs)
    if m.channels_last:  # convolution outputs follow the weights' memory format
        model = model.to(memory_format=torch.channels_last)
    stage = f"mcunet_train@{args.name}"
    with stage_run(experiment=EXPERIMENT, stage=stage, config=m, profile=profile) as mlrun:
        result = Trainer(
            model,
            m.train,
            train_data=train,
            eval_data=test,
            checkpoint_dir=args.checkpoints,
            hooks=[epoch_logger(mlrun)],
            fingerprint_extra={
                "model": m.model,
                "kwargs": m.model_kwargs,
                "resolution": m.resolution,
                "subsets": [m.train_subset, m.test_subset],
                "channels_last": m.channels_last,
            },
        ).fit()
        metrics = {
            f"{args.name}/float/test_accuracy": 100.0 - result.final["eval_error"],
            f"{args.name}/float/train_seconds": sum(r["epoch_seconds"] for r in result.history),
            f"{args.name}/float/train_samples": float(len(train)),
            f"{args.name}/float/test_samples": float(len(test)),
        }
        arch = {"name": m.model, "kwargs": {"num_classes": train.num_classes, **m.model_kwargs}}
        save_model(
            model,
            args.out / "model.safetensors",
            arch=arch,
            extra={"profile": profile, "config": to_dict(m), "resolution": m.resolution},
        )
        save_resolved(m, args.out / "config.json", profile=profile, stage=stage)
        write_history(result.history, args.history)
        write_metrics(metrics, args.metrics)
        if mlrun is not None:
            mlrun.log_metrics(metrics)
            mlrun.log_artifact(args.metrics)
    print(
        f"{args.name}: float accuracy {metrics[f'{args.name}/float/test_accuracy']:.2f}% -> {args.out}"
    )
    return metrics


def main(argv: list[str] | None = None) -> int:
    return run_stage(
        __doc__.split("\n")[0],
        ["name", "data", "out", "checkpoints", "metrics", "history"],
        run,
        argv,
        catalogue=FLAGS,
    )


if __name__ == "__main__":
    raise SystemExit(main())
