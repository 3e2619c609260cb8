"""Transformer layers with attention or LSRA: padding, causality, incremental decoding, the split."""

from __future__ import annotations

import pytest
import torch

from common.layers.transformer import DecoderLayer, EncoderLayer, LongShortRange

MIXERS = [
    {"mixer": "attention"},
    {"mixer": "lsra", "kind": "lightweight"},
    {"mixer": "lsra", "kind": "dynamic", "glu": True},
]


@pytest.mark.parametrize("kw", MIXERS)
def test_encoder_ignores_padding(kw: dict) -> None:
    """Real positions of a padded batch equal the same sentence encoded alone."""
    torch.manual_seed(0)
    layer = EncoderLayer(16, 2, 16, kernel_size=5, **kw).eval()
    x = torch.randn(1, 4, 16)
    padded = torch.cat([x, torch.randn(1, 3, 16)], dim=1)
    mask = torch.tensor([[False] * 4 + [True] * 3])
    with torch.no_grad():
        alone, _ = layer(x)
        batch, _ = layer(padded, padding_mask=mask)
    assert torch.allclose(batch[:, :4], alone, atol=1e-5)


@pytest.mark.parametrize("kw", MIXERS)
def test_decoder_is_causal_and_decodes_incrementally(kw: dict) -> None:
    torch.manual_seed(0)
    layers = [DecoderLayer(16, 2, 16, kernel_size=4, **kw).eval() for _ in range(2)]
    x, memory = torch.randn(2, 6, 16), torch.randn(2, 5, 16)
    memory_mask = torch.tensor([[False] * 5, [False] * 2 + [True] * 3])

    def full(inp: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            inp, _ = layer(inp, memory, memory_mask)
        return inp

    with torch.no_grad():
        out = full(x)
        changed = x.clone()
        changed[:, 4:] += 1.0
        assert torch.equal(full(changed)[:, :4], out[:, :4])  # the future is never read
        caches: list[dict] = [{} for _ in layers]
        steps = []
        for t in range(6):
            h = x[:, t : t + 1]
            for layer, cache in zip(layers, caches, strict=True):
                h, _ = layer(h, memory, memory_mask, cache=cache)
            steps.append(h)
    assert torch.allclose(torch.cat(steps, dim=1), out, atol=1e-5)


def test_lsra_gives_each_half_of_the_channels_to_one_branch() -> None:
    torch.manual_seed(0)
    lsra = LongShortRange(16, 2, 3).eval()
    x = torch.randn(1, 5, 16)
    y = x.clone()
    y[..., 8:] += 1.0  # only the local branch's channels change
    with torch.no_grad():
        a, wa = lsra(x, need_weights=True)
        b, wb = lsra(y, need_weights=True)
    assert torch.equal(a[..., :8], b[..., :8]) and torch.equal(wa, wb)
    assert not torch.allclose(a[..., 8:], b[..., 8:])
    assert wa.shape == (1, 5, 5)
    with pytest.raises(ValueError, match="even"):
        LongShortRange(15, 1, 3)
