"""Stage ``anycost_gan_features``: the network whose features FID and KID are computed on.

``kind: digits`` (default profile) trains :class:`~papers.anycost_gan.features.DigitFeatures` on
the colour digits and reports its test error (a feature network that cannot tell the digits apart
would make FID meaningless). ``kind: inception`` (paper profile) checks that the Inception-v3
weights load and records where they are. Outputs ``<out>/model.safetensors`` (digits) and
``<out>/config.json``.
"""

from __future__ import annotations

from pathlib import Path

from common.checkpoint import save_model
from common.stage import STAGE_FLAGS, StageContext, stage
from common.train import Trainer
from papers.anycost_gan.config import AnycostGanProfile


@stage(
    section="anycost_gan",
    name="anycost_gan_features",
    config=AnycostGanProfile,
    flags=["data", "out", "checkpoints", "metrics", "history"],
    catalogue=STAGE_FLAGS,
    track=lambda ctx: ctx.config.features,
)
def main(ctx: StageContext) -> None:
    """Train (or load) the feature network of FID / KID."""
    cfg, args = ctx.config.features, ctx.args
    out = Path(args.out)
    artifacts = [ctx.save_config(cfg, out / "config.json")]
    if cfg.kind == "inception":
        from papers.anycost_gan.features import feature_network

        feature_network(cfg)  # a missing or malformed weights file stops here, in one line
        ctx.finish({"features/dim": 2048.0, "time/features": ctx.seconds()}, artifacts=artifacts, history=[],
                   summary=f"inception weights {cfg.weights} load")  # fmt: skip
        return
    from common.data import build_dataset
    from papers.anycost_gan.data import to_unit_range
    from papers.anycost_gan.features import DigitFeatures

    seed = cfg.train.seed
    train = to_unit_range(build_dataset("colour_digits", "train", root=args.data,
                                        subset=cfg.train_images, seed=seed))  # fmt: skip
    test = to_unit_range(build_dataset("colour_digits", "test", root=args.data))
    ctx.seed(seed)
    model = DigitFeatures(width=cfg.width)
    result = Trainer(model, cfg.train, train_data=train, eval_data=test,
                     checkpoint_dir=args.checkpoints, hooks=[ctx.epoch_logger()],
                     fingerprint_extra={"features": "digits", "width": cfg.width}).fit()  # fmt: skip
    save_model(model, out / "model.safetensors", arch=model.arch())
    metrics = {
        "features/test_error": result.final["eval_error"],
        "features/dim": float(4 * cfg.width),
        "features/train_seconds": sum(r["epoch_seconds"] for r in result.history),
        "time/features": ctx.seconds(),
    }
    ctx.finish(metrics, artifacts=artifacts, history=result.history,
               summary=f"feature network: test error {metrics['features/test_error']:.2f}%")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
