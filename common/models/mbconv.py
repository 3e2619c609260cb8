"""Inverted-residual (MBConv) networks described as data: MobileNetV2, ProxylessNAS, MCUNet-style.

Every mobile network the MCU and NAS papers deploy is a stem convolution, a list of MBConv blocks
(1x1 expand -> kxk depthwise -> 1x1 project, residual when shape allows) and a 1x1 head before
global pooling. :class:`MBConvNetSpec` holds exactly that list, so a searched or hand-designed
architecture is a JSON-serializable config (``spec.to_dict()``), and
:func:`build_mbconv_net` turns it into a module. Only operators the int8 MCU engine supports are
used (conv, depthwise conv, ReLU6, add, average pool, linear).

Registered builders:

* ``mobilenet_v2`` (Sandler et al. 2018): the paper's (t, c, n, s) table with a width multiplier,
  channels rounded to multiples of 8 as torchvision does.
* ``proxyless_mobile``: ProxylessNAS-Mobile (Cai et al. 2019): per-block kernels 3/5/7 and expand
  ratios 3/6 as in the published architecture (the "zero" blocks of the search are dropped),
  with a width multiplier (MCUNet's baseline ``proxyless-w0.3-r176`` uses 0.3).
* ``mcunet_style``: a hand-written network in TinyNAS's space (MCUNet, Section 3.1) following the
  pattern of its searched models (small expand ratios in the high-resolution stages, where memory
  binds; large kernels and expand ratios at low resolution). It is *not* the searched
  ``mcunet-in2``, whose config is not available offline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torch import Tensor, nn

from common.models import MODELS


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round ``v`` to a multiple of ``divisor``, never below 90% of ``v`` (torchvision's rule)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


@dataclass(frozen=True)
class BlockSpec:
    kernel: int
    expand: int
    out: int
    stride: int = 1


@dataclass(frozen=True)
class MBConvNetSpec:
    stem: int
    blocks: tuple[BlockSpec, ...]
    head: int
    num_classes: int = 10
    in_channels: int = 3
    dropout: float = 0.0
    name: str = "mbconv"
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["blocks"] = [asdict(b) for b in self.blocks]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MBConvNetSpec:
        d = dict(d)
        d["blocks"] = tuple(BlockSpec(**b) for b in d["blocks"])
        return cls(**d)


def _conv_bn(
    cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True
) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=False))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted residual: (1x1 expand) -> kxk depthwise (stride) -> 1x1 linear projection."""

    def __init__(self, cin: int, spec: BlockSpec) -> None:
        super().__init__()
        mid = cin * spec.expand
        layers: list[nn.Module] = []
        if spec.expand != 1:
            layers.append(_conv_bn(cin, mid, 1))
        layers.append(_conv_bn(mid, mid, spec.kernel, spec.stride, groups=mid))
        layers.append(_conv_bn(mid, spec.out, 1, act=False))
        self.body = nn.Sequential(*layers)
        self.residual = spec.stride == 1 and cin == spec.out

    def forward(self, x: Tensor) -> Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MBConvNet(nn.Module):
    def __init__(self, spec: MBConvNetSpec) -> None:
        super().__init__()
        self.spec = spec
        self.stem = _conv_bn(spec.in_channels, spec.stem, 3, 2)
        blocks, cin = [], spec.stem
        for b in spec.blocks:
            blocks.append(MBConv(cin, b))
            cin = b.out
        self.blocks = nn.Sequential(*blocks)
        self.head = _conv_bn(cin, spec.head, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.dropout)
        self.classifier = nn.Linear(spec.head, spec.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.head(self.blocks(self.stem(x)))  # (B, head, H/32, W/32)
        x = self.pool(x).flatten(1)  # (B, head)
        return self.classifier(self.dropout(x))


def build_mbconv_net(spec: MBConvNetSpec | dict[str, Any]) -> MBConvNet:
    return MBConvNet(spec if isinstance(spec, MBConvNetSpec) else MBConvNetSpec.from_dict(spec))


def _stages(
    stages: list[tuple[list[int], list[int], list[int], int]], width: float
) -> tuple[BlockSpec, ...]:
    """``(kernels, expands, channels, first stride)`` per stage -> scaled block list."""
    out = []
    for kernels, expands, channels, stride in stages:
        for i, (k, e, c) in enumerate(zip(kernels, expands, channels, strict=True)):
            out.append(BlockSpec(k, e, make_divisible(c * width), stride if i == 0 else 1))
    return tuple(out)


def _build(
    name: str, stem: int, stages: list, head: int, *, width: float, num_classes: int, dropout: float
) -> MBConvNet:
    """The scaled network: ``stem`` and ``stages`` channels times ``width``; ``head`` as given."""
    spec = MBConvNetSpec(
        stem=make_divisible(stem * width),
        blocks=_stages(stages, width),
        head=head,
        num_classes=num_classes,
        dropout=dropout,
        name=f"{name}-w{width:g}",
    )
    return MBConvNet(spec)


@MODELS.register("mobilenet_v2")
def mobilenet_v2(num_classes: int = 10, width: float = 1.0, dropout: float = 0.0) -> MBConvNet:
    table = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]
    stages = [([3] * n, [t] * n, [c] * n, s) for t, c, n, s in table]  # (t, c, n, s) of the paper
    head = make_divisible(1280 * max(1.0, width))  # torchvision never narrows the head
    return _build(
        "mobilenet_v2", 32, stages, head, width=width, num_classes=num_classes, dropout=dropout
    )


@MODELS.register("proxyless_mobile")
def proxyless_mobile(num_classes: int = 10, width: float = 1.0, dropout: float = 0.0) -> MBConvNet:
    # The 80 -> 96 and 192 -> 320 transitions keep the resolution (stride 1 inside a stage).
    stages = [
        ([3], [1], [16], 1),
        ([5, 3], [3, 3], [32, 32], 2),
        ([7, 3, 5, 5], [3, 3, 3, 3], [40] * 4, 2),
        ([7, 5, 5, 5, 5, 5, 5, 5], [6, 3, 3, 3, 6, 3, 3, 3], [80] * 4 + [96] * 4, 2),
        ([7, 7, 7, 7, 7], [6, 6, 3, 3, 6], [192] * 4 + [320], 2),
    ]
    head = make_divisible(1280 * max(1.0, width))
    return _build(
        "proxyless_mobile", 32, stages, head, width=width, num_classes=num_classes, dropout=dropout
    )


@MODELS.register("mcunet_style")
def mcunet_style(num_classes: int = 10, width: float = 1.0, dropout: float = 0.0) -> MBConvNet:
    stages = [
        ([3], [1], [8], 1),
        ([7, 3], [3, 3], [16, 16], 2),
        ([5, 3, 3], [3, 3, 4], [24, 24, 24], 2),
        ([7, 5, 5], [4, 4, 3], [40, 40, 40], 2),
        ([5, 5, 7], [6, 4, 4], [48, 48, 48], 1),
        ([7, 5, 7], [6, 6, 5], [96, 96, 96], 2),
        ([7], [6], [160], 1),
    ]
    head = make_divisible(320 * width)
    return _build(
        "mcunet_style", 16, stages, head, width=width, num_classes=num_classes, dropout=dropout
    )


for _builder in (mobilenet_v2, proxyless_mobile, mcunet_style):
    _builder.input_shape = (3, 96, 96)
