"""Multi-head attention: equal to PyTorch's reference module, causal, incremental == one pass."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from common.layers import MultiheadAttention


def _reference(ours: MultiheadAttention) -> nn.MultiheadAttention:
    """PyTorch's module with our weights."""
    ref = nn.MultiheadAttention(ours.embed_dim, ours.heads, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(
            torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight])
        )
        ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)
    return ref.eval()


@pytest.mark.parametrize("causal", [False, True])
def test_equals_torch_multihead_attention(causal: bool) -> None:
    torch.manual_seed(0)
    ours = MultiheadAttention(16, 4).eval()
    x = torch.randn(2, 6, 16)
    pad = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    mask = torch.ones(6, 6, dtype=torch.bool).triu(1) if causal else None
    with torch.no_grad():
        out, w = ours(x, key_padding_mask=pad, causal=causal, need_weights=True)
        ref_out, ref_w = _reference(ours)(x, x, x, key_padding_mask=pad, attn_mask=mask)
    assert torch.allclose(out, ref_out, atol=1e-5)
    assert torch.allclose(w, ref_w, atol=1e-6)
    assert w[1, :, 4:].abs().max() == 0  # padded keys get no attention


def test_causal_self_attention_ignores_the_future() -> None:
    torch.manual_seed(0)
    attn = MultiheadAttention(16, 4).eval()
    x = torch.randn(1, 8, 16)
    changed = x.clone()
    changed[:, 6:] += 1.0
    with torch.no_grad():
        a, _ = attn(x, causal=True)
        b, _ = attn(changed, causal=True)
    assert torch.equal(a[:, :6], b[:, :6]) and not torch.allclose(a[:, 6:], b[:, 6:])


@pytest.mark.parametrize("chunks", [[1] * 7, [3, 1, 3]])
def test_incremental_decoding_equals_one_pass(chunks: list[int]) -> None:
    torch.manual_seed(0)
    self_attn, cross = MultiheadAttention(16, 4).eval(), MultiheadAttention(16, 4, kdim=12).eval()
    x, memory = torch.randn(2, sum(chunks), 16), torch.randn(2, 5, 12)
    memory_pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    with torch.no_grad():
        full, _ = self_attn(x, causal=True)
        full_cross, _ = cross(full, memory, key_padding_mask=memory_pad)
        self_cache: dict[str, torch.Tensor] = {}
        cross_cache: dict[str, torch.Tensor] = {}
        parts, start = [], 0
        for n in chunks:
            h, _ = self_attn(x[:, start : start + n], causal=True, cache=self_cache)
            out, _ = cross(h, memory, key_padding_mask=memory_pad, cache=cross_cache)
            parts.append(out)
            start += n
    assert torch.allclose(torch.cat(parts, dim=1), full_cross, atol=1e-5)
    assert self_cache["k"].shape == (2, 4, sum(chunks), 4) and cross_cache["k"].shape[2] == 5


def test_reorder_cache_follows_the_selected_rows() -> None:
    torch.manual_seed(0)
    attn = MultiheadAttention(8, 2).eval()
    x = torch.randn(3, 4, 8)
    cache: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        attn(x[:, :3], causal=True, cache=cache)
        MultiheadAttention.reorder_cache(cache, torch.tensor([2, 2, 0]))
        step, _ = attn(x[[2, 2, 0], 3:], causal=True, cache=cache)
        full, _ = attn(x[[2, 2, 0]], causal=True)
    assert torch.allclose(step, full[:, 3:], atol=1e-6)
