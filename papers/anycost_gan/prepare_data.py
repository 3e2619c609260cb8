"""Stage ``anycost_gan_data``: the images the default profile's GAN learns.

The colour digits of the classification papers (``data/prepared/colour_digits``) lower each
digit's contrast, shift and tint it, so that small classifiers do not saturate. A GAN trained for
minutes on two CPU cores learns those faint strokes late: its samples stay photo textures with
blurred marks. This stage generates the set again with the same code
(:func:`common.data.prepare.prepare_colour_digits`, the same photos and MNIST digits) at MNIST-M's
own recipe (``data.digits`` in params.yaml: full contrast, centred, untinted), whose digits a
generator of this size learns to draw within the budget. The feature network of FID and the
consistency metrics is trained on the same images.

At the paper profile (``data.dataset: folder``) there is nothing to generate: the stage writes
only ``config.json`` naming the folder the other stages read.
"""

from __future__ import annotations

from pathlib import Path

from common.stage import STAGE_FLAGS, StageContext, stage
from papers.anycost_gan.config import AnycostGanProfile

FLAGS = {
    **STAGE_FLAGS,
    "data": {"type": Path, "required": True, "help": "the prepared MNIST directory"},
}


@stage(
    section="anycost_gan",
    name="anycost_gan_data",
    config=AnycostGanProfile,
    flags=["data", "out", "metrics"],
    catalogue=FLAGS,
    track=lambda ctx: ctx.config.data,
)
def main(ctx: StageContext) -> None:
    """Generate the colour digits the GAN learns (MNIST-M's recipe)."""
    from common.data.prepare import prepare_colour_digits

    cfg, out = ctx.config.data, Path(ctx.args.out)
    if cfg.dataset == "folder":
        out.mkdir(parents=True, exist_ok=True)
        ctx.finish({"time/data": ctx.seconds()},
                   artifacts=[ctx.save_config(cfg, out / "config.json")],
                   summary=f"images from the folder {cfg.root}")  # fmt: skip
        return
    manifest = prepare_colour_digits(Path(ctx.args.data), out, cfg.digits)
    metrics = {
        **{f"data/{split}_count": float(s["count"]) for split, s in manifest["splits"].items()},
        "time/data": ctx.seconds(),
    }
    ctx.finish(metrics, artifacts=[out / "samples.png"],
               summary=f"{out}: {manifest['splits']['train']['count']} training images")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
