"""Lightweight and dynamic convolutions against a naive per-position reference, causality, and
incremental decoding."""

from __future__ import annotations

import pytest
import torch

from common.layers import DynamicConv1d, LightweightConv1d

KINDS = [LightweightConv1d, DynamicConv1d]


def naive(conv, x: torch.Tensor) -> torch.Tensor:
    """The definition, one output at a time: y[b,t,c] = sum_k w[b,t,head(c),k] x[b,t+k-left,c]."""
    b, t, c = x.shape
    k, heads, left = conv.kernel_size, conv.heads, conv.left
    group = c // heads
    y = torch.zeros_like(x)
    for bi in range(b):
        for ti in range(t):
            if isinstance(conv, DynamicConv1d):
                w = conv.kernel_proj(x[bi, ti]).view(heads, k)
            else:
                w = conv.weight
            if conv.weight_softmax:
                w = w.softmax(-1)
            for ci in range(c):
                for ki in range(k):
                    src = ti + ki - left
                    if 0 <= src < t:
                        y[bi, ti, ci] += w[ci // group, ki] * x[bi, src, ci]
    return y if conv.bias is None else y + conv.bias


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("padding", ["same", "causal"])
@pytest.mark.parametrize("softmax", [True, False])
def test_equals_the_naive_reference(kind, padding: str, softmax: bool) -> None:
    torch.manual_seed(0)
    conv = kind(8, kernel_size=5, heads=2, padding=padding, weight_softmax=softmax, bias=True)
    torch.nn.init.normal_(conv.bias)
    x = torch.randn(2, 7, 8)
    with torch.no_grad():
        assert torch.allclose(conv(x), naive(conv, x), atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_causal_output_ignores_the_future(kind) -> None:
    torch.manual_seed(0)
    conv = kind(8, kernel_size=7, heads=4, padding="causal")
    x = torch.randn(1, 9, 8)
    changed = x.clone()
    changed[:, 5:] = torch.randn(1, 4, 8)  # positions 5.. change
    with torch.no_grad():
        a, b = conv(x), conv(changed)
    assert torch.equal(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])
    same = kind(8, kernel_size=7, heads=4, padding="same")
    with torch.no_grad():  # the centred kernel does read ahead
        assert not torch.allclose(same(x)[:, :5], same(changed)[:, :5])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("chunks", [[1] * 9, [4, 1, 3, 1]])
def test_incremental_decoding_equals_one_pass(kind, chunks: list[int]) -> None:
    torch.manual_seed(0)
    conv = kind(8, kernel_size=4, heads=2, padding="causal", bias=True)
    x = torch.randn(3, sum(chunks), 8)
    cache: dict[str, torch.Tensor] = {}
    parts, start = [], 0
    with torch.no_grad():
        full = conv(x)
        for n in chunks:
            parts.append(conv(x[:, start : start + n], cache=cache))
            start += n
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-6)
    assert cache["inputs"].shape == (3, 3, 8)  # only the last kernel_size - 1 inputs are kept


def test_padding_is_zeroed_and_weight_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    conv = LightweightConv1d(4, kernel_size=3, heads=1, weight_dropout=0.5)
    x = torch.randn(1, 5, 4)
    mask = torch.tensor([[False, False, False, True, True]])
    conv.eval()
    with torch.no_grad():
        masked = conv(x, padding_mask=mask)
        zeroed = conv(x.masked_fill(mask[..., None], 0.0))
        assert torch.equal(masked, zeroed)
        assert torch.equal(conv(x), conv(x))  # no dropout in eval
    conv.train()
    outs = {conv(x).sum().item() for _ in range(8)}
    assert len(outs) > 1  # DropConnect on the kernel while training


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="multiple of heads"):
        LightweightConv1d(6, heads=4)
    with pytest.raises(ValueError, match="odd kernel_size"):
        DynamicConv1d(4, kernel_size=4, padding="same")
    conv = LightweightConv1d(4, kernel_size=3, padding="same")
    with pytest.raises(ValueError, match="causal"):
        conv(torch.zeros(1, 2, 4), cache={})
