"""Multi-head attention for encoder-decoder and decoder-only models, with incremental decoding.

Plain PyTorch (Vaswani et al. 2017): ``embed_dim`` split over ``heads``, scaled dot products, a
key padding mask, an optional causal mask, attention dropout. It returns the attention weights on
request (averaged over heads or per head): Lite Transformer's analysis measures how far the
attention of its long-range branch reaches.

Incremental decoding (one or more new positions per call, as greedy and beam search do) keeps a
``cache`` dict per layer: self-attention appends the new keys and values; cross-attention
computes the encoder's keys and values once. :meth:`MultiheadAttention.reorder_cache` follows
beam search when it reorders hypotheses.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MultiheadAttention"]


class MultiheadAttention(nn.Module):
    """Multi-head attention over ``(batch, time, embed_dim)`` tensors.

    Args:
        embed_dim: model width of queries, keys and values.
        heads: number of heads (``embed_dim`` must be a multiple).
        dropout: dropout on the attention weights while training.
        kdim: width of the keys/values input when it differs (cross-attention); default
            ``embed_dim``.
    """

    def __init__(
        self, embed_dim: int, heads: int, *, dropout: float = 0.0, kdim: int | None = None
    ) -> None:
        super().__init__()
        if embed_dim % heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be a multiple of heads ({heads})")
        self.embed_dim, self.heads, self.head_dim = embed_dim, heads, embed_dim // heads
        self.dropout = dropout
        kdim = kdim or embed_dim
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(kdim, embed_dim)
        self.v_proj = nn.Linear(kdim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            nn.init.xavier_uniform_(proj.weight, gain=1 / math.sqrt(2))
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def _split(self, x: Tensor) -> Tensor:
        """``(B, T, E)`` -> ``(B, H, T, D)``."""
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        query: Tensor,
        key_value: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        causal: bool = False,
        cache: dict[str, Tensor] | None = None,
        need_weights: bool = False,
        average_heads: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``query`` ``(B, Tq, E)`` to ``key_value`` ``(B, Tk, kdim)``.

        Args:
            key_value: ``None`` for self-attention.
            key_padding_mask: ``(B, Tk)``, True at padded keys (never attended to). With a
                self-attention cache it covers every key so far.
            causal: position ``i`` of the query attends to keys ``<= i`` (decoder
                self-attention); with a cache the new positions follow the cached ones.
            cache: incremental decoding state kept by the caller (see the module doc).
            need_weights: also return the attention weights, ``(B, Tq, Tk)`` averaged over
                heads, or ``(B, H, Tq, Tk)`` with ``average_heads=False``.

        Returns:
            ``(output (B, Tq, E), weights or None)``.
        """
        self_attention = key_value is None
        source = query if self_attention else key_value
        q = self._split(self.q_proj(query)) / math.sqrt(self.head_dim)
        if cache is not None and not self_attention and "k" in cache:
            k, v = cache["k"], cache["v"]  # the encoder's, computed on the first call
        else:
            k, v = self._split(self.k_proj(source)), self._split(self.v_proj(source))
            if cache is not None and self_attention and "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            if cache is not None:
                cache["k"], cache["v"] = k, v
        scores = q @ k.transpose(-1, -2)  # (B, H, Tq, Tk)
        tq, tk = scores.shape[-2:]
        if causal:
            offset = tk - tq  # cached positions come first
            future = torch.ones(tq, tk, dtype=torch.bool, device=scores.device).triu(offset + 1)
            scores = scores.masked_fill(future, float("-inf"))
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)
        dropped = F.dropout(weights, self.dropout, self.training)
        out = (dropped @ v).transpose(1, 2).reshape(query.shape[0], tq, self.embed_dim)
        out = self.out_proj(out)
        if not need_weights:
            return out, None
        return out, weights.mean(dim=1) if average_heads else weights

    @staticmethod
    def reorder_cache(cache: dict[str, Tensor], order: Tensor) -> None:
        """Keep the cache of the batch rows ``order`` (beam search selecting hypotheses)."""
        for key, value in cache.items():
            cache[key] = value.index_select(0, order)
