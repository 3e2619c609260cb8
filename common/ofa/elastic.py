"""Elastic layers of Once-for-All (Cai et al., ICLR 2020): one set of weights, many widths and
kernel sizes (the paper's "elastic kernel size" and "elastic width" within progressive shrinking).

* :class:`ElasticDepthwiseConv2d`: a depthwise convolution stored at the largest kernel size.
  A smaller kernel is the centre crop of the next larger (already transformed) kernel, flattened
  and multiplied by a learned kernel-transformation matrix (7->5: 25x25, 5->3: 9x9) that is
  shared by all channels of the layer and initialised to the identity. The chain 7 -> 5 -> 3
  means the 3x3 kernel is derived from the *transformed* 5x5 kernel.
* :class:`ElasticConv2d` / :class:`ElasticBatchNorm2d`: a convolution (used as 1x1) and a batch
  norm stored at their largest width that run on the *first* channels (elastic expand ratio).
* :class:`ElasticMBConvBlock`: 1x1 expand -> elastic kxk depthwise -> 1x1 linear projection,
  with an active kernel size and expand ratio.
* :func:`sort_middle_channels_`: reorders a block's expanded channels by importance so the first
  channels, which every narrower sub-network keeps, are the most important ones.

The input width of every layer is read from its input tensor, so a chain of elastic layers only
needs its output widths set.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Activations the supernet may use. ReLU and ReLU6 are the only ones the int8 MCU engine runs.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu6": lambda: nn.ReLU6(inplace=False),
    "relu": lambda: nn.ReLU(inplace=False),
    "hswish": lambda: nn.Hardswish(inplace=False),
}


def build_activation(name: str) -> nn.Module:
    """A fresh activation module by name (``relu6``, ``relu`` or ``hswish``)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def centre_crop(w: Tensor, k: int) -> Tensor:
    """The central ``k x k`` window of a ``(..., K, K)`` kernel."""
    start = (w.shape[-1] - k) // 2
    return w[..., start : start + k, start : start + k]


def transform_key(k_big: int, k_small: int) -> str:
    """Name of the matrix that maps a ``k_big`` kernel's centre crop to a ``k_small`` kernel."""
    return f"{k_big}to{k_small}"


class ElasticDepthwiseConv2d(nn.Module):
    """Depthwise convolution with an elastic kernel size and number of channels.

    Args:
        channels: largest number of channels.
        kernel_sizes: the kernel sizes it can run with (odd); weights are stored at the largest.
        stride: spatial stride.
    """

    def __init__(self, channels: int, kernel_sizes: Sequence[int], stride: int = 1) -> None:
        super().__init__()
        sizes = sorted(set(kernel_sizes), reverse=True)
        if any(k <= 0 or k % 2 == 0 for k in sizes):
            raise ValueError(f"kernel sizes must be odd and positive, got {kernel_sizes}")
        self.kernel_sizes = tuple(sizes)  # descending: the order the transformations chain in
        self.max_kernel = sizes[0]
        self.channels = channels
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(channels, 1, self.max_kernel, self.max_kernel))
        # Same initialisation as nn.Conv2d for a depthwise layer (fan_in = k * k).
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        # One matrix per consecutive pair of kernel sizes, identity at the start so every smaller
        # kernel begins as the plain centre crop (the paper's initialisation).
        self.transforms = nn.ParameterDict(
            {
                transform_key(big, small): nn.Parameter(torch.eye(small * small))
                for big, small in itertools.pairwise(sizes)
            }
        )
        self.active_kernel = self.max_kernel

    def kernel(self, k: int, channels: int | None = None) -> Tensor:
        """The ``(channels, 1, k, k)`` weight used when the active kernel size is ``k``."""
        if k not in self.kernel_sizes:
            raise ValueError(f"kernel size {k} not in {self.kernel_sizes}")
        w = self.weight if channels is None else self.weight[:channels]  # (C, 1, K, K)
        for big, small in itertools.pairwise(self.kernel_sizes):
            if big == k:
                break
            crop = centre_crop(w, small)  # (C, 1, s, s)
            flat = crop.reshape(crop.shape[0], small * small)  # (C, s*s)
            # Row-vector convention: new = flat @ M^T, the same matrix for every channel.
            flat = F.linear(flat, self.transforms[transform_key(big, small)])
            w = flat.view(crop.shape)
        return w

    def forward(self, x: Tensor) -> Tensor:
        c, h, w = x.shape[1:]  # (B, C, H, W) with C <= self.channels
        k = self.active_kernel
        weight = self.kernel(k, c)  # (C, 1, k, k)
        r = k // 2
        if self.training:
            # A tap more than (size - 1) pixels from the centre only ever meets zero padding, so
            # on the small late-stage maps (2x2, 4x4) a 7x7 kernel computes the same function as
            # its centre crop, at a fraction of the cost (weight gradients of the dropped taps are
            # zero either way). Training only: evaluation runs the full kernel, so the supernet
            # and an extracted static sub-network agree bit for bit.
            r = min(r, max(h, w) - 1)
            weight = centre_crop(weight, 2 * r + 1)
        return F.conv2d(x, weight, None, self.stride, r, 1, c)

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_sizes={self.kernel_sizes}, stride={self.stride}"


class ElasticConv2d(nn.Conv2d):
    """A bias-free convolution that uses its first ``active_out`` output channels and as many
    input channels as its input has.

    Args:
        in_channels: largest number of input channels.
        out_channels: largest number of output channels.
        kernel_size: square kernel size (``padding = kernel_size // 2``).
        stride: spatial stride.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False
        )
        self.active_out = out_channels

    def active_weight(self, in_channels: int) -> Tensor:
        """The ``(active_out, in_channels, k, k)`` slice in use."""
        return self.weight[: self.active_out, :in_channels]

    def forward(self, x: Tensor) -> Tensor:
        w = self.active_weight(x.shape[1])
        return F.conv2d(x, w, None, self.stride, self.padding, self.dilation, 1)


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """Batch norm whose statistics and affine parameters are sliced to the input's channels.

    Each sub-network shares (and in training updates) the first ``C`` entries, as in the paper;
    the statistics should be recalibrated per sub-network before evaluation.
    """

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as nn.BatchNorm2d does
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or not self.track_running_stats
        # Slices of the buffers are views, so the running statistics are updated in place.
        return F.batch_norm(
            x,
            self.running_mean[:c] if self.running_mean is not None else None,
            self.running_var[:c] if self.running_var is not None else None,
            self.weight[:c] if self.weight is not None else None,
            self.bias[:c] if self.bias is not None else None,
            use_batch_stats,
            momentum,
            self.eps,
        )


class ElasticMBConvBlock(nn.Module):
    """Inverted residual block with elastic kernel size and expand ratio.

    The middle width is ``in_channels * expand`` (no rounding), which equals
    :class:`common.models.mbconv.MBConv`'s, so an active block maps one-to-one onto a static one.
    An expand ratio of 1 has no expand convolution (only allowed as the sole choice).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_sizes: depthwise kernel-size choices.
        expand_ratios: expand-ratio choices (integers).
        stride: depthwise stride.
        act: activation name (see :data:`ACTIVATIONS`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_sizes: Sequence[int],
        expand_ratios: Sequence[int],
        stride: int = 1,
        act: str = "relu6",
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.kernel_sizes = tuple(sorted(set(kernel_sizes)))
        self.expand_ratios = tuple(sorted(set(expand_ratios)))
        if 1 in self.expand_ratios and len(self.expand_ratios) > 1:
            raise ValueError("expand ratio 1 (no expand conv) cannot be mixed with others")
        max_mid = in_channels * self.expand_ratios[-1]
        self.expand: nn.Sequential | None = None
        if self.expand_ratios != (1,):
            self.expand = nn.Sequential(
                ElasticConv2d(in_channels, max_mid, 1),
                ElasticBatchNorm2d(max_mid),
                build_activation(act),
            )
        self.depthwise = nn.Sequential(
            ElasticDepthwiseConv2d(max_mid, self.kernel_sizes, stride),
            ElasticBatchNorm2d(max_mid),
            build_activation(act),
        )
        self.project = nn.Sequential(
            ElasticConv2d(max_mid, out_channels, 1), ElasticBatchNorm2d(out_channels)
        )
        self.residual = stride == 1 and in_channels == out_channels
        self.active_kernel = self.kernel_sizes[-1]
        self.active_expand = self.expand_ratios[-1]

    @property
    def active_middle(self) -> int:
        """Expanded channels of the active configuration."""
        return self.in_channels * self.active_expand

    def forward(self, x: Tensor) -> Tensor:
        if self.active_kernel not in self.kernel_sizes:
            raise ValueError(f"active kernel {self.active_kernel} not in {self.kernel_sizes}")
        if self.active_expand not in self.expand_ratios:
            raise ValueError(f"active expand {self.active_expand} not in {self.expand_ratios}")
        self.depthwise[0].active_kernel = self.active_kernel
        y = x  # (B, in, H, W)
        if self.expand is not None:
            self.expand[0].active_out = self.active_middle
            y = self.expand(y)  # (B, mid, H, W)
        y = self.depthwise(y)  # (B, mid, H/s, W/s)
        y = self.project(y)  # (B, out, H/s, W/s)
        return x + y if self.residual else y


def middle_channel_importance(block: ElasticMBConvBlock) -> Tensor:
    """L1 norm of the projection weights reading each expanded channel, shape ``(max_mid,)``.

    The projection (point-linear) conv is what the reference implementation ranks by: a channel
    whose outgoing weights are small contributes little to the block's output.
    """
    w = block.project[0].weight  # (out, max_mid, 1, 1)
    return w.detach().abs().sum(dim=(0, 2, 3))


@torch.no_grad()
def sort_middle_channels_(
    block: ElasticMBConvBlock, *, nested_widths: Sequence[int] = ()
) -> Tensor:
    """Reorder a block's expanded channels by non-increasing importance, in place.

    The expand conv's output channels and its BN, the depthwise conv and its BN, and the
    projection conv's input channels are permuted together, so the full block computes the same
    function; afterwards the first ``n`` channels are the ``n`` most important, which is what a
    narrower sub-network keeps. The kernel-transformation matrices are shared by all channels and
    need no permutation.

    Args:
        block: the block to reorder.
        nested_widths: middle widths already trained as sub-networks (e.g. 3x and 4x the input
            while 6x is added); channels inside each such prefix stay inside it, so narrower
            sub-networks keep their channels (ranked by importance within each nest level).

    Returns:
        The permutation applied (``new[i] = old[perm[i]]``).
    """
    if block.expand is None:
        raise ValueError("a block without an expand conv has no elastic middle width")
    importance = middle_channel_importance(block)
    # Lift each protected prefix above everything outside it; a prefix nested in another is
    # lifted twice, so inner prefixes stay first.
    key = importance.clone()
    lift = float(importance.sum()) + 1.0
    for w in nested_widths:
        key[:w] += lift
    perm = torch.sort(key, descending=True, stable=True).indices

    conv_e, bn_e, _ = block.expand
    conv_d, bn_d, _ = block.depthwise
    conv_p = block.project[0]
    conv_e.weight.copy_(conv_e.weight[perm])  # (mid, in, 1, 1): output channels
    conv_d.weight.copy_(conv_d.weight[perm])  # (mid, 1, K, K)
    for bn in (bn_e, bn_d):
        bn.weight.copy_(bn.weight[perm])
        bn.bias.copy_(bn.bias[perm])
        bn.running_mean.copy_(bn.running_mean[perm])
        bn.running_var.copy_(bn.running_var[perm])
    conv_p.weight.copy_(conv_p.weight[:, perm])  # (out, mid, 1, 1): input channels
    return perm
