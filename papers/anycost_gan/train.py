"""Stage ``anycost_gan_train@<phase>``: one training phase of the profile (``--phase``).

A phase starts from nothing or from an earlier phase's weights (``init``: its EMA generator, with
the channels sorted by importance when ``sort_channels``, and its discriminator, whose new
low-resolution inputs and conditioning layers start fresh), distils from an earlier phase's full
EMA generator (``teacher``) and trains with :class:`~papers.anycost_gan.task.AnycostTask` on the
shared adversarial loop (under ``torchrun`` on several GPUs at the paper profile). Interrupt it at
any time: it resumes where it stopped.

Outputs in ``--out``: ``ema.safetensors`` (the EMA generator, what every later stage evaluates),
``generator.safetensors`` and ``discriminator.safetensors`` (the next phase's start), each with
its JSON, and ``config.json``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from torch import nn

from common.checkpoint import CheckpointError, load_model, save_model
from common.stage import STAGE_FLAGS, StageContext, stage
from common.train import Trainer, init_distributed
from papers.anycost_gan.config import AnycostGanProfile, PhaseConfig
from papers.anycost_gan.stylegan2 import Discriminator, Generator, GeneratorConfig, sort_channels

FLAGS = {
    **STAGE_FLAGS,
    "phase": {"required": True, "help": "a key of the profile's phases"},
    "init": {"type": Path, "default": None, "help": "the init phase's output folder"},
    "teacher": {"type": Path, "default": None, "help": "the teacher phase's output folder"},
    "features": {
        "type": Path,
        "default": None,
        "help": "the feature stage's output folder (phases that distil: the perceptual distance)",
    },
}
G_ARCH = "anycost_generator"
D_ARCH = "anycost_discriminator"


def generator_config(profile: AnycostGanProfile, phase: PhaseConfig) -> GeneratorConfig:
    """The phase's generator: the profile's, or at ``width_ratio`` (every layer's uniform-ratio
    width, the cap applied after scaling, as :func:`papers.anycost_gan.channels.uniform`)."""
    g = profile.generator
    if phase.width_ratio == 1.0:
        return g
    return dataclasses.replace(g, multiplier=g.multiplier * phase.width_ratio)


def d_kwargs(profile: AnycostGanProfile, phase: PhaseConfig) -> dict:
    from papers.anycost_gan import channels as ch

    g, a = profile.generator, phase.anycost
    return {"size": g.size, "multiplier": g.multiplier, "cap": g.cap, "base": g.base,
            "n_res": a.n_res, "arch_dim": 4 * ch.n_convs(g.size) if a.conditioned else 0}  # fmt: skip


def load_generator(path: Path) -> Generator:
    """A generator this stage saved (``ema.safetensors`` or ``generator.safetensors``)."""

    def build(arch: dict) -> nn.Module:
        if arch.get("name") != G_ARCH:
            raise CheckpointError(f"{path} holds a {arch.get('name')!r}, not an Anycost generator")
        kw = dict(arch["kwargs"])
        if kw.get("base") is not None:
            kw["base"] = {int(k): int(v) for k, v in kw["base"].items()}
        return Generator(GeneratorConfig(**kw))

    model, _ = load_model(path, build=build)
    return model


def _start_discriminator(d: Discriminator, path: Path) -> None:
    """Load an earlier phase's discriminator: its trunk and shared inputs; the inputs of new
    resolutions and the conditioning layers (absent before) keep their fresh initialisation."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path} not found. Fix: run the init phase first (`dvc repro`)")
    state = load_file(path)
    own = d.state_dict()
    for k, v in state.items():
        if k in own and own[k].shape != v.shape:
            raise CheckpointError(f"{path}: {k} has shape {tuple(v.shape)}, this phase's "
                                  f"discriminator {tuple(own[k].shape)}")  # fmt: skip
    missing, _ = d.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    bad = [k for k in missing if not k.startswith(("from_rgb.", "cond."))]
    if bad:
        raise CheckpointError(f"{path} lacks {bad[:3]}: not a discriminator of this profile")


def _device(ctx: StageContext) -> str:
    return ctx.entry("phases", ctx.args.phase).train.device


@stage(
    section="anycost_gan",
    name="anycost_gan_train@{phase}",
    config=AnycostGanProfile,
    flags=[
        "phase",
        "init",
        "teacher",
        "features",
        "data",
        "out",
        "checkpoints",
        "metrics",
        "history",
    ],
    catalogue=FLAGS,
    track=lambda ctx: ctx.entry("phases", ctx.args.phase),
    distributed=lambda ctx: init_distributed(_device(ctx)),
)
def main(ctx: StageContext) -> None:
    """Train one phase of Anycost GAN (``--phase``)."""
    from papers.anycost_gan.data import gan_dataset
    from papers.anycost_gan.features import feature_network, perceptual
    from papers.anycost_gan.task import AnycostTask

    profile, args = ctx.config, ctx.args
    name = args.phase
    phase = ctx.entry("phases", name)
    for flag, ref in (("init", phase.init), ("teacher", phase.teacher)):
        if (getattr(args, flag) is None) != (ref is None):
            raise CheckpointError(
                f"phase {name}: {flag} is {ref!r} in params.yaml but --{flag} is "
                f"{getattr(args, flag)}. Fix: pass --{flag} runs/anycost_gan/<{flag} phase>"
            )
    gcfg = generator_config(profile, phase)
    size = gcfg.size
    train = gan_dataset(profile.data, "train", size, args.data)
    ctx.seed(phase.train.seed)
    if args.init is not None:
        start = load_generator(Path(args.init) / "ema.safetensors")
        if start.cfg != gcfg:
            raise CheckpointError(f"{args.init}: its generator {start.cfg} is not this phase's")
        if phase.sort_channels:
            sort_channels(start)
        generator = start.train()
    else:
        generator = Generator(gcfg)
    disc = Discriminator(**d_kwargs(profile, phase))
    if args.init is not None:
        _start_discriminator(disc, Path(args.init) / "discriminator.safetensors")
    teacher = load_generator(Path(args.teacher) / "ema.safetensors") if args.teacher else None
    percept = None
    if phase.anycost.distill_alpha:
        net = feature_network(profile.features, args.features).to(ctx.dist.device)
        for p in net.parameters():
            p.requires_grad_(False)
        percept = lambda a, b: perceptual(net, a, b)  # noqa: E731
    channel_kw = {"multiplier": gcfg.multiplier, "cap": gcfg.cap, "base": gcfg.base}
    task = AnycostTask(disc, phase.adversarial, phase.anycost, size=size, teacher=teacher,
                       perceptual=percept, channel_kw=channel_kw)  # fmt: skip
    result = Trainer(
        generator,
        phase.train,
        train_data=train,
        eval_data=None,
        checkpoint_dir=args.checkpoints,
        task=task,
        hooks=[ctx.epoch_logger()],
        dist_context=ctx.dist,
        fingerprint_extra={
            "phase": name,
            "init": phase.init,
            "teacher": phase.teacher,
            "generator": dataclasses.asdict(gcfg),
            "sort_channels": phase.sort_channels,
        },
    ).fit()
    if not ctx.is_main:
        return
    out = Path(args.out)
    arch = {"name": G_ARCH, "kwargs": dataclasses.asdict(gcfg)}
    save_model(task.ema, out / "ema.safetensors", arch=arch)
    save_model(generator, out / "generator.safetensors", arch=arch)
    save_model(disc, out / "discriminator.safetensors",
               arch={"name": D_ARCH, "kwargs": d_kwargs(profile, phase)})  # fmt: skip
    last = result.history[-1] if result.history else {}
    metrics = {
        f"{name}/train_seconds": sum(r.get("epoch_seconds", 0.0) for r in result.history),
        f"{name}/steps": float(phase.train.steps or 0),
        f"time/train_{name}": ctx.seconds(),
        f"{name}/generator_params": float(sum(p.numel() for p in generator.parameters())),
        **{
            f"{name}/{k}": float(last[k])
            for k in ("train_d_loss", "train_g_loss", "train_distill")
            if k in last
        },
    }
    ctx.finish(metrics, artifacts=[ctx.save_config(phase, out / "config.json")],
               history=result.history,
               summary=f"{name}: {metrics[f'{name}/train_seconds']:.0f} s")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
