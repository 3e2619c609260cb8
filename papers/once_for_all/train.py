"""Stage ``once_for_all_train@<phase>``: one phase of Once-for-All's training (Section 3.3).

Progressive shrinking (PS) trains the supernet from large to small:

1. ``full``: the largest network (kernel 7, expand 6, depth 4) with elastic resolution; it is
   also the teacher of every later phase (knowledge distillation, ``kd_ratio`` x soft CE).
2. ``kernel``: kernel sizes {7, 5, 3} become elastic (the 5x5 and 3x3 kernels are the centre of
   the larger ones through the learned transformation matrices); one sub-network per step.
3. ``depth1`` / ``depth2``: stages may run their first {4, 3}, then {4, 3, 2} blocks; two
   sub-networks per step.
4. ``expand1`` / ``expand2``: expand ratios {6, 4}, then {6, 4, 3}; the expanded channels are
   first sorted by importance (L1 norm of the projection weights), keeping the channels an
   earlier phase trained as a prefix; four sub-networks per step.

``nops`` is the ablation's baseline: from the same full network, every choice elastic at once
(no progressive order), with the same distillation and as many sub-network updates as the five
shrinking phases together.

Every phase's length comes from the profile's ``budget`` (the paper's proportions of the full
network's length; :mod:`common.ofa.shrinking`).

Each phase starts from the previous phase's weights (``--init``), samples sub-networks through
:class:`common.ofa.SubnetSampler` and accumulates their gradients in the shared training loop
(:func:`common.ofa.shrinking.train_phase`), checkpoints and resumes after an interruption.
:func:`run_phase` is the one place a phase is set up; the ablation's replicates use it too. The schedule
of every profile is in params.yaml; the paper's is in the ``paper`` profile.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from common.checkpoint import CheckpointError
from common.config import ConfigError, to_dict
from common.ofa.shrinking import freeze_kernel_transforms_, train_phase
from common.ofa.supernet import OFAMobileNetV3
from common.seed import derive_seed, seed_everything
from common.stage import StageContext
from common.train import init_distributed
from common.train.trainer import TrainResult
from papers.once_for_all.config import OFAProfile, PhaseConfig
from papers.once_for_all.stage import (
    Splits,
    build_supernet,
    load_splits,
    load_supernet,
    ofa_stage,
    save_supernet,
    stage_seconds,
)


def _phase(ctx: StageContext) -> PhaseConfig:
    """The ``--phase`` entry of the profile's phases (or one clear error)."""
    return ctx.entry("phases", ctx.args.phase)


def run_phase(
    cfg: OFAProfile,
    phase: str,
    *,
    splits: Splits,
    init: OFAMobileNetV3 | None,
    teacher: OFAMobileNetV3 | None,
    checkpoints: Path,
    seed: int | None = None,
    scale: float = 1.0,
    choices_of: str | None = None,
    passes: int | None = None,
    plain_kernels: bool = False,
    dist: Any = None,
    hooks: tuple = (),
    progress: bool = True,
) -> tuple[OFAMobileNetV3, TrainResult]:
    """Train ``phase`` of ``cfg`` from ``init`` (a supernet of the phase it starts from, or None
    for the full network) and return the trained supernet and the loop's result.

    ``seed`` (default: the profile's, i.e. the pipeline's own supernets) seeds the new weights,
    the data order and the sub-network draws of a replicate; ``scale`` multiplies the budget.
    The ablation's extra arms: ``choices_of`` samples another phase's choices with this phase's
    settings and length (the largest network alone: ``nops`` with ``choices_of="full"`` and
    ``passes=1``), ``plain_kernels`` fixes the kernel-transformation matrices at identity.
    """
    ph = cfg.phases[phase]
    train = cfg.phase_train(phase, scale=scale, seed=seed)
    seed = cfg.seed if seed is None else seed
    seed_everything(train.seed)
    net = build_supernet(cfg, splits.num_classes)
    if init is not None:
        net.load_state_dict(init.state_dict())
    if ph.sort_channels:
        # Channels of the widths an earlier phase trained stay a prefix (nested sorting).
        trained = cfg.phases[ph.init].expand_ratios if ph.init else []
        nested = sorted(r for r in trained if r < max(cfg.space.expand_ratios))
        net.sort_channels_(nested_expand_ratios=nested)
    if plain_kernels:
        freeze_kernel_transforms_(net)
    memory = torch.channels_last if cfg.data.channels_last else torch.contiguous_format
    net = net.to(memory_format=memory)
    choices = cfg.choices(choices_of or phase)
    if ph.distill and teacher is None:
        raise ConfigError(f"phase {phase} distils from the full network: pass its teacher")
    result = train_phase(
        net,
        choices,
        train,
        passes=ph.subnets_per_step if passes is None else passes,
        seed=derive_seed(seed, "ofa", phase),
        train_data=splits.train,
        eval_data=splits.holdout,
        calibration=splits.calibration,
        checkpoint_dir=checkpoints,
        teacher=teacher.to(memory_format=memory) if ph.distill and teacher is not None else None,
        kd_ratio=cfg.kd_ratio,
        hooks=hooks,
        fingerprint_extra={
            "phase": phase,
            "choices": to_dict(choices),
            "space": net.config.to_dict(),
            "kd_ratio": cfg.kd_ratio if ph.distill else None,
            "data": to_dict(cfg.data),
            "seed": seed,
            "plain_kernels": plain_kernels,
        },
        dist_context=dist,
        progress=progress,
    )
    net.set_max_net()
    return net.to(memory_format=torch.contiguous_format), result


@ofa_stage(
    name="once_for_all_train@{phase}",
    flags=["phase", "data", "init", "teacher", "out", "checkpoints", "metrics", "history"],
    track=_phase,
    distributed=lambda ctx: init_distributed(_phase(ctx).train.device),
)
def main(ctx: StageContext) -> None:
    args, cfg = ctx.args, ctx.config
    ph = _phase(ctx)
    if ph.init is not None and args.init is None:
        raise ConfigError(
            f"phase {args.phase} starts from phase {ph.init}: pass --init <its directory>"
        )
    if ph.distill and args.teacher is None:
        raise ConfigError(f"phase {args.phase} distils from the full network: pass --teacher")
    splits = load_splits(cfg, args.data)
    init = None
    if ph.init is not None:
        init, meta = load_supernet(args.init)
        if meta.get("phase") != ph.init:
            raise CheckpointError(
                f"{args.init} holds phase {meta.get('phase')!r}, but {args.phase} starts from {ph.init!r}"
            )
    teacher = None
    if ph.distill:
        teacher, meta = load_supernet(args.teacher)
        if meta.get("phase") != "full":
            raise CheckpointError(
                f"{args.teacher} is not the full network (phase {meta.get('phase')!r})"
            )
    net, result = run_phase(
        cfg,
        args.phase,
        splits=splits,
        init=init,
        teacher=teacher,
        checkpoints=args.checkpoints,
        dist=ctx.dist,
        hooks=(ctx.epoch_logger(),),
    )
    final = result.final
    train = cfg.phase_train(args.phase)
    steps_per_epoch = math.ceil(len(splits.train) / train.batch_size)
    steps = train.steps if train.steps is not None else steps_per_epoch * (train.epochs or 0)
    p = args.phase
    recorded = sum(r["epoch_seconds"] for r in result.history)
    # epochs this invocation trained (a resumed run reloads the earlier ones)
    spent = sum(
        r["epoch_seconds"] for r in result.history if r["epoch"] > result.resumed_from_epoch
    )
    metrics = {
        f"{p}/max/holdout_accuracy": final["eval_max_accuracy"],
        f"{p}/min/holdout_accuracy": final["eval_min_accuracy"],
        f"{p}/train_seconds": recorded,
        f"{p}/steps": float(steps),
        f"{p}/epochs": steps / steps_per_epoch,
        f"{p}/subnets_per_step": float(ph.subnets_per_step),
        f"{p}/subnet_updates": float(steps * ph.subnets_per_step),
        f"{p}/train_images": float(len(splits.train)),
        # a resumed run counts the epochs it resumed with the time they took when they ran
        f"time/train_{p}": stage_seconds(ctx.started, recorded, spent),
    }
    if ctx.is_main:
        save_supernet(
            net,
            args.out,
            phase=args.phase,
            profile=ctx.profile,
            choices=to_dict(cfg.choices(args.phase)),
            metrics=metrics,
        )
        ctx.save_config(ph, args.out / "config.json")
    ctx.finish(
        metrics,
        history=result.history,
        summary=f"{p}: holdout accuracy max {metrics[f'{p}/max/holdout_accuracy']:.2f}% "
        f"min {metrics[f'{p}/min/holdout_accuracy']:.2f}% -> {args.out}",
    )


if __name__ == "__main__":
    raise SystemExit(main())
