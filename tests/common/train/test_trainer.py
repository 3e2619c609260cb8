from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from common.config import from_dict
from common.data.fixtures import tiny_array_dataset
from common.models import create_model
from common.train import TrainConfig, Trainer, TrainHook
from common.train.config import ScheduleConfig
from common.train.optim import lr_factor


def _config(**overrides) -> TrainConfig:
    base = {
        "epochs": 4,
        "batch_size": 16,
        "eval_batch_size": 64,
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4},
        "schedule": {"name": "cosine"},
        "seed": 7,
        "device": "cpu",
    }
    base.update(overrides)
    return from_dict(TrainConfig, base)


class _Dropout300(nn.Module):
    """LeNet-300-100 with dropout, so resuming must also restore the RNG stream."""

    def __init__(self) -> None:
        super().__init__()
        self.net = create_model("lenet300")
        self.drop = nn.Dropout(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.drop(x))


class _Interrupt(TrainHook):
    def __init__(self, at_epoch: int) -> None:
        self.at_epoch = at_epoch

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        if record["epoch"] == self.at_epoch:
            raise KeyboardInterrupt  # dies before this epoch's checkpoint is written


def _train(tmp: Path, hooks=(), model=None) -> Trainer:
    torch.manual_seed(0)
    model = model or _Dropout300()
    trainer = Trainer(
        model,
        _config(),
        train_data=tiny_array_dataset(96, seed=1),
        eval_data=tiny_array_dataset(40, seed=2),
        checkpoint_dir=tmp,
        hooks=hooks,
        progress=False,
        log=lambda _m: None,
    )
    return trainer


def test_interrupted_and_resumed_run_is_bitwise_identical(tmp_path: Path) -> None:
    full = _train(tmp_path / "a").fit()

    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "b", hooks=[_Interrupt(at_epoch=3)]).fit()
    resumed = _train(tmp_path / "b").fit()  # the stage run again: same config, same starting model

    assert resumed.resumed_from_epoch == 2
    assert len(resumed.history) == 4
    for (k, v), (_, w) in zip(
        full.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        assert torch.equal(v, w), k
    assert [r["train_loss"] for r in full.history] == [r["train_loss"] for r in resumed.history]


def test_finished_run_is_not_retrained(tmp_path: Path) -> None:
    first = _train(tmp_path).fit()
    again = _train(tmp_path).fit()
    assert again.resumed_from_epoch == 4 and again.history == first.history


def test_checkpoint_from_other_starting_weights_or_data_is_not_resumed(tmp_path: Path) -> None:
    _train(tmp_path).fit()
    torch.manual_seed(123)
    other_start = Trainer(
        _Dropout300(),
        _config(),
        train_data=tiny_array_dataset(96, seed=1),
        eval_data=tiny_array_dataset(40, seed=2),
        checkpoint_dir=tmp_path,
        progress=False,
        log=lambda _m: None,
    )
    assert other_start.fit().resumed_from_epoch == 0
    torch.manual_seed(0)
    other_data = Trainer(
        _Dropout300(),
        _config(),
        train_data=tiny_array_dataset(96, seed=5),
        eval_data=tiny_array_dataset(40, seed=2),
        checkpoint_dir=tmp_path,
        progress=False,
        log=lambda _m: None,
    )
    assert other_data.fit().resumed_from_epoch == 0


def test_checkpoint_of_another_config_is_moved_aside(tmp_path: Path) -> None:
    _train(tmp_path).fit()
    messages: list[str] = []
    other = Trainer(
        create_model("lenet300"),
        _config(epochs=2),
        train_data=tiny_array_dataset(96, seed=1),
        checkpoint_dir=tmp_path,
        progress=False,
        log=messages.append,
    ).fit()
    assert other.resumed_from_epoch == 0
    assert any("was made by another config, code or data" in m for m in messages)
    assert (tmp_path / "last.pt.stale").is_file()


def test_training_learns_and_evaluates() -> None:
    result = Trainer(
        create_model("lenet5"),
        _config(epochs=3),
        train_data=tiny_array_dataset(128, seed=1),
        eval_data=tiny_array_dataset(64, seed=2),
        progress=False,
        log=lambda _m: None,
    ).fit()
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.final["eval_error"] < 50.0  # 10 classes: chance is 90% error


class _Distill(TrainHook):
    """A distillation-style extra loss towards a fixed teacher, plus a post-step weight clamp."""

    def __init__(self) -> None:
        self.teacher = create_model("lenet300").eval()
        self.steps = 0

    def extra_loss(self, trainer, inputs, targets, outputs):
        with torch.no_grad():
            soft = self.teacher(inputs).softmax(-1)
        return {
            "kd": 0.5 * nn.functional.kl_div(outputs.log_softmax(-1), soft, reduction="batchmean")
        }

    def after_step(self, trainer) -> None:
        self.steps += 1
        with torch.no_grad():
            trainer.model.ip3.bias.clamp_(-0.01, 0.01)

    def state_dict(self) -> dict:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.steps = state["steps"]


def test_hooks_add_losses_and_touch_weights(tmp_path: Path) -> None:
    hook = _Distill()
    result = Trainer(
        create_model("lenet300"),
        _config(epochs=2),
        train_data=tiny_array_dataset(64, seed=1),
        checkpoint_dir=tmp_path,
        hooks=[hook],
        progress=False,
        log=lambda _m: None,
    ).fit()
    assert "train_kd" in result.history[0] and result.history[0]["train_kd"] > 0
    assert hook.steps == 2 * 4
    assert float(result.model.ip3.bias.detach().abs().max()) <= 0.01 + 1e-7
    restored = _Distill()
    Trainer(
        create_model("lenet300"),
        _config(epochs=2),
        train_data=tiny_array_dataset(64, seed=1),
        checkpoint_dir=tmp_path,
        hooks=[restored],
        progress=False,
        log=lambda _m: None,
    ).fit()
    assert restored.steps == 8  # hook state came back from the checkpoint


def _lr(cfg: dict, step: int, spe: int = 10, total: int = 100) -> float:
    return lr_factor(
        from_dict(ScheduleConfig, cfg), step, steps_per_epoch=spe, total_steps=total, base_lr=0.1
    )


def test_schedules() -> None:
    assert _lr({"name": "constant"}, 57) == 1.0
    assert _lr({"name": "cosine"}, 0) == 1.0
    assert _lr({"name": "cosine"}, 50) == pytest.approx(0.5)
    assert _lr({"name": "cosine", "min_lr": 0.01}, 100) == pytest.approx(0.1)
    assert _lr({"name": "step", "step_epochs": 3, "gamma": 0.5}, 65) == 0.25  # epoch 6
    assert _lr({"name": "multistep", "milestones": [2, 5], "gamma": 0.1}, 49) == pytest.approx(0.1)
    assert _lr({"name": "inv", "gamma": 1e-4, "power": 0.75}, 10000) == pytest.approx(2**-0.75)
    assert _lr({"name": "constant", "warmup_epochs": 1}, 4) == pytest.approx(0.5)
    assert math.isclose(_lr({"name": "constant", "warmup_epochs": 1}, 10), 1.0)


def test_batch_size_must_divide_across_processes() -> None:
    from common.train.distributed import DistContext

    ctx = DistContext(rank=0, world_size=3, local_rank=0, device=torch.device("cpu"))
    with pytest.raises(ValueError, match="not divisible"):
        Trainer(
            create_model("lenet300"), _config(), train_data=tiny_array_dataset(10), dist_context=ctx
        ).fit()


@pytest.mark.gpu
def test_trainer_runs_on_cuda(tmp_path: Path) -> None:
    result = Trainer(
        create_model("lenet5"),
        _config(epochs=2, device="cuda"),
        train_data=tiny_array_dataset(128, seed=1),
        eval_data=tiny_array_dataset(64, seed=2),
        checkpoint_dir=tmp_path,
        progress=False,
        log=lambda _m: None,
    ).fit()
    assert next(result.model.parameters()).is_cuda
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    resumed = Trainer(
        create_model("lenet5"),
        _config(epochs=2, device="cuda"),
        train_data=tiny_array_dataset(128, seed=1),
        checkpoint_dir=tmp_path,
        progress=False,
        log=lambda _m: None,
    ).fit()
    assert resumed.resumed_from_epoch == 2
