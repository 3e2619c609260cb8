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
(no progressive order), with the same distillation and as many sub-network passes as the five
shrinking phases together.

Each phase starts from the previous phase's weights (``--init``), samples sub-networks through
:class:`common.ofa.SubnetSampler` and accumulates their gradients in the shared training loop
(``passes_per_step``), checkpoints every epoch and resumes after an interruption. The schedule
of every profile is in params.yaml; the paper's is in the ``paper`` profile.
"""

from __future__ import annotations

import math

import torch

from common.checkpoint import CheckpointError
from common.config import ConfigError, to_dict
from common.ofa.training import SubnetEvaluator, SubnetSampler, extreme_archs
from common.seed import derive_seed
from common.stage import StageContext
from common.train import Trainer, init_distributed
from common.train.distill import DistillationHook
from papers.once_for_all.config import PhaseConfig
from papers.once_for_all.stage import (
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
    ctx.seed(ph.train.seed)
    net = build_supernet(cfg, splits.num_classes)
    if ph.init is not None:
        start, meta = load_supernet(args.init)
        if meta.get("phase") != ph.init:
            raise CheckpointError(
                f"{args.init} holds phase {meta.get('phase')!r}, but {args.phase} starts from {ph.init!r}"
            )
        net.load_state_dict(start.state_dict())
    if ph.sort_channels:
        # Channels of the widths an earlier phase trained stay a prefix (nested sorting).
        trained = cfg.phases[ph.init].expand_ratios if ph.init else []
        nested = sorted(r for r in trained if r < max(cfg.space.expand_ratios))
        net.sort_channels_(nested_expand_ratios=nested)
    memory = torch.channels_last if cfg.data.channels_last else torch.contiguous_format
    net = net.to(memory_format=memory)
    choices = cfg.choices(args.phase)
    hooks: list = [SubnetSampler(net, choices, seed=derive_seed(cfg.seed, "ofa", args.phase))]
    if ph.distill:
        teacher, meta = load_supernet(args.teacher)
        if meta.get("phase") != "full":
            raise CheckpointError(
                f"{args.teacher} is not the full network (phase {meta.get('phase')!r})"
            )
        teacher.set_max_net()
        hooks.append(DistillationHook(teacher.to(memory_format=memory), ratio=cfg.kd_ratio))
    evaluator = SubnetEvaluator(net, extreme_archs(net.config, choices), splits.calibration)
    hooks.append(ctx.epoch_logger())
    result = Trainer(
        net,
        ph.train,
        train_data=splits.train,
        eval_data=splits.holdout,
        checkpoint_dir=args.checkpoints,
        evaluator=evaluator,
        hooks=hooks,
        passes_per_step=ph.subnets_per_step,
        find_unused_parameters=True,
        fingerprint_extra={
            "phase": args.phase,
            "choices": to_dict(choices),
            "space": net.config.to_dict(),
            "kd_ratio": cfg.kd_ratio if ph.distill else None,
            "data": to_dict(cfg.data),
            "seed": cfg.seed,
        },
        dist_context=ctx.dist,
    ).fit()
    final = result.final
    steps = math.ceil(len(splits.train) / ph.train.batch_size)
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
        f"{p}/epochs": float(ph.train.epochs),
        f"{p}/subnets_per_step": float(ph.subnets_per_step),
        f"{p}/subnet_passes": float(steps * ph.train.epochs * ph.subnets_per_step),
        f"{p}/train_images": float(len(splits.train)),
        # a resumed run counts the epochs it resumed with the time they took when they ran
        f"time/train_{p}": stage_seconds(ctx.started, recorded, spent),
    }
    if ctx.is_main:
        net.set_max_net()
        save_supernet(
            net.to(memory_format=torch.contiguous_format),
            args.out,
            phase=args.phase,
            profile=ctx.profile,
            choices=to_dict(choices),
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
