"""Typed configs of the shared training loop (one ``train:`` block per stage in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from common.config import ConfigError, bounds


@dataclass(frozen=True)
class OptimizerConfig:
    """Which optimizer, at which base learning rate."""

    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = field(default=0.1, metadata=bounds(gt=0))
    momentum: float = field(default=0.9, metadata=bounds(ge=0, lt=1))
    weight_decay: float = field(default=0.0, metadata=bounds(ge=0))
    nesterov: bool = False
    betas: tuple[float, float] = field(default=(0.9, 0.999), metadata=bounds(ge=0, lt=1))

    def __post_init__(self) -> None:
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise ConfigError("optimizer.nesterov needs name: sgd and momentum > 0")


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule, applied per optimisation step.

    * ``constant``: the base rate.
    * ``cosine``: cosine decay from the base rate to ``min_lr`` over all steps after warm-up.
    * ``step``: multiply by ``gamma`` every ``step_epochs`` epochs.
    * ``multistep``: multiply by ``gamma`` at each epoch in ``milestones``.
    * ``inv``: Caffe's ``lr * (1 + gamma * iter) ** -power`` (its LeNet solver uses
      ``gamma: 1e-4, power: 0.75``).

    ``warmup_epochs`` ramps linearly from 0 to the scheduled rate first (fractions allowed).
    """

    name: Literal["constant", "cosine", "step", "multistep", "inv"] = "cosine"
    warmup_epochs: float = field(default=0.0, metadata=bounds(ge=0))
    step_epochs: int = field(default=30, metadata=bounds(ge=1))
    milestones: list[int] = field(default_factory=list, metadata=bounds(ge=1))
    gamma: float = field(default=0.1, metadata=bounds(gt=0))
    power: float = field(default=0.75, metadata=bounds(ge=0))
    min_lr: float = field(default=0.0, metadata=bounds(ge=0))

    def __post_init__(self) -> None:
        if list(self.milestones) != sorted(self.milestones):
            raise ConfigError(f"schedule.milestones must be increasing, got {self.milestones}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything the shared loop needs besides the model and the data.

    ``batch_size`` is the *global* batch: under ``torchrun`` each of the N processes takes
    ``batch_size / N``, so a run means the same thing on one or many processes.
    """

    epochs: int = field(default=10, metadata=bounds(ge=1))
    batch_size: int = field(default=128, metadata=bounds(ge=1))
    eval_batch_size: int = field(default=1000, metadata=bounds(ge=1))
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    label_smoothing: float = field(default=0.0, metadata=bounds(ge=0, lt=1))
    grad_clip_norm: float | None = field(default=None, metadata=bounds(gt=0))
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_workers: int = field(default=0, metadata=bounds(ge=0))
    eval_every: int = field(default=1, metadata=bounds(ge=0))
    threads: int | None = field(default=None, metadata=bounds(ge=1))

    def __post_init__(self) -> None:
        if self.schedule.warmup_epochs >= self.epochs and self.schedule.warmup_epochs > 0:
            raise ConfigError(
                f"schedule.warmup_epochs ({self.schedule.warmup_epochs}) must be below epochs ({self.epochs})"
            )
