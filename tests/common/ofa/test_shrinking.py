"""Progressive shrinking's budget and loop (common/ofa/shrinking.py): every phase's length from
one budget in the paper's proportions, the baseline without PS at exactly as many sub-network
updates, seeded runs, and the kernel-transformation ablation."""

from __future__ import annotations

import pytest
import torch

from common.config import ConfigError, from_dict
from common.data.fixtures import tiny_array_dataset
from common.ofa.shrinking import (
    PAPER_PROPORTIONS,
    ShrinkingBudget,
    freeze_kernel_transforms_,
    phase_lengths,
    subnet_updates,
    train_phase,
)
from common.ofa.supernet import OFAMobileNetV3, OFAMobileNetV3Config
from common.ofa.training import ElasticChoices, full_space
from common.train import TrainConfig
from common.train.trainer import TrainHook

PS = ("kernel", "depth1", "depth2", "expand1", "expand2")
PASSES = {"full": 1, "kernel": 1, "depth1": 2, "depth2": 2, "expand1": 4, "expand2": 4}


@pytest.mark.parametrize("full", [1, 3, 37, 100, 180])
@pytest.mark.parametrize("scale", [0.25, 0.5, 1.0, 2.0, 8.0])
@pytest.mark.parametrize("joint", [1, 2, 3, 4])
def test_no_ps_gets_exactly_the_shrinking_phases_updates(full, scale, joint) -> None:
    budget = ShrinkingBudget(full=full)
    passes = {**PASSES, "nops": joint}
    lengths = phase_lengths(budget, passes, shrinking=PS, scale=scale)
    assert lengths["nops"] * joint == subnet_updates(lengths, passes, PS)
    assert all(v >= 1 for v in lengths.values())
    # the schedule is the paper's proportions of the full network's length
    assert lengths["full"] == max(1, round(full * scale))
    for p in PS:
        share = full * scale * PAPER_PROPORTIONS[p] / PAPER_PROPORTIONS["full"]
        slack = 0.5 + (joint if p == "kernel" else 0)  # rounding; kernel absorbs the remainder
        assert abs(lengths[p] - max(1.0, share)) <= slack + 1e-9, (p, lengths[p], share)


def test_the_paper_schedule_in_epochs() -> None:
    lengths = phase_lengths(
        ShrinkingBudget(full=180, unit="epochs"), {**PASSES, "nops": 4}, shrinking=PS
    )
    # 125 = 120 + 5 warm-up epochs; the kernel phase gives one epoch to make the counts equal
    assert lengths == {
        "full": 180,
        "kernel": 124,
        "depth1": 25,
        "depth2": 125,
        "expand1": 25,
        "expand2": 125,
        "nops": 256,
    }


def test_unmatchable_update_counts_are_refused() -> None:
    passes = {**PASSES, "kernel": 2, "nops": 4}  # no one-pass phase, 2 * odd is not divisible
    with pytest.raises(ConfigError, match="subnets_per_step"):
        phase_lengths(ShrinkingBudget(full=180, unit="epochs"), passes, shrinking=PS)
    with pytest.raises(ConfigError, match="no share for phase"):
        phase_lengths(ShrinkingBudget(full=10, proportions={"full": 1}), PASSES, shrinking=PS)
    with pytest.raises(ConfigError, match="full"):
        ShrinkingBudget(full=10, proportions={"kernel": 1.0})


def test_the_budget_sets_the_length_and_nothing_else() -> None:
    train = TrainConfig(epochs=3, batch_size=7)
    by_steps = ShrinkingBudget(full=10).train_config(train, 42)
    assert (by_steps.steps, by_steps.epochs, by_steps.batch_size) == (42, None, 7)
    by_epochs = ShrinkingBudget(full=10, unit="epochs").train_config(train, 5)
    assert (by_epochs.steps, by_epochs.epochs) == (None, 5)


class _Count(TrainHook):
    """Counts sub-network updates (forward passes in training) and the archs drawn."""

    def __init__(self, net: OFAMobileNetV3) -> None:
        self.net, self.archs = net, []

    def extra_loss(self, trainer, inputs, targets, outputs):
        a = self.net.active_config()
        self.archs.append((tuple(a["ks"]), tuple(a["e"]), tuple(a["d"]), inputs.shape[-1]))
        return None


SPACE = OFAMobileNetV3Config(
    width_mult=0.25, num_classes=4, resolution_range=(16, 24), resolution_step=8
)


def _phase(
    net: OFAMobileNetV3,
    choices: ElasticChoices,
    steps: int,
    passes: int,
    *,
    seed: int = 0,
    data_seed: int = 0,
    teacher: OFAMobileNetV3 | None = None,
) -> _Count:
    count = _Count(net)
    train = from_dict(
        TrainConfig,
        {
            "steps": steps,
            "batch_size": 8,
            "eval_batch_size": 16,
            "optimizer": {"lr": 0.05},
            "device": "cpu",
            "eval_every": 0,
            "seed": data_seed,
        },
    )
    data = tiny_array_dataset(32, channels=3, size=24, num_classes=4, seed=1)
    train_phase(
        net,
        choices,
        train,
        passes=passes,
        seed=seed,
        train_data=data,
        eval_data=data,
        calibration=[data[torch.arange(16)][0]],
        checkpoint_dir=None,
        teacher=teacher,
        hooks=[count],
        progress=False,
    )
    return count


def _choices(k=(3, 5, 7), e=(3, 4, 6), d=(2, 3, 4)) -> ElasticChoices:
    return ElasticChoices(k, e, d, (16, 24))


@pytest.mark.slow
def test_ps_and_no_ps_train_the_same_number_of_sub_network_updates() -> None:
    """Counted in training, not computed: the five shrinking phases against the baseline."""
    passes = {**PASSES, "nops": 4}
    lengths = phase_lengths(ShrinkingBudget(full=2), passes, shrinking=PS)
    phase_choices = {
        "kernel": _choices(e=(6,), d=(4,)),
        "depth1": _choices(e=(6,), d=(3, 4)),
        "depth2": _choices(e=(6,), d=(2, 3, 4)),
        "expand1": _choices(e=(4, 6)),
        "expand2": _choices(),
    }
    torch.manual_seed(0)
    teacher = OFAMobileNetV3(SPACE)
    ps_net, ps_updates = OFAMobileNetV3(SPACE), 0
    for p in PS:
        ps_updates += len(
            _phase(ps_net, phase_choices[p], lengths[p], passes[p], teacher=teacher).archs
        )
    nops = _phase(OFAMobileNetV3(SPACE), full_space(SPACE), lengths["nops"], 4, teacher=teacher)
    assert ps_updates == len(nops.archs) == subnet_updates(lengths, passes, PS)
    assert len(set(nops.archs)) > 1  # every choice elastic at once: different sub-networks


@pytest.mark.slow
def test_seeds_give_different_draws_and_the_same_seed_the_same_result() -> None:
    def run(seed: int) -> tuple[list, dict]:
        torch.manual_seed(seed)
        net = OFAMobileNetV3(SPACE)
        count = _phase(net, full_space(SPACE), 3, 2, seed=seed, data_seed=seed)
        return count.archs, {k: v.clone() for k, v in net.state_dict().items()}

    (a1, w1), (a2, w2), (b, wb) = run(1), run(1), run(2)
    assert a1 == a2 and all(torch.equal(w1[k], w2[k]) for k in w1)
    assert a1 != b
    assert any(not torch.equal(w1[k], wb[k]) for k in w1 if w1[k].is_floating_point())


@pytest.mark.slow
def test_fixed_kernel_transforms_stay_identity_and_learned_ones_move() -> None:
    def transforms(frozen: bool) -> list[torch.Tensor]:
        torch.manual_seed(0)
        net = OFAMobileNetV3(SPACE)
        if frozen:
            freeze_kernel_transforms_(net)
        _phase(net, _choices(e=(6,), d=(4,)), 3, 1)
        return [
            p.detach().clone()
            for m in net.modules()
            if hasattr(m, "transforms")
            for p in m.transforms.values()
        ]

    fixed, learned = transforms(True), transforms(False)
    assert fixed and all(torch.equal(t, torch.eye(t.shape[0])) for t in fixed)
    assert any(not torch.equal(t, torch.eye(t.shape[0])) for t in learned)
    with pytest.raises(ValueError, match="no kernel-transformation"):
        freeze_kernel_transforms_(torch.nn.Linear(2, 2))
