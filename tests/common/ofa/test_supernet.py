from __future__ import annotations

import json
import random

import pytest
import torch
from torch import nn

from common.measure import count_macs
from common.models.mbconv import MBConvNet, MBConvNetSpec
from common.ofa.supernet import (
    OFAMobileNetV3,
    OFAMobileNetV3Config,
    analytic_macs,
    build_static_subnet,
    subnet_spec,
)
from tests.common.ofa.conftest import perturb_

# "max", "min", then seeded random sub-networks, each at one resolution of the space.
ARCHS = [("max", 48), ("min", 32), (0, 36), (1, 40), (2, 44), (3, 32)]


def _activate(net: OFAMobileNetV3, which: str | int) -> dict[str, list[int]]:
    if which == "max":
        net.set_max_net()
    elif which == "min":
        net.set_min_net()
    else:
        net.sample_active_subnet(random.Random(which))
    return net.active_config()


def _supernet(config: OFAMobileNetV3Config, seed: int = 0) -> OFAMobileNetV3:
    torch.manual_seed(seed)
    return perturb_(OFAMobileNetV3(config), seed).eval()


@pytest.mark.parametrize(("which", "resolution"), ARCHS)
def test_extracted_subnet_equals_active_supernet_exactly(
    tiny_config: OFAMobileNetV3Config, which: str | int, resolution: int
) -> None:
    net = _supernet(tiny_config)
    arch = _activate(net, which)
    sub = net.get_active_subnet()
    assert isinstance(sub, MBConvNet)
    assert not sub.training
    x = torch.randn(2, 3, resolution, resolution)
    with torch.no_grad():
        y_super, y_sub = net(x), sub(x)
    assert y_super.shape == (2, 10)
    assert torch.equal(y_super, y_sub)
    assert sub.spec.meta["ofa_arch"] == arch


def test_min_and_max_configs(tiny_config: OFAMobileNetV3Config) -> None:
    net = OFAMobileNetV3(tiny_config)
    net.set_min_net()
    assert net.active_config() == {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5}
    net.set_max_net()
    assert net.active_config() == {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5}


def test_extracted_weights_are_copies(tiny_config: OFAMobileNetV3Config) -> None:
    net = _supernet(tiny_config)
    _activate(net, 1)
    sub = net.get_active_subnet()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = sub(x)
        for p in net.parameters():
            p.mul_(2.0)
        assert torch.equal(sub(x), before)


def test_extraction_keeps_a_non_default_activation() -> None:
    config = OFAMobileNetV3Config(width_mult=0.25, act="relu")
    net = _supernet(config)
    _activate(net, 2)
    sub = net.get_active_subnet()
    kinds = {type(m) for m in sub.modules()}
    assert nn.ReLU in kinds and nn.ReLU6 not in kinds
    x = 3.0 * torch.randn(2, 3, 32, 32)  # large inputs, so ReLU and ReLU6 would differ
    with torch.no_grad():
        assert torch.equal(net(x), sub(x))


@pytest.mark.parametrize(("which", "resolution"), [("max", 48), ("min", 32), (0, 40), (3, 36)])
def test_macs_of_extracted_subnet_match_analytic_formula(
    tiny_config: OFAMobileNetV3Config, which: str | int, resolution: int
) -> None:
    net = OFAMobileNetV3(tiny_config).eval()
    arch = _activate(net, which)
    x = torch.randn(1, 3, resolution, resolution)
    expected = analytic_macs(tiny_config, arch, resolution)
    assert count_macs(net.get_active_subnet(), x).total == expected
    # The supernet runs only the active channels: it costs the same plus the kernel
    # transformations (a (mid, 25) x (25, 25) product for 7->5, then (mid, 9) x (9, 9) for 5->3).
    extra = 0
    for i in net.active_block_ids():
        block = net.blocks[i]
        if block.active_kernel <= 5:
            extra += block.active_middle * 25 * 25
        if block.active_kernel <= 3:
            extra += block.active_middle * 9 * 9
    assert count_macs(net, x).total == expected + extra


def test_analytic_macs_hand_computed_min_net() -> None:
    # One stage, so the formula can be written out: 32 px input, width 1.
    config = OFAMobileNetV3Config(
        width_mult=1.0,
        stage_widths=(24,),
        stage_strides=(2,),
        head_width=64,
        num_classes=10,
    )
    arch = {"ks": [3] * 4, "e": [3] * 4, "d": [2]}
    stem = 16 * 16 * 3 * 16 * 9  # 3x3 stride 2 -> 16x16
    first = 16 * 16 * 16 * 9 + 16 * 16 * 16 * 16  # depthwise + projection
    block1 = 16 * 16 * 16 * 48 + 8 * 8 * 48 * 9 + 8 * 8 * 48 * 24  # stride 2 -> 8x8
    block2 = 8 * 8 * 24 * 72 + 8 * 8 * 72 * 9 + 8 * 8 * 72 * 24
    head = 8 * 8 * 24 * 64 + 64 * 10
    assert analytic_macs(config, arch, 32) == stem + first + block1 + block2 + head


def test_elastic_depth_runs_only_the_first_blocks(tiny_config: OFAMobileNetV3Config) -> None:
    net = OFAMobileNetV3(tiny_config).eval()
    depths = [2, 3, 4, 2, 3]
    net.set_active_subnet(d=depths)
    called: list[int] = []
    for i, block in enumerate(net.blocks):
        block.register_forward_hook(lambda *_a, i=i: called.append(i))
    with torch.no_grad():
        net(torch.randn(1, 3, 32, 32))
    expected = [i for ids, d in zip(net.stage_block_ids, depths, strict=True) for i in ids[:d]]
    assert called == expected
    assert len(called) == 14
    assert len(net.get_active_subnet().spec.blocks) == 1 + 14  # plus the fixed first block


def test_config_json_round_trip_rebuilds_the_same_network(
    tiny_config: OFAMobileNetV3Config,
) -> None:
    net = _supernet(tiny_config)
    arch = _activate(net, 0)
    space_json = json.dumps(tiny_config.to_dict())
    arch_json = json.dumps(arch)

    space = OFAMobileNetV3Config.from_dict(json.loads(space_json))
    assert space == tiny_config
    twin = OFAMobileNetV3(space)
    twin.set_active_subnet(**json.loads(arch_json))
    assert twin.active_config() == arch
    assert twin.active_spec() == net.active_spec()

    # The extracted network ships as spec JSON + weights and rebuilds to the same function.
    spec, state = net.extract_subnet()
    rebuilt = build_static_subnet(MBConvNetSpec.from_dict(json.loads(json.dumps(spec.to_dict()))))
    rebuilt.load_state_dict(state, strict=True)
    rebuilt.eval()
    x = torch.randn(2, 3, 40, 40)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), net(x))


def test_subnet_spec_layout(tiny_config: OFAMobileNetV3Config) -> None:
    arch = {"ks": [3, 5, 7, 7] * 5, "e": [6, 4, 3, 3] * 5, "d": [2, 2, 2, 2, 3]}
    spec = subnet_spec(tiny_config, arch)
    assert spec.stem == 8 and spec.head == 240 and spec.num_classes == 10
    assert [b.out for b in spec.blocks] == [8, 8, 8, 16, 16, 24, 24, 32, 32, 40, 40, 40]
    assert [b.stride for b in spec.blocks] == [1, 2, 1, 2, 1, 2, 1, 1, 1, 2, 1, 1]
    assert [b.kernel for b in spec.blocks[1:]] == [3, 5] * 4 + [3, 5, 7]
    assert [b.expand for b in spec.blocks[1:]] == [6, 4] * 4 + [6, 4, 3]


def test_sample_is_seeded_and_within_choices(tiny_config: OFAMobileNetV3Config) -> None:
    net = OFAMobileNetV3(tiny_config)
    a = net.sample_active_subnet(random.Random(7))
    b = net.sample_active_subnet(random.Random(7))
    c = net.sample_active_subnet(random.Random(8))
    assert a == b and a != c
    assert set(a["ks"]) <= {3, 5, 7} and set(a["e"]) <= {3, 4, 6} and set(a["d"]) <= {2, 3, 4}
    assert (len(a["ks"]), len(a["e"]), len(a["d"])) == (20, 20, 5)
    # Each block draws its own values (all 20 equal has probability 3 ** -19 per list).
    assert len(set(a["ks"])) > 1 and len(set(a["e"])) > 1


def test_invalid_choices_raise(tiny_config: OFAMobileNetV3Config) -> None:
    net = OFAMobileNetV3(tiny_config)
    with pytest.raises(ValueError, match="ks"):
        net.set_active_subnet(ks=4)
    with pytest.raises(ValueError, match="expected 5"):
        net.set_active_subnet(d=[2, 3])
    with pytest.raises(KeyError, match="kernel_size"):
        OFAMobileNetV3Config.from_dict({"kernel_size": [3]})
    with pytest.raises(ValueError, match="act"):
        OFAMobileNetV3Config(act="gelu")


def test_any_resolution_runs(tiny_config: OFAMobileNetV3Config) -> None:
    assert tiny_config.resolution_choices() == [32, 36, 40, 44, 48]
    assert OFAMobileNetV3Config(resolution_range=(128, 224)).resolution_choices()[-1] == 224
    assert len(OFAMobileNetV3Config(resolution_range=(128, 224)).resolution_choices()) == 25
    net = OFAMobileNetV3(tiny_config).eval()
    net.set_min_net()
    with torch.no_grad():
        for r in (36, 44, 57):
            assert net(torch.randn(1, 3, r, r)).shape == (1, 10)


def test_net_id_encodes_the_space(tiny_config: OFAMobileNetV3Config) -> None:
    assert tiny_config.net_id == "ofa_mbv3_d234_e346_k357_w0.25"


def test_supernet_channel_sorting_keeps_the_max_net(tiny_config: OFAMobileNetV3Config) -> None:
    net = _supernet(tiny_config)
    net.set_max_net()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = net(x)
        w_before = net.blocks[0].project[0].weight.clone()
        net.sort_channels_()
        after = net(x)
    assert not torch.equal(net.blocks[0].project[0].weight, w_before)
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)


def test_train_mode_subnet_matches_and_trains_only_active_weights(
    tiny_config: OFAMobileNetV3Config,
) -> None:
    net = _supernet(tiny_config).train()
    _activate(net, "min")
    sub = net.get_active_subnet()
    assert sub.training
    x = torch.randn(4, 3, 32, 32)
    y = net(x)
    # Batch statistics over the active channels only: same function as the static network.
    torch.testing.assert_close(y, sub(x), rtol=0, atol=1e-5)
    y.square().sum().backward()
    active = set(net.active_block_ids())
    for i, block in enumerate(net.blocks):
        grad = block.expand[0].weight.grad  # (6 * in, in, 1, 1)
        if i not in active:
            assert grad is None
        else:
            mid = block.active_middle  # e = 3: the other 3 * in rows get no gradient
            assert torch.count_nonzero(grad[mid:]) == 0
            assert torch.count_nonzero(grad[:mid]) > 0


def test_fresh_supernet_small_kernels_are_centre_crops(tiny_config: OFAMobileNetV3Config) -> None:
    net = OFAMobileNetV3(tiny_config)
    for block in net.blocks:
        dw = block.depthwise[0]
        assert torch.equal(dw.kernel(5), dw.weight[:, :, 1:6, 1:6])
        assert torch.equal(dw.kernel(3), dw.weight[:, :, 2:5, 2:5])
    # The fixed first block has a single 3x3 kernel and no transformation matrix.
    assert len(net.first_block.depthwise[0].transforms) == 0
