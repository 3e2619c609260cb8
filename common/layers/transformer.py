"""Transformer layers with a choice of token mixer: attention, or Lite Transformer's long-short
range attention (LSRA).

LSRA (Wu et al., ICLR 2020, Fig. "Lite Transformer block") splits the channels in two: one half
goes through multi-head attention (the long-range, "global" branch), the other through a
convolution wrapped in linear layers, with an optional GLU input projection (the short-range,
"local" branch); the halves are concatenated. Lite Transformer also *flattens* the feed-forward
network (hidden width = model width instead of 4x): that is only the ``ffn_dim`` argument here.

Layers are pre-norm (LayerNorm before each sub-layer, residual around it) and take
``(batch, time, dim)`` tensors; decoder layers decode incrementally with a ``cache`` dict each.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.layers.attention import MultiheadAttention
from common.layers.conv1d import DynamicConv1d, LightweightConv1d

__all__ = ["ConvBranch", "DecoderLayer", "EncoderLayer", "FeedForward", "LongShortRange"]

ConvKind = Literal["lightweight", "dynamic"]
Mixer = Literal["attention", "lsra"]


class FeedForward(nn.Module):
    """``dim -> hidden -> dim`` with ReLU (``hidden = dim``: Lite Transformer's flattened FFN)."""

    def __init__(self, dim: int, hidden: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.dropout(F.relu(self.fc1(x)), self.dropout, self.training))


class ConvBranch(nn.Module):
    """LSRA's local branch: linear (2x wide + GLU when ``glu``), convolution, linear."""

    def __init__(
        self,
        dim: int,
        kernel_size: int,
        heads: int,
        *,
        kind: ConvKind = "lightweight",
        glu: bool = False,
        causal: bool = False,
        weight_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.glu = glu
        self.inp = nn.Linear(dim, 2 * dim if glu else dim)
        conv = {"lightweight": LightweightConv1d, "dynamic": DynamicConv1d}[kind]
        self.conv = conv(
            dim,
            kernel_size,
            heads,
            padding="causal" if causal else "same",
            weight_dropout=weight_dropout,
            bias=True,
        )
        self.out = nn.Linear(dim, dim)

    def forward(
        self,
        x: Tensor,
        padding_mask: Tensor | None = None,
        cache: dict[str, Tensor] | None = None,
    ) -> Tensor:
        h = self.inp(x)
        h = F.glu(h, dim=-1) if self.glu else h
        return self.out(self.conv(h, padding_mask=padding_mask, cache=cache))


class LongShortRange(nn.Module):
    """LSRA: attention on the first ``dim // 2`` channels, :class:`ConvBranch` on the rest."""

    def __init__(
        self,
        dim: int,
        heads: int,
        kernel_size: int,
        *,
        kind: ConvKind = "lightweight",
        glu: bool = False,
        causal: bool = False,
        attention_dropout: float = 0.0,
        weight_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"LSRA splits the channels in half: dim must be even, got {dim}")
        self.half = dim // 2
        self.causal = causal
        self.attn = MultiheadAttention(self.half, heads, dropout=attention_dropout)
        self.local = ConvBranch(
            self.half,
            kernel_size,
            heads,
            kind=kind,
            glu=glu,
            causal=causal,
            weight_dropout=weight_dropout,
        )

    def forward(
        self,
        x: Tensor,
        padding_mask: Tensor | None = None,
        cache: dict[str, dict[str, Tensor]] | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Returns ``(output, attention weights of the global branch or None)``."""
        left, right = x.split(self.half, dim=-1)
        global_out, weights = self.attn(
            left,
            key_padding_mask=padding_mask,
            causal=self.causal,
            cache=None if cache is None else cache.setdefault("attn", {}),
            need_weights=need_weights,
        )
        local_out = self.local(
            right,
            padding_mask=None if cache is not None else padding_mask,
            cache=None if cache is None else cache.setdefault("conv", {}),
        )
        return torch.cat([global_out, local_out], dim=-1), weights


def _mixer(mixer: Mixer, dim: int, heads: int, kernel_size: int, causal: bool, **kw) -> nn.Module:
    if mixer == "attention":
        return MultiheadAttention(dim, heads, dropout=kw.get("attention_dropout", 0.0))
    if mixer == "lsra":
        return LongShortRange(dim, heads, kernel_size, causal=causal, **kw)
    raise ValueError(f"mixer must be 'attention' or 'lsra', got {mixer!r}")


class _Layer(nn.Module):
    """What both layer kinds share: the token-mixing sub-layer (attention or LSRA) and the
    feed-forward sub-layer, each pre-norm with a residual."""

    def __init__(
        self,
        dim: int,
        heads: int,
        ffn_dim: int,
        *,
        mixer: Mixer,
        kernel_size: int,
        causal: bool,
        dropout: float,
        lsra: dict,
    ) -> None:
        super().__init__()
        self.mixer_kind = mixer
        self.causal = causal
        self.mix_norm = nn.LayerNorm(dim)
        self.mixer = _mixer(mixer, dim, heads, kernel_size, causal, **lsra)
        self.dropout = dropout
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, ffn_dim, dropout=dropout)

    def _feed_forward(self, x: Tensor) -> Tensor:
        return x + F.dropout(self.ffn(self.ffn_norm(x)), self.dropout, self.training)

    def _mix(
        self,
        x: Tensor,
        padding_mask: Tensor | None,
        cache: dict | None,
        need_weights: bool,
    ) -> tuple[Tensor, Tensor | None]:
        h = self.mix_norm(x)
        if self.mixer_kind == "attention":
            h, w = self.mixer(
                h,
                key_padding_mask=padding_mask,
                causal=self.causal,
                cache=None if cache is None else cache.setdefault("mix", {}),
                need_weights=need_weights,
            )
        else:
            h, w = self.mixer(
                h,
                padding_mask=padding_mask,
                cache=None if cache is None else cache.setdefault("mix", {}),
                need_weights=need_weights,
            )
        return x + F.dropout(h, self.dropout, self.training), w


class EncoderLayer(_Layer):
    """Pre-norm encoder layer: token mixer (attention or LSRA), then the feed-forward network."""

    def __init__(
        self,
        dim: int,
        heads: int,
        ffn_dim: int,
        *,
        mixer: Mixer = "attention",
        kernel_size: int = 3,
        dropout: float = 0.0,
        **lsra,
    ) -> None:
        super().__init__(
            dim,
            heads,
            ffn_dim,
            mixer=mixer,
            kernel_size=kernel_size,
            causal=False,
            dropout=dropout,
            lsra=lsra,
        )

    def forward(
        self, x: Tensor, padding_mask: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        x, w = self._mix(x, padding_mask, None, need_weights)
        return self._feed_forward(x), w


class DecoderLayer(_Layer):
    """Pre-norm decoder layer: causal token mixer, cross-attention to the encoder (when given
    ``memory``), feed-forward network; decodes incrementally with a ``cache``."""

    def __init__(
        self,
        dim: int,
        heads: int,
        ffn_dim: int,
        *,
        mixer: Mixer = "attention",
        kernel_size: int = 3,
        dropout: float = 0.0,
        cross_attention: bool = True,
        **lsra,
    ) -> None:
        super().__init__(
            dim,
            heads,
            ffn_dim,
            mixer=mixer,
            kernel_size=kernel_size,
            causal=True,
            dropout=dropout,
            lsra=lsra,
        )
        self.cross_norm = nn.LayerNorm(dim) if cross_attention else None
        self.cross = (
            MultiheadAttention(dim, heads, dropout=lsra.get("attention_dropout", 0.0))
            if cross_attention
            else None
        )

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        memory_padding_mask: Tensor | None = None,
        padding_mask: Tensor | None = None,
        cache: dict | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """``padding_mask`` marks padded target positions (ignored when decoding with a cache,
        where every position so far is real)."""
        x, w = self._mix(x, None if cache is not None else padding_mask, cache, need_weights)
        if self.cross is not None:
            if memory is None:
                raise ValueError("this decoder layer attends to an encoder: give memory")
            h, _ = self.cross(
                self.cross_norm(x),
                memory,
                key_padding_mask=memory_padding_mask,
                cache=None if cache is None else cache.setdefault("cross", {}),
            )
            x = x + F.dropout(h, self.dropout, self.training)
        return self._feed_forward(x), w
