"""Anycost GAN's training step: killed in mid-epoch and resumed, it ends bitwise equal to an
uninterrupted run (EMA, both optimizers, the discriminator, the sub-generator sampling); and what
one step draws."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from papers.anycost_gan import channels as ch


@pytest.mark.slow
def test_kill_in_mid_epoch_and_resume_is_bitwise(tmp_path: Path) -> None:
    from tests.common.train.task_worker import assert_kill_and_resume_is_bitwise

    assert_kill_and_resume_is_bitwise("tests.papers.anycost_gan.resume_case:anycost", tmp_path)


def test_a_step_draws_resolutions_and_sub_generators_as_configured() -> None:
    from tests.papers.anycost_gan.resume_case import KW, anycost

    trainer = anycost(Path("unused"), [])
    task = trainer.task
    draws = [task.draw() for _ in range(200)]
    assert all(len(res) == 1 and res[0] in (16, 8) for _, res in draws)
    full, small = ch.uniform(16, 1.0, **KW), ch.uniform(16, 0.25, **KW)
    configs = [c for c, _ in draws]
    assert any(c == full for c in configs) and any(c == small for c in configs)
    code = task.arch(small, 3, "cpu")
    assert code.shape == (3, 20) and torch.equal(code.sum(1), torch.full((3,), 5.0))
