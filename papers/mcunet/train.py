"""Stage ``mcunet_train@<model>``: train a table network on the colour digits at its resolution.

The paper's networks are ImageNet models (MobileNetV2-w0.35 at 144 px, ProxylessNAS-w0.3 at
176 px, MCUNet at 160 px). Here the same architectures, with 10-class heads, learn the 32-pixel
colour digits upsampled to those resolutions, so that activation memory binds on the
microcontroller as it does in the paper; accuracy is reported, not compared with ImageNet's.
Interrupt it at any time: the next run resumes after the last finished epoch.
"""

from __future__ import annotations

import torch

from common.checkpoint import save_model
from common.config import ConfigError, section_file, to_dict
from common.models import create_model
from common.stage import StageContext
from common.train import Trainer
from papers.mcunet.config import ModelConfig
from papers.mcunet.stage import datasets, mcunet_stage


def trained_model(ctx: StageContext) -> ModelConfig:
    """``models[--name]``, which must have a ``train`` section (LeNet-5 is trained elsewhere)."""
    m = ctx.entry("models")
    if m.train is None:
        where = section_file(ctx.args.params, ctx.section)
        raise ConfigError(
            f"{where}: {ctx.profile}.models.{ctx.args.name} has no train section: "
            "it is trained by another stage"
        )
    return m


@mcunet_stage(
    name="mcunet_train@{name}",
    flags=["name", "data", "out", "checkpoints", "metrics", "history"],
    track=trained_model,  # checked before the MLflow run opens
)
def main(ctx: StageContext) -> None:
    args, m = ctx.args, trained_model(ctx)
    train, test = datasets(m, args.data, m.train.seed)
    ctx.seed(m.train.seed)
    model = create_model(m.model, num_classes=train.num_classes, **m.model_kwargs)
    if m.channels_last:  # convolution outputs follow the weights' memory format
        model = model.to(memory_format=torch.channels_last)
    result = Trainer(
        model,
        m.train,
        train_data=train,
        eval_data=test,
        checkpoint_dir=args.checkpoints,
        hooks=[ctx.epoch_logger()],
        fingerprint_extra={
            "model": m.model,
            "kwargs": m.model_kwargs,
            "resolution": m.resolution,
            "subsets": [m.train_subset, m.test_subset],
            "channels_last": m.channels_last,
        },
    ).fit()
    accuracy = 100.0 - result.final["eval_error"]
    metrics = {
        f"{args.name}/float/test_accuracy": accuracy,
        f"{args.name}/float/train_seconds": sum(r["epoch_seconds"] for r in result.history),
        f"{args.name}/float/train_samples": float(len(train)),
        f"{args.name}/float/test_samples": float(len(test)),
    }
    arch = {"name": m.model, "kwargs": {"num_classes": train.num_classes, **m.model_kwargs}}
    save_model(
        model,
        args.out / "model.safetensors",
        arch=arch,
        extra={"profile": ctx.profile, "config": to_dict(m), "resolution": m.resolution},
    )
    ctx.save_config(m, args.out / "config.json")
    ctx.finish(
        metrics,
        history=result.history,
        summary=f"{args.name}: float accuracy {accuracy:.2f}% -> {args.out}",
    )


if __name__ == "__main__":
    raise SystemExit(main())
