from __future__ import annotations

import pytest
import torch
from torch import nn

from common.compress import MagnitudePruneConfig, MaskHook, prune_, sensitivity_scan
from common.compress.prune import density_schedule, scaled_config
from common.config import ConfigError, from_dict
from common.data.fixtures import tiny_array_dataset
from common.models import create_model
from common.train import TrainConfig, Trainer


def test_density_mode_keeps_exactly_the_largest_weights() -> None:
    model = create_model("lenet300")
    original = model.ip1.weight.detach().clone()
    masks, report = prune_(model, MagnitudePruneConfig("density", 0.1, {"ip3": 0.5}))
    assert {r.name: r.kept for r in report.layers} == {"ip1": 23520, "ip2": 3000, "ip3": 500}
    kept = original[masks["ip1"]].abs()
    dropped = original[~masks["ip1"]].abs()
    assert kept.min() >= dropped.max()
    assert int((model.ip1.weight != 0).sum()) == 23520


def test_quality_mode_threshold_is_quality_times_std() -> None:
    model = create_model("lenet300")
    std = float(model.ip2.weight.detach().std())
    _, report = prune_(model, MagnitudePruneConfig("quality", 1.5))
    row = next(r for r in report.layers if r.name == "ip2")
    assert row.threshold == pytest.approx(1.5 * std)
    assert row.quality == pytest.approx(1.5, rel=1e-6)


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="density must be in"):
        from_dict(MagnitudePruneConfig, {"method": "density", "value": 1.5})
    with pytest.raises(KeyError, match="matches no layer"):
        prune_(create_model("lenet300"), MagnitudePruneConfig("density", 0.5, {"fc9": 0.1}))


def test_regex_overrides() -> None:
    _, report = prune_(
        create_model("lenet5"), MagnitudePruneConfig("density", 0.1, {"conv[0-9]": 0.5})
    )
    assert {r.name: round(r.density, 2) for r in report.layers} == {
        "conv1": 0.5,
        "conv2": 0.5,
        "ip1": 0.1,
        "ip2": 0.1,
    }


def test_pruned_layers_keep_exact_sparsity_through_retraining() -> None:
    model = create_model("lenet5")
    masks, report = prune_(model, MagnitudePruneConfig("density", 0.2, {"conv1": 0.6}))
    before = {r.name: r.kept for r in report.layers}
    cfg = from_dict(
        TrainConfig,
        {
            "epochs": 2,
            "batch_size": 16,
            "optimizer": {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-3},
            "device": "cpu",
        },
    )
    snapshot = model.ip1.weight.detach().clone()
    Trainer(
        model,
        cfg,
        train_data=tiny_array_dataset(64),
        hooks=[MaskHook(masks)],
        progress=False,
        log=lambda _m: None,
    ).fit()
    for name, module in [
        ("conv1", model.conv1),
        ("conv2", model.conv2),
        ("ip1", model.ip1),
        ("ip2", model.ip2),
    ]:
        assert int((module.weight != 0).sum()) == before[name], name
        assert torch.equal(module.weight != 0, masks[name])
    assert not torch.equal(snapshot, model.ip1.weight)  # the survivors did train


def test_iterative_schedule_and_previous_masks() -> None:
    assert density_schedule(0.08, 2) == pytest.approx([0.08**0.5, 0.08])
    cfg = MagnitudePruneConfig("density", 0.08, {"ip3": 0.26})
    half = scaled_config(cfg, 0.5)
    assert half.value == pytest.approx(0.08**0.5) and half.layers["ip3"] == pytest.approx(0.26**0.5)
    model = create_model("lenet300")
    m1, _ = prune_(model, half)
    with torch.no_grad():
        model.ip1.weight.add_(0.01 * m1["ip1"])  # perturb survivors only
    m2, _ = prune_(model, cfg, masks=m1)
    assert not (m2["ip1"] & ~m1["ip1"]).any()  # nothing pruned comes back


def test_sensitivity_scan_leaves_model_unchanged() -> None:
    model = create_model("lenet300")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []

    def evaluate(m: nn.Module) -> float:
        calls.append(int((m.ip1.weight != 0).sum()))
        return float(len(calls))

    scan = sensitivity_scan(model, evaluate, [1.0, 0.5])
    assert list(scan) == ["ip1", "ip2", "ip3"] and len(scan["ip1"]) == 2
    assert calls[:2] == [235200, 117600]
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
