"""Several forward/backward passes per step, the ``before_forward`` hook, and distillation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.config import from_dict
from common.data.fixtures import tiny_array_dataset
from common.models import create_model
from common.train import TrainConfig, Trainer, TrainHook
from common.train.distill import DistillationHook, soft_cross_entropy


def _config(epochs: int = 1) -> TrainConfig:
    return from_dict(
        TrainConfig,
        {
            "epochs": epochs,
            "batch_size": 16,
            "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.0},
            "schedule": {"name": "constant"},
            "device": "cpu",
            "seed": 3,
            "eval_every": 0,
        },
    )


def _weights(model: nn.Module) -> Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _fit(passes: int, loss_scale: float) -> Tensor:
    torch.manual_seed(0)
    model = create_model("lenet300")
    Trainer(
        model,
        _config(),
        train_data=tiny_array_dataset(64, seed=1),
        loss_fn=lambda out, y: loss_scale * F.cross_entropy(out, y),
        passes_per_step=passes,
        progress=False,
    ).fit()
    return _weights(model)


def test_passes_accumulate_gradients() -> None:
    # Two identical passes add their gradients: the same step as one pass of twice the loss.
    two = _fit(passes=2, loss_scale=1.0)
    doubled = _fit(passes=1, loss_scale=2.0)
    single = _fit(passes=1, loss_scale=1.0)
    torch.testing.assert_close(two, doubled, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(two, single)


class _Record(TrainHook):
    """Replaces the inputs of pass 1 and records what each pass saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, float]] = []

    def before_forward(self, trainer, inputs, targets, pass_index):
        self.seen.append((trainer.step, pass_index, float(inputs.abs().sum())))
        return torch.zeros_like(inputs) if pass_index == 1 else None

    def extra_loss(self, trainer, inputs, targets, outputs):
        if trainer.pass_index == 1:
            assert float(inputs.abs().sum()) == 0.0  # the replaced inputs reached the model
        return None


def test_before_forward_runs_before_every_pass_and_can_replace_inputs() -> None:
    hook = _Record()
    Trainer(
        create_model("lenet300"),
        _config(),
        train_data=tiny_array_dataset(32, seed=1),
        hooks=[hook],
        passes_per_step=3,
        progress=False,
    ).fit()
    assert [(s, p) for s, p, _ in hook.seen] == [(s, p) for s in range(2) for p in range(3)]
    assert all(total > 0 for _, _, total in hook.seen)  # each pass starts from the real batch


def test_passes_per_step_must_be_positive() -> None:
    with pytest.raises(ValueError, match="passes_per_step"):
        Trainer(
            create_model("lenet300"), _config(), train_data=tiny_array_dataset(8), passes_per_step=0
        )


def test_soft_cross_entropy_matches_hard_labels_and_entropy() -> None:
    logits = torch.randn(5, 7)
    y = torch.tensor([0, 3, 6, 2, 2])
    one_hot = F.one_hot(y, 7).float()
    torch.testing.assert_close(soft_cross_entropy(logits, one_hot), F.cross_entropy(logits, y))
    p = F.softmax(logits, dim=1)
    entropy = -(p * p.log()).sum(dim=1).mean()
    torch.testing.assert_close(soft_cross_entropy(logits, p), entropy)


class _Counting(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        return self.net(x)


def test_distillation_runs_the_teacher_once_per_step_and_adds_the_loss() -> None:
    torch.manual_seed(0)
    teacher = _Counting(create_model("lenet300"))
    hook = DistillationHook(teacher, ratio=0.5)
    result = Trainer(
        create_model("lenet300"),
        _config(),
        train_data=tiny_array_dataset(48, seed=1),
        hooks=[hook],
        passes_per_step=2,
        progress=False,
    ).fit()
    assert teacher.calls == 3  # 48 samples / batch 16, one teacher forward per step
    assert result.history[0]["train_kd_loss"] > 0
    assert not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
