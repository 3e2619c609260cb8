"""The Once-for-All MobileNetV3-style supernet (Cai et al., ICLR 2020).

Layout: a 3x3 stride-2 stem, a fixed first block (3x3 depthwise, no expansion), five elastic
stages and a 1x1 head before global average pooling and the classifier. Each stage keeps its
first ``d`` blocks (elastic depth, ``d`` in ``depths``); every block has its own kernel size
(``kernel_sizes``) and expand ratio (``expand_ratios``). Global pooling makes the resolution
elastic as well: any input size runs, and :meth:`OFAMobileNetV3Config.resolution_choices` lists
the sizes a training or search samples from (the paper uses 128-224 px in steps of 4).

An active sub-network is described by a JSON-serializable dict (:meth:`OFAMobileNetV3.active_config`)::

    {"ks": [k per block], "e": [expand per block], "d": [depth per stage]}

with one ``ks``/``e`` entry per elastic block of the largest network (entries of skipped blocks
are kept but unused), as in the reference implementation.

Deviations from the paper's MobileNetV3 space, chosen so sub-networks deploy on the int8 MCU
engine and reuse :mod:`common.models.mbconv`:

* one activation everywhere (ReLU6 by default) and no squeeze-and-excitation;
* no feature-mix layer between pooling and classifier (the head is one 1x1 conv, as in
  :class:`common.models.mbconv.MBConvNet`);
* the middle width is ``in * expand`` without rounding (the stage widths are multiples of 8, so
  the paper's ``make_divisible`` would not change it).

:meth:`OFAMobileNetV3.extract_subnet` therefore returns a plain
:class:`common.models.mbconv.MBConvNetSpec` and a state dict for
:func:`common.models.mbconv.build_mbconv_net` (transformed kernels baked in); the activation is
recorded in ``spec.meta["act"]`` and :func:`build_static_subnet` applies it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from common.config import ConfigError
from common.models.mbconv import (
    BlockSpec,
    MBConvNet,
    MBConvNetSpec,
    build_mbconv_net,
    make_divisible,
)
from common.ofa.elastic import (
    ACTIVATIONS,
    ElasticMBConvBlock,
    build_activation,
    sort_middle_channels_,
)

_TUPLE_FIELDS = (
    "kernel_sizes",
    "expand_ratios",
    "depths",
    "stage_widths",
    "stage_strides",
    "resolution_range",
)


@dataclass(frozen=True)
class OFAMobileNetV3Config:
    """The search space and fixed skeleton of an OFA MobileNetV3-style supernet.

    Widths are the paper's MobileNetV3 widths before ``width_mult`` (rounded to multiples of 8).
    Defaults suit a 10-class task at 32-48 px.
    """

    num_classes: int = 10
    width_mult: float = 0.5
    kernel_sizes: tuple[int, ...] = (3, 5, 7)
    expand_ratios: tuple[int, ...] = (3, 4, 6)
    depths: tuple[int, ...] = (2, 3, 4)
    act: str = "relu6"
    dropout: float = 0.0
    in_channels: int = 3
    stem_width: int = 16
    first_block_width: int = 16
    stage_widths: tuple[int, ...] = (24, 40, 80, 112, 160)
    stage_strides: tuple[int, ...] = (2, 2, 2, 1, 2)
    head_width: int = 960
    resolution_range: tuple[int, ...] = (32, 48)
    resolution_step: int = 4
    # Start every residual block as the identity (last BN's scale = 0; Goyal et al., 2017):
    # a deep supernet then trains from the first steps on small data.
    zero_init_residual: bool = True

    def __post_init__(self) -> None:
        for name in _TUPLE_FIELDS:  # YAML/JSON give lists; store tuples so the config is hashable
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if self.act not in ACTIVATIONS:
            raise ConfigError(f"act: unknown activation {self.act!r}; known: {sorted(ACTIVATIONS)}")
        if any(k <= 0 or k % 2 == 0 for k in self.kernel_sizes) or not self.kernel_sizes:
            raise ConfigError(f"kernel_sizes: need odd positive sizes, got {self.kernel_sizes}")
        if not self.expand_ratios or min(self.expand_ratios) < 2:
            raise ConfigError(f"expand_ratios: need integers >= 2, got {self.expand_ratios}")
        if not self.depths or min(self.depths) < 1:
            raise ConfigError(f"depths: need positive depths, got {self.depths}")
        if len(self.stage_widths) != len(self.stage_strides):
            raise ConfigError("stage_widths and stage_strides must have the same length")
        lo, hi = self.resolution_range
        if not 0 < lo <= hi or self.resolution_step <= 0:
            raise ConfigError(f"resolution_range/step invalid: {self.resolution_range}")

    # ------------------------------------------------------------------ derived
    @property
    def num_stages(self) -> int:
        return len(self.stage_widths)

    @property
    def stem_channels(self) -> int:
        return make_divisible(self.stem_width * self.width_mult)

    @property
    def first_block_channels(self) -> int:
        return make_divisible(self.first_block_width * self.width_mult)

    @property
    def stage_channels(self) -> tuple[int, ...]:
        return tuple(make_divisible(c * self.width_mult) for c in self.stage_widths)

    @property
    def head_channels(self) -> int:
        return make_divisible(self.head_width * self.width_mult)

    @property
    def net_id(self) -> str:
        """Name that encodes the space, in the reference repo's style (``ofa_mbv3_d234_...``)."""

        def digits(xs: Sequence[int]) -> str:
            return "".join(str(x) for x in sorted(xs))

        return (
            f"ofa_mbv3_d{digits(self.depths)}_e{digits(self.expand_ratios)}"
            f"_k{digits(self.kernel_sizes)}_w{self.width_mult:g}"
        )

    def resolution_choices(self) -> list[int]:
        """Input sizes of the elastic-resolution space, e.g. ``[32, 36, 40, 44, 48]``."""
        lo, hi = self.resolution_range
        return list(range(lo, hi + 1, self.resolution_step))

    # ------------------------------------------------------------------ (de)serialization
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for name in _TUPLE_FIELDS:
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OFAMobileNetV3Config:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise KeyError(f"unknown OFAMobileNetV3Config keys {unknown}; known: {sorted(known)}")
        return cls(**d)


class OFAMobileNetV3(nn.Module):
    """Once-for-All supernet; see the module docstring for the space and config format.

    Args:
        config: the space (defaults to :class:`OFAMobileNetV3Config`).
    """

    def __init__(self, config: OFAMobileNetV3Config | None = None) -> None:
        super().__init__()
        cfg = config or OFAMobileNetV3Config()
        self.config = cfg
        act = cfg.act
        c_stem = cfg.stem_channels
        self.stem = nn.Sequential(
            nn.Conv2d(cfg.in_channels, c_stem, 3, 2, 1, bias=False),
            nn.BatchNorm2d(c_stem),
            build_activation(act),
        )
        # Fixed 3x3 depthwise-separable block, as in MobileNetV3 (not part of the search space).
        self.first_block = ElasticMBConvBlock(
            c_stem,
            cfg.first_block_channels,
            kernel_sizes=(3,),
            expand_ratios=(1,),
            stride=1,
            act=act,
        )
        blocks: list[ElasticMBConvBlock] = []
        self.stage_block_ids: list[list[int]] = []
        cin = cfg.first_block_channels
        for cout, stride in zip(cfg.stage_channels, cfg.stage_strides, strict=True):
            ids = []
            for i in range(max(cfg.depths)):
                ids.append(len(blocks))
                blocks.append(
                    ElasticMBConvBlock(
                        cin,
                        cout,
                        kernel_sizes=cfg.kernel_sizes,
                        expand_ratios=cfg.expand_ratios,
                        stride=stride if i == 0 else 1,
                        act=act,
                    )
                )
                cin = cout
            self.stage_block_ids.append(ids)
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Sequential(
            nn.Conv2d(cin, cfg.head_channels, 1, bias=False),
            nn.BatchNorm2d(cfg.head_channels),
            build_activation(act),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.head_channels, cfg.num_classes)
        self.active_depths = [max(cfg.depths)] * cfg.num_stages
        if cfg.zero_init_residual:
            for block in self.blocks:
                if block.residual:
                    nn.init.zeros_(block.project[1].weight)

    # ------------------------------------------------------------------ active sub-network
    def active_block_ids(self) -> list[int]:
        """Indices into :attr:`blocks` of the blocks the active sub-network runs, in order."""
        pairs = zip(self.stage_block_ids, self.active_depths, strict=True)
        return [i for ids, d in pairs for i in ids[:d]]

    def set_active_subnet(
        self,
        ks: int | Sequence[int] | None = None,
        e: int | Sequence[int] | None = None,
        d: int | Sequence[int] | None = None,
    ) -> None:
        """Select a sub-network. Scalars apply to every block/stage; ``None`` keeps the current.

        Args:
            ks: kernel size per elastic block (``len(self.blocks)`` entries) or one for all.
            e: expand ratio per elastic block or one for all.
            d: depth per stage (``num_stages`` entries) or one for all.
        """
        cfg = self.config
        n = len(self.blocks)
        if ks is not None:
            for block, k in zip(self.blocks, _expand("ks", ks, n, cfg.kernel_sizes), strict=True):
                block.active_kernel = k
        if e is not None:
            for block, r in zip(self.blocks, _expand("e", e, n, cfg.expand_ratios), strict=True):
                block.active_expand = r
        if d is not None:
            self.active_depths = _expand("d", d, cfg.num_stages, cfg.depths)

    def set_max_net(self) -> None:
        """Largest kernel, expand ratio and depth everywhere."""
        c = self.config
        self.set_active_subnet(max(c.kernel_sizes), max(c.expand_ratios), max(c.depths))

    def set_min_net(self) -> None:
        """Smallest kernel, expand ratio and depth everywhere."""
        c = self.config
        self.set_active_subnet(min(c.kernel_sizes), min(c.expand_ratios), min(c.depths))

    def sample_active_subnet(self, rng: random.Random) -> dict[str, list[int]]:
        """Activate a uniformly random sub-network drawn from ``rng``; returns its config."""
        c = self.config
        n = len(self.blocks)
        self.set_active_subnet(
            ks=[rng.choice(c.kernel_sizes) for _ in range(n)],
            e=[rng.choice(c.expand_ratios) for _ in range(n)],
            d=[rng.choice(c.depths) for _ in range(c.num_stages)],
        )
        return self.active_config()

    def active_config(self) -> dict[str, list[int]]:
        """The active sub-network as ``{"ks": [...], "e": [...], "d": [...]}`` (plain ints)."""
        return {
            "ks": [int(b.active_kernel) for b in self.blocks],
            "e": [int(b.active_expand) for b in self.blocks],
            "d": [int(x) for x in self.active_depths],
        }

    def forward(self, x: Tensor) -> Tensor:
        x = self.first_block(self.stem(x))  # (B, C1, H/2, W/2)
        for i in self.active_block_ids():
            x = self.blocks[i](x)
        x = self.head(x)  # (B, head, H/32, W/32)
        x = self.pool(x).flatten(1)  # (B, head): any input size works
        return self.classifier(self.dropout(x))

    # ------------------------------------------------------------------ channel sorting
    def sort_channels_(self, *, nested_expand_ratios: Sequence[int] = ()) -> None:
        """Sort every elastic block's middle channels by importance (function unchanged).

        Args:
            nested_expand_ratios: expand ratios already trained; their channel prefixes are kept
                (see :func:`common.ofa.elastic.sort_middle_channels_`).
        """
        for block in self.blocks:
            widths = [block.in_channels * r for r in nested_expand_ratios]
            sort_middle_channels_(block, nested_widths=widths)

    # ------------------------------------------------------------------ extraction
    def active_spec(self) -> MBConvNetSpec:
        """The active sub-network as an :class:`MBConvNetSpec` (architecture only)."""
        return subnet_spec(self.config, self.active_config())

    @torch.no_grad()
    def extract_subnet(self) -> tuple[MBConvNetSpec, dict[str, Tensor]]:
        """Spec and weights of the active sub-network for :func:`build_static_subnet`.

        Weights are copied (not shared); depthwise kernels are the transformed kernels.
        """
        spec = self.active_spec()
        sd: dict[str, Tensor] = {}
        _put_module(sd, "stem", self.stem)
        _put_block(sd, "blocks.0", self.first_block)
        for j, i in enumerate(self.active_block_ids(), start=1):
            _put_block(sd, f"blocks.{j}", self.blocks[i])
        _put_module(sd, "head", self.head)
        _put_module(sd, "classifier", self.classifier)
        return spec, sd

    def get_active_subnet(self) -> MBConvNet:
        """A standalone static network computing the active sub-network's function."""
        spec, sd = self.extract_subnet()
        net = build_static_subnet(spec)
        net.load_state_dict(sd, strict=True)
        net.train(self.training)
        return net


def _expand(name: str, value: int | Sequence[int], n: int, choices: Sequence[int]) -> list[int]:
    values = [int(value)] * n if isinstance(value, int) else [int(v) for v in value]
    if len(values) != n:
        raise ValueError(f"{name}: expected {n} values, got {len(values)}")
    bad = sorted({v for v in values if v not in choices})
    if bad:
        raise ValueError(f"{name}: values {bad} not in choices {tuple(choices)}")
    return values


def _put_module(sd: dict[str, Tensor], prefix: str, module: nn.Module) -> None:
    for k, v in module.state_dict().items():
        sd[f"{prefix}.{k}"] = v.detach().clone()


def _put_bn(sd: dict[str, Tensor], prefix: str, bn: nn.BatchNorm2d, c: int) -> None:
    sd[f"{prefix}.weight"] = bn.weight[:c].detach().clone()
    sd[f"{prefix}.bias"] = bn.bias[:c].detach().clone()
    sd[f"{prefix}.running_mean"] = bn.running_mean[:c].clone()
    sd[f"{prefix}.running_var"] = bn.running_var[:c].clone()
    sd[f"{prefix}.num_batches_tracked"] = bn.num_batches_tracked.clone()


def _put_block(sd: dict[str, Tensor], prefix: str, block: ElasticMBConvBlock) -> None:
    """Write an active block under :class:`common.models.mbconv.MBConv`'s names.

    ``MBConv.body`` is ``[expand?, depthwise, project]``, each ``Sequential(conv, bn, act?)``.
    """
    mid, cin = block.active_middle, block.in_channels
    layer = 0
    if block.expand is not None:
        sd[f"{prefix}.body.0.0.weight"] = block.expand[0].weight[:mid, :cin].detach().clone()
        _put_bn(sd, f"{prefix}.body.0.1", block.expand[1], mid)
        layer = 1
    dw = block.depthwise[0].kernel(block.active_kernel, mid)  # (mid, 1, k, k)
    sd[f"{prefix}.body.{layer}.0.weight"] = dw.detach().clone()
    _put_bn(sd, f"{prefix}.body.{layer}.1", block.depthwise[1], mid)
    sd[f"{prefix}.body.{layer + 1}.0.weight"] = block.project[0].weight[:, :mid].detach().clone()
    _put_bn(sd, f"{prefix}.body.{layer + 1}.1", block.project[1], block.out_channels)


# ---------------------------------------------------------------------- config -> static net
def subnet_spec(config: OFAMobileNetV3Config, arch: dict[str, Sequence[int]]) -> MBConvNetSpec:
    """The :class:`MBConvNetSpec` of sub-network ``arch`` (an ``active_config()`` dict).

    The activation and the OFA config are kept in ``spec.meta`` (``"act"``, ``"ofa_arch"``,
    ``"ofa_space"``), so the spec alone rebuilds the network and records where it came from.
    """
    n_blocks = config.num_stages * max(config.depths)
    ks = _expand("ks", arch["ks"], n_blocks, config.kernel_sizes)
    es = _expand("e", arch["e"], n_blocks, config.expand_ratios)
    ds = _expand("d", arch["d"], config.num_stages, config.depths)
    blocks = [BlockSpec(kernel=3, expand=1, out=config.first_block_channels, stride=1)]
    per_stage = max(config.depths)
    for s, (cout, stride) in enumerate(
        zip(config.stage_channels, config.stage_strides, strict=True)
    ):
        for i in range(ds[s]):
            b = s * per_stage + i
            blocks.append(BlockSpec(ks[b], es[b], cout, stride if i == 0 else 1))
    return MBConvNetSpec(
        stem=config.stem_channels,
        blocks=tuple(blocks),
        head=config.head_channels,
        num_classes=config.num_classes,
        in_channels=config.in_channels,
        dropout=config.dropout,
        name=f"{config.net_id}-subnet",
        meta={
            "act": config.act,
            "ofa_arch": {"ks": ks, "e": es, "d": ds},
            "ofa_space": config.to_dict(),
        },
    )


def build_static_subnet(spec: MBConvNetSpec | dict[str, Any]) -> MBConvNet:
    """:func:`build_mbconv_net` plus the activation named in ``spec.meta["act"]``.

    ``MBConvNet`` always uses ReLU6; another activation replaces those modules (no weights
    involved), so the state dict layout stays the same.
    """
    net = build_mbconv_net(spec)
    act = net.spec.meta.get("act", "relu6")
    if act != "relu6":
        _replace_relu6(net, act)
    return net


@torch.no_grad()
def zero_init_residual_(net: MBConvNet) -> MBConvNet:
    """Set the last BN scale of every residual block to 0 (the block starts as the identity),
    as :class:`OFAMobileNetV3` does with ``zero_init_residual``: networks trained from scratch
    then start from the same kind of initialisation as the supernet."""
    for block in net.blocks:
        if block.residual:
            nn.init.zeros_(block.body[-1][1].weight)
    return net


def _replace_relu6(module: nn.Module, act: str) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU6):
            setattr(module, name, build_activation(act))
        else:
            _replace_relu6(child, act)


def _out_size(h: int, stride: int) -> int:
    return (h - 1) // stride + 1  # odd kernel with padding k // 2


def analytic_macs(
    config: OFAMobileNetV3Config, arch: dict[str, Sequence[int]], resolution: int
) -> int:
    """Multiply-accumulates of sub-network ``arch`` on one ``resolution x resolution`` image.

    Counts convolutions and the classifier (as :func:`common.measure.count_macs` does); the
    kernel-transformation matrices are folded into the weights at deployment and cost nothing.
    """
    spec = subnet_spec(config, arch)
    h = _out_size(resolution, 2)
    macs = h * h * spec.in_channels * spec.stem * 9
    cin = spec.stem
    for b in spec.blocks:
        mid = cin * b.expand
        if b.expand != 1:
            macs += h * h * cin * mid  # 1x1 expand at the input resolution
        h = _out_size(h, b.stride)
        macs += h * h * mid * b.kernel * b.kernel  # depthwise
        macs += h * h * mid * b.out  # 1x1 projection
        cin = b.out
    macs += h * h * cin * spec.head
    macs += spec.head * spec.num_classes
    return macs
