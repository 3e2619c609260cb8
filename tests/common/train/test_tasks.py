"""The training loop over tasks: each kind of training (classification, token sequences,
adversarial) killed with SIGKILL in the middle of an epoch, resumed from its step checkpoint,
ends bitwise equal to an uninterrupted run; epochs and steps; token batching."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from common.config import ConfigError, from_dict
from common.data.tokens import TokenBatchSampler, TokenSequences
from common.train import TrainConfig

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["classification", "tokens", "adversarial"])
def test_kill_in_mid_epoch_and_resume_is_bitwise(kind: str, tmp_path: Path) -> None:
    from tests.common.train.task_worker import assert_kill_and_resume_is_bitwise

    assert_kill_and_resume_is_bitwise(kind, tmp_path)


def test_a_resumed_run_with_other_code_would_differ(tmp_path: Path) -> None:
    """The comparison above can fail: a run with another seed ends elsewhere."""
    from tests.common.train import task_worker

    torch.set_num_threads(1)
    a = task_worker.classification(tmp_path / "a", []).fit().model.state_dict()
    task_worker.CONFIG["seed"] += 1
    try:
        b = task_worker.classification(tmp_path / "b", []).fit().model.state_dict()
    finally:
        task_worker.CONFIG["seed"] -= 1
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_training_length_in_steps(tmp_path: Path) -> None:
    from tests.common.train import task_worker

    cfg = dict(task_worker.CONFIG)
    cfg.pop("epochs")
    task_worker.CONFIG, saved = {**cfg, "steps": 7}, task_worker.CONFIG
    try:
        trainer = task_worker.classification(tmp_path, [])
        result = trainer.fit()
    finally:
        task_worker.CONFIG = saved
    assert trainer.step == 7  # 80 images in batches of 16: one epoch of 5 steps, then 2 more
    assert [r["epoch"] for r in result.history] == [1.0, 2.0]
    assert "eval_error" in result.history[-1]


def test_epochs_or_steps_not_both() -> None:
    with pytest.raises(ConfigError, match="not both"):
        from_dict(TrainConfig, {"epochs": 2, "steps": 10})
    assert from_dict(TrainConfig, {}).epochs == 10


def test_token_batches_respect_max_tokens_and_cover_every_example() -> None:
    g = torch.Generator().manual_seed(0)
    data = TokenSequences(
        [
            torch.randint(3, 50, (int(n),), generator=g)
            for n in torch.randint(1, 30, (200,), generator=g)
        ]
    )
    lengths = data.lengths()
    sampler = TokenBatchSampler(lengths, 120, shuffle=True, seed=1)
    seen = []
    for batch in sampler:
        assert max(lengths[i] for i in batch) * len(batch) <= 120
        seen += batch
    assert sorted(seen) == list(range(200))
    sampler.set_epoch(1)
    assert [b for b in sampler] != [
        b for b in TokenBatchSampler(lengths, 120, shuffle=True, seed=1)
    ]
    sampler.set_epoch(1, start=3)
    assert len(list(sampler)) == len(sampler) - 3
    batch = data.collate([data[0], data[1]])
    assert batch.inputs[:, 0].eq(data.bos_id).all()
    assert batch.ntokens == len(data[0][1]) + len(data[1][1]) + 2
    with pytest.raises(ValueError, match="max_tokens"):
        TokenBatchSampler([5, 500], 100, shuffle=False)


def test_token_update_freq_adds_the_gradients_of_the_parts() -> None:
    """update_freq splits a step's batch by rows; the summed gradients, normalised by all the
    step's tokens, equal those of the whole batch in one pass."""
    from types import SimpleNamespace

    from common.data.tokens import TokenSequences
    from common.train.tasks import TokenTask

    torch.manual_seed(0)
    seqs = [torch.randint(4, 20, (n,)) for n in (3, 5, 4, 6, 2, 5)]
    data = TokenSequences(seqs)
    batch = data.collate([data[i] for i in range(len(data))])
    model = torch.nn.Sequential(torch.nn.Embedding(20, 8), torch.nn.Linear(8, 20))
    grads = []
    for freq in (1, 3):
        model.zero_grad()
        task = TokenTask(max_tokens=64, update_freq=freq, forward=lambda m, b: m(b.inputs))
        trainer = SimpleNamespace(
            ctx=SimpleNamespace(device=torch.device("cpu"), distributed=False),
            optimizer=SimpleNamespace(zero_grad=lambda **_: None, step=lambda: None),
            ddp_model=model, model=model, config=SimpleNamespace(label_smoothing=0.1,
            grad_clip_norm=None), call_hooks=lambda *_: None,
        )  # fmt: skip
        sums: dict = {}
        loss = task.train_step(trainer, batch, sums)
        grads.append((loss, [p.grad.clone() for p in model.parameters()], sums["tokens"]))
    (l1, g1, n1), (l3, g3, n3) = grads
    assert l1 == pytest.approx(l3, rel=1e-5) and n1 == n3 == batch.ntokens
    for a, b in zip(g1, g3, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_inverse_sqrt_schedule() -> None:
    from common.train.config import ScheduleConfig
    from common.train.optim import lr_factor

    cfg = ScheduleConfig(name="inverse_sqrt", warmup_steps=4)
    f = [lr_factor(cfg, s, steps_per_epoch=10, total_steps=100, base_lr=1.0) for s in range(16)]
    assert f[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert f[15] == pytest.approx(0.5)  # sqrt(4 / 16)
    with pytest.raises(ConfigError, match="inverse_sqrt needs a warm-up"):
        ScheduleConfig(name="inverse_sqrt")
    with pytest.raises(ConfigError, match="not both"):
        ScheduleConfig(warmup_epochs=1.0, warmup_steps=3)
