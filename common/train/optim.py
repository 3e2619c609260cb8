"""Optimizers and per-step learning-rate schedules built from :mod:`common.train.config`.

The schedule is a pure function of the global step (:func:`lr_at`), so resuming only needs the
step counter: there is no scheduler object whose pickled state could go stale.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from common.train.config import OptimizerConfig, ScheduleConfig


def build_optimizer(params: Iterable[Any], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """``params`` may be parameters or param-group dicts (e.g. no weight decay on biases)."""
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            nesterov=cfg.nesterov,
        )
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)


def lr_factor(
    cfg: ScheduleConfig, step: int, *, steps_per_epoch: int, total_steps: int, base_lr: float
) -> float:
    """Multiplier of the base learning rate at global ``step`` (0-based)."""
    warmup = cfg.warmup_steps or round(cfg.warmup_epochs * steps_per_epoch)
    epoch = step // max(steps_per_epoch, 1)
    if cfg.name == "constant":
        factor = 1.0
    elif cfg.name == "cosine":
        span = max(total_steps - warmup, 1)
        t = min(max(step - warmup, 0) / span, 1.0)
        floor = cfg.min_lr / base_lr
        factor = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
    elif cfg.name == "step":
        factor = cfg.gamma ** (epoch // cfg.step_epochs)
    elif cfg.name == "multistep":
        factor = cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    elif cfg.name == "inv":
        factor = (1.0 + cfg.gamma * step) ** (-cfg.power)
    elif cfg.name == "inverse_sqrt":
        factor = math.sqrt(max(warmup, 1) / max(step + 1, warmup, 1))
    else:  # pragma: no cover - the config's Literal forbids it
        raise ValueError(cfg.name)
    if warmup and step < warmup:
        factor *= (step + 1) / warmup
    return factor


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> float:
    """Set every group's lr to ``initial_lr * factor``; returns the first group's lr."""
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
        group["lr"] = group["initial_lr"] * factor
    return optimizer.param_groups[0]["lr"]
