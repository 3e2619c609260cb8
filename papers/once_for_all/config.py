"""Typed configuration of the Once-for-All stages (a profile of ``papers/once_for_all/params.yaml``).

* ``space``: the supernet (:class:`common.ofa.OFAMobileNetV3Config`): the paper's choices
  (kernel {3, 5, 7}, expand {3, 4, 6}, depth {2, 3, 4}) at a width and resolution range scaled
  to the profile.
* ``data``: which images train, recalibrate, measure the predictor's sub-networks (held out
  from the training images, as the paper's 10K validation images) and test.
* ``phases``: the training phases in order. ``full`` trains the largest network (the teacher);
  progressive shrinking then enables kernel, depth and width choices phase by phase, each
  starting from the previous phase's weights (``init``); ``nops`` is the ablation's baseline:
  from the full network, every choice elastic at once.
* ``predictor``, ``latency``, ``mcu_table``, ``search``, ``baseline``, ``ablation``: the
  specialisation stages.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from common.config import ConfigError, bounds
from common.ofa import EvolutionConfig, OFAMobileNetV3Config
from common.ofa.shrinking import PhaseConfig, ShrinkingBudget, phase_lengths
from common.ofa.training import ElasticChoices
from common.train import TrainConfig


@dataclass(frozen=True)
class DataConfig:
    """Images for each use. Counts are subsets drawn with the profile's seed (None: all)."""

    dataset: Literal["colour_digits", "imagenet", "imagefolder"] = "colour_digits"
    root: str | None = None  # imagefolder/imagenet: the directory with train/ and val/
    train_images: int | None = field(default=None, metadata=bounds(ge=1))
    holdout_images: int = field(default=2000, metadata=bounds(ge=1))
    calibration_images: int = field(default=1000, metadata=bounds(ge=1))
    calibration_batch: int = field(default=250, metadata=bounds(ge=1))
    test_images: int | None = field(default=None, metadata=bounds(ge=1))
    channels_last: bool = True  # faster depthwise convolutions on CPU


@dataclass(frozen=True)
class PredictorConfig:
    """The [arch, accuracy] dataset and the MLP trained on it."""

    samples: int = field(default=200, metadata=bounds(ge=10))  # sub-networks measured
    valid_fraction: float = field(default=0.2, metadata=bounds(gt=0, lt=1))
    hidden: int = field(default=400, metadata=bounds(ge=1))
    layers: int = field(default=3, metadata=bounds(ge=1))
    epochs: int = field(default=300, metadata=bounds(ge=1))
    lr: float = field(default=1e-3, metadata=bounds(gt=0))
    weight_decay: float = field(default=1e-4, metadata=bounds(ge=0))
    batch_size: int = field(default=64, metadata=bounds(ge=1))


@dataclass(frozen=True)
class LatencyConfig:
    """The lookup table measured on this machine (batch 1)."""

    repeats: int = field(default=30, metadata=bounds(ge=3))
    threads: int = field(default=1, metadata=bounds(ge=1))
    validate_archs: int = field(default=12, metadata=bounds(ge=2))  # whole-network checks


@dataclass(frozen=True)
class McuTableConfig:
    """The Cortex-M7 instruction lookup table (:class:`common.ofa.mcu_cost.McuInstructionTable`):
    ``build_archs`` sub-networks of the trained supernet (chosen greedily from random ones to
    cover the most operator signatures) are deployed and profiled per operator to build it,
    ``validate_archs`` uniformly random ones check it; each measurement calibrates on the first
    ``calibration_images`` calibration images."""

    build_archs: int = field(default=8, metadata=bounds(ge=1))
    validate_archs: int = field(default=4, metadata=bounds(ge=1))
    calibration_images: int = field(default=250, metadata=bounds(ge=1))
    seed: int = 0


@dataclass(frozen=True)
class TargetConfig:
    """One deployment target: a constraint on MACs, latency (ms, this CPU), MCU peak SRAM (kB)
    or millions of Cortex-M7 instructions (``mcu_minstr``, the MCU instruction table).

    ``scale: range`` gives the limit as a fraction of the space's range on this machine (0: the
    smallest sub-network's cost, 1: the largest's), for costs that depend on the machine
    (latency): the same profile then asks for a comparable target everywhere.
    """

    metric: Literal["macs", "latency_ms", "sram_kb", "mcu_minstr"]
    limit: float = field(metadata=bounds(gt=0))
    label: str = ""
    scale: Literal["absolute", "range"] = "absolute"

    def __post_init__(self) -> None:
        if self.scale == "range" and not 0 < self.limit <= 1:
            raise ConfigError(
                f"limit: with scale: range it is a fraction in (0, 1], got {self.limit}"
            )


@dataclass(frozen=True)
class SearchConfig:
    """Deployment targets and the search. With ``match_family``, one MACs target per member of
    the MobileNetV3 family (``baseline.family_widths``) is added, its limit that member's MACs
    (targets ``mbv3_w<width>``): OFA against MobileNetV3 at equal MACs, as in Table 1; those
    searched architectures are also trained from scratch by the scratch stage."""

    targets: dict[str, TargetConfig] = field(default_factory=dict)
    match_family: bool = True
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    finetune: TrainConfig | None = None  # short fine-tune of each specialised sub-network


@dataclass(frozen=True)
class BaselineConfig:
    """Networks trained from scratch: a MobileNetV3-style family and the searched archs.

    The family is MobileNetV3-Large's block pattern (kernels, expand ratios, depths: a member of
    the OFA space) at several width multipliers of the space's width, at the largest resolution.
    ``train`` is the from-scratch budget (by default the ``full`` phase's schedule).
    """

    family_widths: list[float] = field(default_factory=lambda: [0.75, 1.0, 1.25])
    train: TrainConfig | None = None  # None: the full phase's schedule


@dataclass(frozen=True)
class AblationConfig:
    """The PS ablation (Fig. 7) as a replicated experiment.

    * The fixed grid: every (depth, expand, kernel) at the largest resolution, uniform over the
      network, and the paper's reference point (D, W, K).
    * ``seeds``: independent replicates at the profile's budget (scale 1): each trains its own
      full network, progressive shrinking and the baseline without it, with that seed for the
      weights, the data order and the sub-network draws. The pipeline's own supernets are the
      replicate of the profile's ``seed``.
    * ``trend_scales`` x ``trend_seeds``: the same experiment at other budgets (the budget's
      lengths times the scale): does the gain appear and grow with training?
    * ``interference``: per seed at scale 1, the largest sub-network trained alone (from the full
      network, as many steps as the baseline, one sub-network each) against jointly, and the
      kernel phase with its transformation matrices fixed at identity (plain centre crops).
    * ``test_images``: the ablation's test images (a fixed random part of the test set), to
      spend its time on replicates rather than on evaluating each one more precisely.
    """

    depths: list[int] = field(default_factory=lambda: [2, 4])
    expand_ratios: list[int] = field(default_factory=lambda: [3, 6])
    kernel_sizes: list[int] = field(default_factory=lambda: [3, 7])
    reference: list[int] = field(
        default_factory=lambda: [4, 3, 3]
    )  # (D, W, K) of the paper's 74.8%
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    trend_scales: list[float] = field(default_factory=list)
    trend_seeds: list[int] = field(default_factory=lambda: [0])
    interference: bool = True
    # every measurement of the ablation on this fixed random part of the test set (None: all)
    test_images: int | None = field(default=None, metadata=bounds(ge=1))

    def __post_init__(self) -> None:
        if len(set(self.seeds)) < 2:
            raise ConfigError(
                "ablation.seeds: at least two different seeds (a standard error needs them)"
            )
        if any(not s > 0 for s in self.trend_scales):
            raise ConfigError(
                f"ablation.trend_scales: budgets must be > 0, got {self.trend_scales}"
            )

    def runs(self) -> list[tuple[float, int]]:
        """Every replicate as (budget scale, seed), scale 1 first."""
        out = [(1.0, s) for s in self.seeds]
        out += [(float(x), s) for x in self.trend_scales for s in self.trend_seeds if x != 1.0]
        return out


PS_PHASES = ("kernel", "depth1", "depth2", "expand1", "expand2")  # progressive shrinking, in order


@dataclass(frozen=True)
class OFAProfile:
    space: OFAMobileNetV3Config
    phases: dict[str, PhaseConfig]
    budget: ShrinkingBudget
    search: SearchConfig
    data: DataConfig = DataConfig()
    kd_ratio: float = field(default=1.0, metadata=bounds(ge=0))
    predictor: PredictorConfig = PredictorConfig()
    latency: LatencyConfig = LatencyConfig()
    mcu_table: McuTableConfig = McuTableConfig()
    baseline: BaselineConfig = BaselineConfig()
    ablation: AblationConfig = AblationConfig()
    seed: int = 0

    def __post_init__(self) -> None:
        needed = ("full", *PS_PHASES, "nops")
        missing = [p for p in needed if p not in self.phases]
        if missing:
            raise ConfigError(f"phases: missing {missing}; the pipeline needs {list(needed)}")
        for name, ph in self.phases.items():
            if ph.init is not None and ph.init not in self.phases:
                raise ConfigError(f"phases.{name}.init: {ph.init!r} is not a phase")
            try:
                self.choices(name).check_within(self.space)
            except ValueError as exc:
                raise ConfigError(f"phases.{name}: {exc}") from None
        if self.phases["full"].distill:
            raise ConfigError("phases.full.distill must be false: the full network is the teacher")
        self.lengths()  # the budget covers every phase and the update counts can be matched

    @property
    def final_phase(self) -> str:
        return PS_PHASES[-1]

    def choices(self, phase: str) -> ElasticChoices:
        """What ``phase`` samples from, at every resolution of the space."""
        ph = self.phases[phase]
        return ElasticChoices(
            tuple(ph.kernel_sizes),
            tuple(ph.expand_ratios),
            tuple(ph.depths),
            tuple(self.space.resolution_choices()),
        )

    def lengths(self, scale: float = 1.0) -> dict[str, int]:
        """Every phase's length (in ``budget.unit``) at budget ``scale``; ``nops`` sees as many
        sub-network updates as the shrinking phases together (:func:`common.ofa.shrinking.phase_lengths`)."""
        passes = {name: ph.subnets_per_step for name, ph in self.phases.items()}
        return phase_lengths(self.budget, passes, shrinking=PS_PHASES, joint="nops", scale=scale)

    def phase_train(
        self, phase: str, *, scale: float = 1.0, seed: int | None = None
    ) -> TrainConfig:
        """``phase``'s training settings with its length from the budget; ``seed`` (a replicate's
        other than the profile's ``seed``) replaces the data-order seed."""
        train = self.budget.train_config(self.phases[phase].train, self.lengths(scale)[phase])
        if seed is None or seed == self.seed:
            return train
        return dataclasses.replace(train, seed=seed)

    @property
    def scratch_train(self) -> TrainConfig:
        """From-scratch networks: ``baseline.train``, by default the full network's schedule and
        length (the paper trains MobileNetV3 as long as its full network)."""
        return self.baseline.train or self.phase_train("full")
