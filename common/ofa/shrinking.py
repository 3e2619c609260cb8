"""Progressive shrinking as a schedule and a loop (Cai et al., ICLR 2020, Section 3.3, Appendix B).

One *budget* sets every phase's length: the full network trains ``full`` steps (or epochs) at
scale 1, and each later phase a share of that in the paper's proportions (full : kernel : depth
: width = 180 : 125 : 25 + 125 : 25 + 125 epochs, the 5 warm-up epochs of each phase included),
times a budget ``scale`` (the budget-trend experiment trains 1x, 2x, 4x ... the same schedule).
The baseline without progressive shrinking (``nops``: every choice elastic at once, from the
same full network) gets exactly as many *sub-network updates* (one sub-network's forward and
backward pass) as the shrinking phases together: :func:`phase_lengths` computes both and makes
the two counts equal (if the sum is not a multiple of the baseline's sub-networks per step, the
one-pass kernel phase gives up the remainder, a few steps at most).

:func:`train_phase` is one phase of the loop, shared by every supernet trained this way (the
Once-for-All replication, TinyNAS): start from the previous phase's weights, sort the expanded
channels before a width phase, sample ``passes`` sub-networks per step from the phase's choices,
distil from the full network, and evaluate the largest and smallest sub-networks at the end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from torch import nn

from common.config import ConfigError, bounds
from common.ofa.training import ElasticChoices, SubnetEvaluator, SubnetSampler, extreme_archs
from common.train import TrainConfig, Trainer

if TYPE_CHECKING:
    from torch import Tensor
    from torch.utils.data import Dataset

    from common.ofa.supernet import OFAMobileNetV3
    from common.train.distributed import DistContext
    from common.train.trainer import TrainHook, TrainResult

# The paper's phase lengths in epochs (Appendix B; the reference code: 120 + 5 warm-up epochs).
PAPER_PROPORTIONS: dict[str, float] = {
    "full": 180,
    "kernel": 125,
    "depth1": 25,
    "depth2": 125,
    "expand1": 25,
    "expand2": 125,
}


@dataclass(frozen=True)
class PhaseConfig:
    """One training phase: which choices are elastic, how many sub-networks per step. Its
    length comes from the budget (:class:`ShrinkingBudget`), not from ``train``."""

    kernel_sizes: list[int]
    expand_ratios: list[int]
    depths: list[int]
    train: TrainConfig
    subnets_per_step: int = field(default=1, metadata=bounds(ge=1))
    init: str | None = None  # the phase whose weights this one starts from (None: random)
    distill: bool = True  # knowledge distillation from the ``full`` phase's network
    sort_channels: bool = False  # sort expanded channels by importance first (width phases)
    label: str = ""


@dataclass(frozen=True)
class ShrinkingBudget:
    """How long every phase trains: ``full`` ``unit`` s for the full network at scale 1 and
    ``proportions[phase] / proportions["full"]`` of it for each progressive-shrinking phase."""

    full: int = field(metadata=bounds(ge=1))
    unit: Literal["steps", "epochs"] = "steps"
    proportions: dict[str, float] = field(default_factory=lambda: dict(PAPER_PROPORTIONS))

    def __post_init__(self) -> None:
        if "full" not in self.proportions:
            raise ConfigError("budget.proportions: needs `full` (the share the others are of)")
        bad = {k: v for k, v in self.proportions.items() if not v > 0}
        if bad:
            raise ConfigError(f"budget.proportions: shares must be > 0, got {bad}")

    def length(self, phase: str, scale: float = 1.0) -> int:
        """The length of ``phase`` (in ``unit``) at budget ``scale`` (at least 1)."""
        if phase not in self.proportions:
            raise ConfigError(
                f"budget.proportions: no share for phase {phase!r} "
                f"(have {', '.join(self.proportions)})"
            )
        share = self.proportions[phase] / self.proportions["full"]
        return max(1, round(self.full * scale * share))

    def train_config(self, train: TrainConfig, length: int) -> TrainConfig:
        """``train`` with its length set to ``length`` ``unit`` s."""
        if self.unit == "steps":
            return dataclasses.replace(train, epochs=None, steps=length)
        return dataclasses.replace(train, epochs=length, steps=None)


def phase_lengths(
    budget: ShrinkingBudget,
    passes: Mapping[str, int],
    *,
    shrinking: Sequence[str],
    joint: str = "nops",
    scale: float = 1.0,
) -> dict[str, int]:
    """Every phase's length at ``scale``: ``full`` and the ``shrinking`` phases from the budget's
    proportions, ``joint`` (the baseline without progressive shrinking) so that
    ``lengths[joint] * passes[joint] == sum(lengths[p] * passes[p] for p in shrinking)``.

    ``passes`` is each phase's sub-networks per step. Raises ``ConfigError`` when the counts
    cannot be made equal (no one-pass shrinking phase to take the remainder).
    """
    lengths = {"full": budget.length("full", scale)}
    for p in shrinking:
        lengths[p] = budget.length(p, scale)
    k = int(passes[joint])
    total = subnet_updates(lengths, passes, shrinking)
    rem = total % k
    if rem:
        ones = [p for p in shrinking if int(passes[p]) == 1]
        if not ones:
            raise ConfigError(
                f"phases.{joint}.subnets_per_step ({k}) does not divide the shrinking phases' "
                f"{total} sub-network updates and no phase has one sub-network per step to "
                f"absorb the remainder: make {joint}'s subnets_per_step 1, or a divisor of "
                "the phases' subnets_per_step"
            )
        p = ones[0]
        lengths[p] += -rem if lengths[p] > rem else k - rem
        total = subnet_updates(lengths, passes, shrinking)
    lengths[joint] = total // k
    return lengths


def subnet_updates(
    lengths: Mapping[str, int], passes: Mapping[str, int], phases: Sequence[str]
) -> int:
    """Sub-network updates of ``phases`` (length x sub-networks per step), in the budget's unit."""
    return sum(int(lengths[p]) * int(passes[p]) for p in phases)


def freeze_kernel_transforms_(net: nn.Module) -> nn.Module:
    """Fix every kernel-transformation matrix at its current value (identity in a fresh
    supernet): a smaller kernel is then the plain centre of the larger one, the ablation of the
    paper's transformation matrices (Section 3.3, Fig. 4)."""
    found = False
    for m in net.modules():
        transforms = getattr(m, "transforms", None)
        if isinstance(transforms, nn.ParameterDict):
            for p in transforms.values():
                p.requires_grad_(False)
            found = True
    if not found:
        raise ValueError("the network has no kernel-transformation matrices")
    return net


def train_phase(
    net: OFAMobileNetV3,
    choices: ElasticChoices,
    train: TrainConfig,
    *,
    passes: int,
    seed: int,
    train_data: Dataset,
    eval_data: Dataset | None,
    calibration: Sequence[Tensor],
    checkpoint_dir: Any,
    teacher: nn.Module | None = None,
    kd_ratio: float = 1.0,
    hooks: Sequence[TrainHook] = (),
    fingerprint_extra: Any = None,
    dist_context: DistContext | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``net`` for one phase (see the module docstring) and return the loop's result.

    ``seed`` seeds the sub-network draws (``train.seed`` the data order); ``teacher`` (the full
    network, if given) is distilled from with weight ``kd_ratio``. The final evaluation reports
    the largest and smallest sub-networks of ``choices`` (``eval_max_accuracy``,
    ``eval_min_accuracy``) after BN recalibration on ``calibration``.
    """
    from common.train.distill import DistillationHook

    all_hooks: list[Any] = [SubnetSampler(net, choices, seed=seed)]
    if teacher is not None:
        teacher.set_max_net()  # type: ignore[operator]
        all_hooks.append(DistillationHook(teacher, ratio=kd_ratio))
    all_hooks.extend(hooks)
    evaluator = SubnetEvaluator(net, extreme_archs(net.config, choices), calibration)
    return Trainer(
        net,
        train,
        train_data=train_data,
        eval_data=eval_data,
        checkpoint_dir=checkpoint_dir,
        evaluator=evaluator,
        hooks=all_hooks,
        passes_per_step=passes,
        find_unused_parameters=True,
        fingerprint_extra=fingerprint_extra,
        dist_context=dist_context,
        progress=progress,
    ).fit()
