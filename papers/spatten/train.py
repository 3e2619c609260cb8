"""Stage ``spatten_train@<model>``: train one network of the profile and test it.

Outputs: ``<out>/model.safetensors`` (+ its JSON), ``<out>/config.json``, the flat metrics JSON
and the per-epoch history CSV. Interrupt it at any time: it resumes where it stopped.
"""

from __future__ import annotations

from pathlib import Path

from common.checkpoint import save_model
from common.data import build_dataset
from common.models import create_model
from common.stage import STAGE_FLAGS, StageContext, stage
from common.train import Trainer
from papers.spatten.config import SpattenProfile

FLAGS = {**STAGE_FLAGS, "name": {"required": True, "help": "a key of the profile's models"}}


@stage(
    section="spatten",
    name="spatten_train@{name}",
    config=SpattenProfile,
    flags=["name", "data", "out", "checkpoints", "metrics", "history"],
    catalogue=FLAGS,
    track=lambda ctx: ctx.entry("models"),
)
def main(ctx: StageContext) -> None:
    """Train a network of the profile (``--name``) and test it."""
    cfg, args = ctx.entry("models"), ctx.args
    seed = cfg.train.seed
    train = build_dataset(cfg.dataset, "train", root=args.data, subset=cfg.train_subset, seed=seed)
    test = build_dataset(cfg.dataset, "test", root=args.data, subset=cfg.test_subset, seed=seed)
    ctx.seed(seed)
    model = create_model(cfg.model, num_classes=train.num_classes, **cfg.model_kwargs)
    result = Trainer(
        model,
        cfg.train,
        train_data=train,
        eval_data=test,
        checkpoint_dir=args.checkpoints,
        hooks=[ctx.epoch_logger()],
        fingerprint_extra={"model": cfg.model, "dataset": cfg.dataset},
    ).fit()
    arch = {"name": cfg.model, "kwargs": {"num_classes": train.num_classes}}
    save_model(model, Path(args.out) / "model.safetensors", arch=arch)
    metrics = {
        f"{args.name}/test_error": result.final["eval_error"],
        f"{args.name}/train_seconds": sum(r["epoch_seconds"] for r in result.history),
        f"{args.name}/train_samples": float(len(train)),
    }
    ctx.finish(
        metrics,
        artifacts=[ctx.save_config(cfg, Path(args.out) / "config.json")],
        history=result.history,
        summary=f"{args.name}: test error {metrics[f'{args.name}/test_error']:.2f}%",
    )


if __name__ == "__main__":
    raise SystemExit(main())
