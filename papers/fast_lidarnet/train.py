"""Stage ``fast_lidarnet_train@<model>``: train one network of the profile on the recorded expert
drives and test it open-loop on the frames of the unseen test maps.

``sparse3d`` with ``designed: true`` takes its voxel size and width from the hardware-aware design
stage (``--design``, ``design.json``). Interrupt it at any time: it resumes where it stopped.

Outputs in ``--out``: ``model.safetensors`` (+ its JSON: the architecture as data) and
``config.json``; the flat metrics (open-loop curvature error now / over the horizon, NLL, mean
uncertainties, on the test split) and the per-epoch history.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from torch import nn

from common.checkpoint import CheckpointError, load_model, save_model
from common.stage import STAGE_FLAGS, StageContext, stage
from common.train import Trainer, init_distributed
from papers.fast_lidarnet.config import FastLidarnetProfile, ModelConfig
from papers.fast_lidarnet.models import Geometry, LidarNet, build_model

FLAGS = {
    **STAGE_FLAGS,
    "name": {"required": True, "help": "a key of the profile's models"},
    "design": {"type": Path, "default": None, "help": "the design stage's output folder"},
}
ARCH = "fast_lidarnet"


def geometry(profile: FastLidarnetProfile) -> Geometry:
    d = profile.data
    return Geometry(bounds=tuple(d.bounds), horizon=d.horizon, map_size=d.map.size_px)


def designed_config(cfg: ModelConfig, design: Path | None, name: str) -> ModelConfig:
    """``cfg`` with the design stage's voxel size and width when ``cfg.designed``."""
    if not cfg.designed:
        return cfg
    path = Path(design or "") / "design.json"
    if design is None or not path.is_file():
        raise CheckpointError(
            f"models.{name}.designed is true but {path} is missing. Fix: pass --design "
            "runs/fast_lidarnet/design (run the design stage first: `dvc repro`)"
        )
    chosen = json.loads(path.read_text())["chosen"]
    return dataclasses.replace(
        cfg, voxel_size=float(chosen["voxel_size"]), width=int(chosen["width"])
    )


def load_network(path: Path) -> LidarNet:
    """A network this stage saved (``model.safetensors``)."""

    def build(arch: dict) -> nn.Module:
        if arch.get("name") != ARCH:
            raise CheckpointError(f"{path} holds a {arch.get('name')!r}, not a Fast-LiDARNet model")
        kw = dict(arch["kwargs"])
        geo = Geometry(**{**kw["geometry"], "bounds": tuple(kw["geometry"]["bounds"])})
        from common.config import from_dict

        return build_model(from_dict(ModelConfig, kw["model"]), geo)

    model, _ = load_model(path, build=build)
    return model  # type: ignore[return-value]


def _device(ctx: StageContext) -> str:
    return ctx.entry("models").train.device


@stage(
    section="fast_lidarnet",
    name="fast_lidarnet_train@{name}",
    config=FastLidarnetProfile,
    flags=["name", "design", "data", "out", "checkpoints", "metrics", "history"],
    catalogue=FLAGS,
    track=lambda ctx: ctx.entry("models"),
    distributed=lambda ctx: init_distributed(_device(ctx)),
)
def main(ctx: StageContext) -> None:
    """Train one control network (``--name``) and test it open-loop."""
    from common.config import to_dict
    from common.data.loader import build_loader
    from papers.fast_lidarnet.data import DriveFrames
    from papers.fast_lidarnet.task import ControlTask, evaluate_control

    profile, args = ctx.config, ctx.args
    name = args.name
    cfg = designed_config(ctx.entry("models"), args.design, name)
    geo = geometry(profile)
    train = DriveFrames.load(args.data, "train")
    val = DriveFrames.load(args.data, "val")
    ctx.seed(cfg.train.seed)
    model = build_model(cfg, geo)
    task = ControlTask(cfg.coeff)
    result = Trainer(
        model,
        cfg.train,
        train_data=train,
        eval_data=val,
        checkpoint_dir=args.checkpoints,
        task=task,
        hooks=[ctx.epoch_logger()],
        dist_context=ctx.dist,
        fingerprint_extra={"model": to_dict(cfg), "geometry": dataclasses.asdict(geo)},
    ).fit()
    if not ctx.is_main:
        return
    out = Path(args.out)
    arch = {"name": ARCH, "kwargs": {"model": to_dict(cfg), "geometry": dataclasses.asdict(geo)}}
    save_model(model, out / "model.safetensors", arch=arch)
    test = DriveFrames.load(args.data, "test")
    loader = build_loader(test, batch_size=cfg.train.eval_batch_size, shuffle=False)
    scores = evaluate_control(model, loader, ctx.dist.device)
    metrics = {
        **{f"{name}/{k}": v for k, v in scores.items()},
        f"{name}/params": float(sum(p.numel() for p in model.parameters())),
        f"{name}/voxel_size": cfg.voxel_size,
        f"{name}/width": float(cfg.width),
        f"{name}/train_frames": float(len(train)),
        f"{name}/train_seconds": sum(r.get("epoch_seconds", 0.0) for r in result.history),
        f"time/train_{name}": ctx.seconds(),
    }
    ctx.finish(metrics, artifacts=[ctx.save_config(cfg, out / "config.json")],
               history=result.history,
               summary=f"{name}: test curvature error now {scores['mae_now']:.2f} /km "
                       f"(labels' std {scores['label_std']:.2f} /km)")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
