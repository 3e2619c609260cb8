from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from common.ofa.elastic import (
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticDepthwiseConv2d,
    ElasticMBConvBlock,
    middle_channel_importance,
    sort_middle_channels_,
)
from tests.common.ofa.conftest import perturb_


def test_fresh_kernels_are_plain_centre_crops() -> None:
    conv = ElasticDepthwiseConv2d(8, (3, 5, 7))
    w = conv.weight  # (8, 1, 7, 7)
    assert torch.equal(conv.kernel(7), w)
    assert torch.equal(conv.kernel(5), w[:, :, 1:6, 1:6])
    assert torch.equal(conv.kernel(3), w[:, :, 2:5, 2:5])
    assert torch.equal(conv.kernel(3, channels=5), w[:5, :, 2:5, 2:5])


def test_transform_matrices_shapes_and_identity_init() -> None:
    conv = ElasticDepthwiseConv2d(8, (3, 5, 7))
    assert sorted(conv.transforms) == ["5to3", "7to5"]
    assert torch.equal(conv.transforms["7to5"], torch.eye(25))
    assert torch.equal(conv.transforms["5to3"], torch.eye(9))
    # The paper's count of extra parameters per layer: 25 * 25 + 9 * 9.
    assert sum(p.numel() for p in conv.transforms.values()) == 706


def test_smaller_kernels_are_chained_matrix_transforms_of_centre_crops() -> None:
    conv = perturb_(ElasticDepthwiseConv2d(6, (3, 5, 7)))
    m75, m53 = conv.transforms["7to5"].detach(), conv.transforms["5to3"].detach()
    w = conv.weight.detach()  # (6, 1, 7, 7)
    # Explicit per-channel computation: vec(k5) = M75 vec(crop5(w)), vec(k3) = M53 vec(crop3(k5)).
    k5 = torch.stack([(m75 @ w[c, 0, 1:6, 1:6].reshape(25)).reshape(5, 5) for c in range(6)])
    k3 = torch.stack([(m53 @ k5[c, 1:4, 1:4].reshape(9)).reshape(3, 3) for c in range(6)])
    torch.testing.assert_close(conv.kernel(5).detach()[:, 0], k5, rtol=0, atol=1e-6)
    torch.testing.assert_close(conv.kernel(3).detach()[:, 0], k3, rtol=0, atol=1e-6)
    # The matrices matter: the result is not the plain crop any more.
    assert (conv.kernel(3).detach()[:, 0] - w[:, 0, 2:5, 2:5]).abs().max() > 1e-2


def test_depthwise_forward_uses_active_kernel_and_input_channels() -> None:
    conv = perturb_(ElasticDepthwiseConv2d(8, (3, 5, 7), stride=2))
    x = torch.randn(2, 5, 9, 9)
    for k in (3, 5, 7):
        conv.active_kernel = k
        ref = F.conv2d(x, conv.kernel(k)[:5], None, 2, k // 2, 1, 5)
        assert torch.equal(conv(x), ref)
        assert conv(x).shape == (2, 5, 5, 5)


def test_small_kernel_training_reaches_matrices_but_not_outer_ring() -> None:
    conv = ElasticDepthwiseConv2d(4, (3, 5, 7))
    conv.active_kernel = 3
    conv(torch.randn(1, 4, 6, 6)).square().sum().backward()
    g = conv.weight.grad  # (4, 1, 7, 7)
    ring = g.clone()
    ring[:, :, 1:6, 1:6] = 0
    assert torch.count_nonzero(ring) == 0
    assert torch.count_nonzero(g[:, :, 2:5, 2:5]) == 4 * 9
    assert conv.transforms["7to5"].grad.abs().sum() > 0
    assert conv.transforms["5to3"].grad.abs().sum() > 0


def test_elastic_conv_uses_leading_channels() -> None:
    conv = ElasticConv2d(8, 16, 1)
    conv.active_out = 6
    x = torch.randn(2, 5, 4, 4)
    assert torch.equal(conv(x), F.conv2d(x, conv.weight[:6, :5]))


def test_elastic_bn_slices_statistics_and_updates_only_them() -> None:
    bn = perturb_(ElasticBatchNorm2d(10)).eval()
    x = torch.randn(4, 6, 3, 3)
    mean, var = bn.running_mean[:6, None, None], bn.running_var[:6, None, None]
    ref = (x - mean) / torch.sqrt(var + bn.eps) * bn.weight[:6, None, None] + bn.bias[
        :6, None, None
    ]
    torch.testing.assert_close(bn(x), ref, rtol=0, atol=1e-6)

    before = bn.running_mean.clone()
    bn.train()
    bn(x)
    assert torch.equal(bn.running_mean[6:], before[6:])
    expected = 0.9 * before[:6] + 0.1 * x.mean(dim=(0, 2, 3))
    torch.testing.assert_close(bn.running_mean[:6], expected, rtol=0, atol=1e-6)


def _block() -> ElasticMBConvBlock:
    block = ElasticMBConvBlock(8, 8, kernel_sizes=(3, 5, 7), expand_ratios=(3, 4, 6))
    return perturb_(block).eval()


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_sorting_keeps_full_width_function_and_orders_channels(kernel: int) -> None:
    block = _block()
    block.active_kernel = kernel
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        before = block(x)
    importance = middle_channel_importance(block)
    assert not bool((importance[:-1] >= importance[1:]).all())  # not sorted to begin with

    perm = sort_middle_channels_(block)

    assert not torch.equal(perm, torch.arange(48))
    ranked = importance[perm]
    assert bool((ranked[:-1] >= ranked[1:]).all())
    # Recomputed on the permuted weights (summation order may differ in the last bit).
    after_importance = middle_channel_importance(block)
    torch.testing.assert_close(after_importance, ranked, rtol=0, atol=1e-6)
    assert bool((after_importance[:-1] >= after_importance[1:] - 1e-6).all())
    with torch.no_grad():
        after = block(x)
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)


def test_sorting_with_nested_width_keeps_the_smaller_subnet() -> None:
    x = torch.randn(2, 8, 8, 8)
    outs = {}
    for nested in ((), (24,)):
        block = _block()
        block.active_expand = 3  # middle width 24
        with torch.no_grad():
            before = block(x)
        perm = sort_middle_channels_(block, nested_widths=nested)
        with torch.no_grad():
            outs[nested] = (before, block(x))
        if nested:
            assert set(perm[:24].tolist()) == set(range(24))
            imp = middle_channel_importance(block)
            assert bool((imp[:23] >= imp[1:24] - 1e-6).all())
            assert bool((imp[24:-1] >= imp[25:] - 1e-6).all())
    before, after = outs[(24,)]
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)
    # Without the nesting constraint the 3x sub-network picks other channels and changes.
    before, after = outs[()]
    assert (after - before).abs().max() > 1e-3


def test_block_without_expand_conv_cannot_be_sorted() -> None:
    block = ElasticMBConvBlock(8, 8, kernel_sizes=(3,), expand_ratios=(1,))
    assert block.expand is None
    with pytest.raises(ValueError, match="expand"):
        sort_middle_channels_(block)
