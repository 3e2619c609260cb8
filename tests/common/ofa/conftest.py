"""Shared helpers for the Once-for-All tests: a tiny space and non-trivial weights."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from common.ofa.elastic import ElasticDepthwiseConv2d
from common.ofa.supernet import OFAMobileNetV3Config


@torch.no_grad()
def perturb_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN non-trivial statistics and every kernel-transformation matrix an off-identity
    part, so tests cannot pass because a freshly initialised layer happens to be an identity."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.copy_(0.5 + torch.rand(n, generator=g))
            m.bias.copy_(0.1 * torch.randn(n, generator=g))
            m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
            m.running_var.copy_(0.5 + torch.rand(n, generator=g))
        if isinstance(m, ElasticDepthwiseConv2d):
            for p in m.transforms.values():
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return module


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """These networks are tiny: intra-op threads only add synchronisation cost, which on a busy
    machine grows to seconds per forward pass."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def tiny_config() -> OFAMobileNetV3Config:
    """The default space at a quarter width: 8-40 channels per stage, head 240."""
    return OFAMobileNetV3Config(width_mult=0.25)
