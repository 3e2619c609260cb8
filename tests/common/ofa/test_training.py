"""Sub-network sampling, BN recalibration, evaluation and the training-mode kernel crop."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from common.config import from_dict
from common.data.fixtures import tiny_array_dataset
from common.ofa.elastic import ElasticDepthwiseConv2d
from common.ofa.supernet import OFAMobileNetV3, OFAMobileNetV3Config
from common.ofa.training import (
    ElasticChoices,
    SubnetSampler,
    calibration_batches,
    evaluate_arch,
    extreme_archs,
    full_space,
    recalibrate_bn_,
    set_arch,
)
from common.train import TrainConfig, Trainer, TrainHook
from tests.common.ofa.conftest import perturb_


@pytest.mark.parametrize(
    ("size", "kernel", "stride"), [(1, 7, 1), (2, 7, 1), (3, 7, 2), (2, 5, 2), (4, 3, 1)]
)
def test_training_mode_kernel_crop_is_the_same_function(
    size: int, kernel: int, stride: int
) -> None:
    conv = ElasticDepthwiseConv2d(6, (3, 5, 7), stride)
    with torch.no_grad():
        for p in conv.transforms.values():
            p.add_(0.1 * torch.randn(p.shape))
    conv.active_kernel = kernel
    x = torch.randn(2, 6, size, size, requires_grad=True)
    conv.train()
    y_train = conv(x)
    (y_train * torch.arange(y_train.numel()).view_as(y_train)).sum().backward()
    g_x, g_w = x.grad.clone(), conv.weight.grad.clone()
    x.grad = None
    conv.weight.grad = None
    # The full kernel, as evaluation and the extracted static network run it.
    y_full = F.conv2d(x, conv.kernel(kernel, 6), None, stride, kernel // 2, 1, 6)
    (y_full * torch.arange(y_full.numel()).view_as(y_full)).sum().backward()
    torch.testing.assert_close(y_train, y_full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x.grad, g_x, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(conv.weight.grad, g_w, rtol=1e-5, atol=1e-6)


def test_recalibration_gives_the_exact_statistics_of_the_data() -> None:
    bn = nn.BatchNorm2d(3, momentum=0.1)
    bn.running_mean.fill_(5.0)
    model = nn.Sequential(bn)
    batches = [torch.randn(8, 3, 4, 4) * 2 + 1 for _ in range(4)]
    recalibrate_bn_(model, batches)
    data = torch.cat(batches)  # equal batch sizes: the mean of batch means is the global mean
    torch.testing.assert_close(bn.running_mean, data.mean(dim=(0, 2, 3)))
    batch_vars = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in batches])
    torch.testing.assert_close(bn.running_var, batch_vars.mean(0))
    assert bn.momentum == 0.1 and not model.training


def test_recalibration_needs_data() -> None:
    with pytest.raises(ValueError, match="at least one batch"):
        recalibrate_bn_(nn.Sequential(nn.BatchNorm2d(2)), [])


def test_choices_sample_within_and_reject_outside(tiny_config: OFAMobileNetV3Config) -> None:
    choices = ElasticChoices((3, 5), (6,), (3, 4), (32, 40))
    rng = random.Random(0)
    for _ in range(20):
        a = choices.sample(tiny_config, rng)
        assert set(a["ks"]) <= {3, 5} and set(a["e"]) == {6} and set(a["d"]) <= {3, 4}
        assert a["r"] in (32, 40)
    with pytest.raises(ValueError, match="not in the supernet's space"):
        ElasticChoices((9,), (6,), (4,), (32,)).check_within(tiny_config)


class _Seen(TrainHook):
    def __init__(self, net: OFAMobileNetV3) -> None:
        self.net = net
        self.archs: list[tuple] = []

    def extra_loss(self, trainer, inputs, targets, outputs):
        a = self.net.active_config()
        self.archs.append(
            (trainer.epoch, trainer.step, tuple(a["ks"]), tuple(a["d"]), inputs.shape[-1])
        )
        return None


def _sampled(seed: int) -> list[tuple]:
    cfg = OFAMobileNetV3Config(width_mult=0.25, resolution_range=(16, 24), resolution_step=4)
    torch.manual_seed(0)
    net = OFAMobileNetV3(cfg)
    seen = _Seen(net)
    train = from_dict(
        TrainConfig,
        {"epochs": 2, "batch_size": 8, "optimizer": {"lr": 0.01}, "device": "cpu", "eval_every": 0},
    )
    Trainer(
        net,
        train,
        train_data=tiny_array_dataset(16, channels=3, size=24, seed=1),
        hooks=[SubnetSampler(net, full_space(cfg), seed=seed), seen],
        passes_per_step=2,
        progress=False,
    ).fit()
    return seen.archs


def test_sampler_is_seeded_varies_per_pass_and_resizes_per_step() -> None:
    a, b, c = _sampled(1), _sampled(1), _sampled(2)
    assert a == b and a != c
    assert len(a) == 2 * 2 * 2  # epochs x steps x passes
    assert len({x[2:4] for x in a}) > 1  # different sub-networks
    for i in range(0, len(a), 2):  # the two passes of a step share the resolution
        assert a[i][4] == a[i + 1][4] and a[i][4] in (16, 20, 24)


def test_evaluate_arch_leaves_the_supernet_unchanged(tiny_config: OFAMobileNetV3Config) -> None:
    torch.manual_seed(0)
    net = perturb_(OFAMobileNetV3(tiny_config)).eval()
    net.set_active_subnet(ks=5, e=4, d=3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    was = net.active_config()
    data = tiny_array_dataset(24, channels=3, size=40, seed=3)
    calib = calibration_batches(data, images=16, batch_size=8, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=None, sampler=[torch.arange(24)])
    arch = extreme_archs(tiny_config, full_space(tiny_config))["min"]
    m = evaluate_arch(net, arch, calibration=calib, eval_loader=loader)
    assert 0.0 <= m["accuracy"] <= 100.0
    assert net.active_config() == was
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    # Same as doing it by hand: extract, recalibrate at the arch's resolution, evaluate.
    set_arch(net, arch)
    sub = net.get_active_subnet()
    r = arch["r"]
    recalibrate_bn_(sub, [F.interpolate(x, size=(r, r), mode="bilinear") for x in calib])
    x, y = data[torch.arange(24)]
    acc = (sub(F.interpolate(x, size=(r, r), mode="bilinear")).argmax(1) == y).float().mean() * 100
    assert m["accuracy"] == pytest.approx(float(acc))


@pytest.mark.parametrize("resolution", [16, 24, 40])
def test_kernel_cropped_copy_for_evaluation_is_the_same_function(
    tiny_config: OFAMobileNetV3Config, resolution: int
) -> None:
    from common.ofa.training import crop_kernels_for_resolution

    torch.manual_seed(0)
    net = perturb_(OFAMobileNetV3(tiny_config)).eval()
    net.set_max_net()
    sub = net.get_active_subnet().eval()
    fast = crop_kernels_for_resolution(sub, resolution).eval()
    ks = [b.body[-2][0].kernel_size[0] for b in fast.blocks]
    assert min(ks) < 7 or resolution == 40  # the late 7x7 kernels were cropped at small inputs
    assert [b.body[-2][0].kernel_size[0] for b in sub.blocks][-1] == 7  # the original is intact
    x = torch.randn(3, 3, resolution, resolution)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), sub(x), rtol=1e-4, atol=1e-5)
