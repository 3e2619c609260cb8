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
    * ``inverse_sqrt``: fairseq's, the base rate at the end of warm-up, then decaying with the
      inverse square root of the step (``lr * sqrt(warmup / step)``).

    ``warmup_epochs`` (fractions allowed) or ``warmup_steps`` (the step-based recipes of
    fairseq) ramps linearly from 0 to the scheduled rate first.
    """

    name: Literal["constant", "cosine", "step", "multistep", "inv", "inverse_sqrt"] = "cosine"
    warmup_epochs: float = field(default=0.0, metadata=bounds(ge=0))
    warmup_steps: int = field(default=0, metadata=bounds(ge=0))
    step_epochs: int = field(default=30, metadata=bounds(ge=1))
    milestones: list[int] = field(default_factory=list, metadata=bounds(ge=1))
    gamma: float = field(default=0.1, metadata=bounds(gt=0))
    power: float = field(default=0.75, metadata=bounds(ge=0))
    min_lr: float = field(default=0.0, metadata=bounds(ge=0))

    def __post_init__(self) -> None:
        if self.warmup_epochs and self.warmup_steps:
            raise ConfigError(
                f"schedule: give warmup_epochs ({self.warmup_epochs}) or warmup_steps "
                f"({self.warmup_steps}), not both"
            )
        if self.name == "inverse_sqrt" and not (self.warmup_epochs or self.warmup_steps):
            raise ConfigError("schedule.name inverse_sqrt needs a warm-up (warmup_steps)")
        if list(self.milestones) != sorted(self.milestones):
            raise ConfigError(f"schedule.milestones must be increasing, got {self.milestones}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything the shared loop needs besides the model, the data and the task.

    Training length is ``epochs`` (passes over the training set) or ``steps`` (optimizer steps,
    for long epochs or step-based recipes), not both; neither means 10 epochs.
    ``checkpoint_every`` also writes the resumable checkpoint every that many steps inside an
    epoch, so a long epoch is never lost (0: at the end of each epoch only).

    ``batch_size`` is the *global* batch: under ``torchrun`` each of the N processes takes
    ``batch_size / N``, so a run means the same thing on one or many processes. (Token-sequence
    tasks batch by token count instead: see :class:`common.train.tasks.TokenTask`.)
    """

    epochs: int | None = field(default=None, metadata=bounds(ge=1))
    steps: int | None = field(default=None, metadata=bounds(ge=1))
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
    checkpoint_every: int = field(default=0, metadata=bounds(ge=0))
    threads: int | None = field(default=None, metadata=bounds(ge=1))

    def __post_init__(self) -> None:
        if self.epochs is not None and self.steps is not None:
            raise ConfigError(
                f"give epochs ({self.epochs}) or steps ({self.steps}) as the training length, not both"
            )
        if self.epochs is None and self.steps is None:
            object.__setattr__(self, "epochs", 10)
        if (
            self.epochs is not None
            and self.schedule.warmup_epochs >= self.epochs
            and self.schedule.warmup_epochs > 0
        ):
            raise ConfigError(
                f"schedule.warmup_epochs ({self.schedule.warmup_epochs}) must be below epochs ({self.epochs})"
            )


@dataclass(frozen=True)
class AdversarialConfig:
    """What :class:`common.train.tasks.AdversarialTask` adds to a :class:`TrainConfig` (whose
    ``optimizer`` is the generator's).

    ``r1_every``: lazy regularisation (StyleGAN2): the R1 penalty on real images every that many
    steps, scaled by it (0: never). ``ema_beta``: the generator's exponential moving average,
    ``ema <- beta * ema + (1 - beta) * G`` after every step. ``d_steps``: discriminator steps per
    generator step.
    """

    d_optimizer: OptimizerConfig = OptimizerConfig(name="adam", lr=0.002, betas=(0.0, 0.99))
    latent_dim: int = field(default=128, metadata=bounds(ge=1))
    r1_gamma: float = field(default=10.0, metadata=bounds(ge=0))
    r1_every: int = field(default=16, metadata=bounds(ge=0))
    ema_beta: float = field(default=0.999, metadata=bounds(ge=0, lt=1))
    d_steps: int = field(default=1, metadata=bounds(ge=1))
