"""Knowledge distillation as a :class:`~common.train.TrainHook` (Hinton et al., 2015).

The student is trained on ``task loss + ratio * soft cross-entropy(student, teacher)``, where the
soft target is the teacher's softmax at ``temperature``. With ``temperature = 1`` and ``ratio =
1`` this is Once-for-All's ``kd_type='ce', kd_ratio=1.0`` (the full network teaches every
sub-network during progressive shrinking).

When a step runs several forward passes over the same batch (``Trainer(passes_per_step=...)``),
the teacher runs once per step and its logits are reused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.train.trainer import TrainHook

if TYPE_CHECKING:
    from common.train.trainer import Trainer


def soft_cross_entropy(logits: Tensor, soft_targets: Tensor) -> Tensor:
    """Mean over the batch of ``-sum_c p_c log softmax(logits)_c`` for target distributions ``p``."""
    return -(soft_targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


class DistillationHook(TrainHook):
    """Adds ``ratio * T^2 * soft_cross_entropy(student / T, softmax(teacher / T))``.

    Args:
        teacher: a frozen network (kept in eval mode, never updated).
        ratio: weight of the distillation term.
        temperature: softmax temperature of both distributions (``T^2`` keeps the gradient scale).
    """

    def __init__(self, teacher: nn.Module, *, ratio: float = 1.0, temperature: float = 1.0) -> None:
        if ratio < 0 or temperature <= 0:
            raise ValueError(f"need ratio >= 0 and temperature > 0, got {ratio}, {temperature}")
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.ratio = ratio
        self.temperature = temperature
        self._cache: tuple[int, int, Tensor] | None = None  # (step, id of the inputs, logits)

    def on_fit_start(self, trainer: Trainer) -> None:
        self.teacher.to(next(trainer.model.parameters()).device)

    @torch.no_grad()
    def _teacher_logits(self, trainer: Trainer, inputs: Tensor) -> Tensor:
        key = (trainer.step, id(inputs))
        if self._cache is None or self._cache[:2] != key:
            self._cache = (*key, self.teacher(inputs))
        return self._cache[2]

    def extra_loss(
        self, trainer: Trainer, inputs: Tensor, targets: Tensor, outputs: Tensor
    ) -> dict[str, Tensor]:
        t = self.temperature
        soft = F.softmax(self._teacher_logits(trainer, inputs) / t, dim=1)
        return {"kd_loss": self.ratio * t * t * soft_cross_entropy(outputs / t, soft)}
