"""Lightweight and dynamic convolutions over token sequences, in plain PyTorch.

Wu et al., "Pay Less Attention with Lightweight and Dynamic Convolutions" (ICLR 2019), the short-
range branch of Lite Transformer's long-short range attention (Wu et al., ICLR 2020). The
reference implementation ships CUDA kernels many users cannot build; these modules compute the
same operation with ``unfold`` on any device.

Both are depthwise 1-D convolutions over time whose ``channels`` are split into ``heads``
contiguous groups that share one kernel (head ``h`` covers channels ``[h*C/H, (h+1)*C/H)``):

* :class:`LightweightConv1d`: one learned kernel ``(heads, kernel_size)`` for every position;
* :class:`DynamicConv1d`: a kernel predicted at every position from that position's input by a
  linear layer, ``(batch, time, heads, kernel_size)``.

Kernels are softmax-normalised over their taps when ``weight_softmax`` (the papers' default) and
DropConnect-ed with ``weight_dropout`` while training. ``padding="same"`` centres the kernel
(encoders; odd kernel sizes), ``padding="causal"`` looks only at the current and earlier positions
(decoders), and then :meth:`forward` can also decode one position at a time with a ``cache``.
Inputs are ``(batch, time, channels)``; padded positions (``padding_mask`` True) are zeroed first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DynamicConv1d", "LightweightConv1d"]

Padding = Literal["same", "causal"]


class _HeadConv1d(nn.Module, ABC):
    """What both convolutions share: arguments, padding, windows, normalising and applying kernels
    (see the module doc for the arguments); a subclass says where its kernels come from."""

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        heads: int = 1,
        *,
        padding: Padding = "same",
        weight_softmax: bool = True,
        weight_dropout: float = 0.0,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be a multiple of heads ({heads})")
        if kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
        if padding == "same" and kernel_size % 2 == 0:
            raise ValueError(f"padding='same' needs an odd kernel_size, got {kernel_size}")
        if padding not in ("same", "causal"):
            raise ValueError(f"padding must be 'same' or 'causal', got {padding!r}")
        self.channels, self.kernel_size, self.heads = channels, kernel_size, heads
        self.padding = padding
        self.weight_softmax = weight_softmax
        self.weight_dropout = weight_dropout
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self._build_kernels()

    @property
    def left(self) -> int:
        """Positions before ``t`` the kernel reads (its tap ``k`` reads ``t + k - left``)."""
        return self.kernel_size - 1 if self.padding == "causal" else self.kernel_size // 2

    def _normalise(self, weight: Tensor) -> Tensor:
        """Softmax over the taps (last axis), then DropConnect while training."""
        if self.weight_softmax:
            weight = weight.softmax(dim=-1)
        return F.dropout(weight, self.weight_dropout, self.training)

    def _windows(self, x: Tensor) -> Tensor:
        """``(B, T, C)`` -> ``(B, T, C, K)``: the inputs each output position reads (zeros past
        the ends)."""
        right = self.kernel_size - 1 - self.left
        return F.pad(x, (0, 0, self.left, right)).unfold(1, self.kernel_size, 1)

    def _per_channel(self, weight: Tensor) -> Tensor:
        """Repeat each head's kernel over its channels: ``(..., H, K)`` -> ``(..., C, K)``."""
        return weight.repeat_interleave(self.channels // self.heads, dim=-2)

    @abstractmethod
    def _build_kernels(self) -> None:
        """Create the parameters the kernels come from."""

    @abstractmethod
    def _kernels(self, x: Tensor) -> Tensor:
        """The normalised kernels for inputs ``x``: ``(H, K)`` or ``(B, T, H, K)``."""

    def forward(
        self,
        x: Tensor,
        padding_mask: Tensor | None = None,
        cache: dict[str, Tensor] | None = None,
    ) -> Tensor:
        """Convolve ``x`` ``(B, T, C)``.

        Args:
            padding_mask: ``(B, T)``, True at padded positions (zeroed before convolving).
            cache: incremental decoding (``padding="causal"`` only): a dict kept by the caller
                across calls; each call gives the next positions and gets their outputs, equal to
                the corresponding positions of one call on the whole sequence.
        """
        if padding_mask is not None:
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        if cache is None:
            windows = self._windows(x)
        else:
            if self.padding != "causal":
                raise ValueError("incremental decoding needs padding='causal'")
            past = cache.get("inputs")
            if past is None:
                past = x.new_zeros(x.shape[0], self.kernel_size - 1, x.shape[2])
            seq = torch.cat([past, x], dim=1)
            cache["inputs"] = seq[:, seq.shape[1] - (self.kernel_size - 1) :]
            windows = seq.unfold(1, self.kernel_size, 1)  # exactly one window per new position
        weight = self._per_channel(self._kernels(x))
        if weight.dim() == 2:  # lightweight: one kernel for every position
            out = torch.einsum("btck,ck->btc", windows, weight)
        else:
            out = torch.einsum("btck,btck->btc", windows, weight)  # a bmm: MAC counters see it
        return out if self.bias is None else out + self.bias


class LightweightConv1d(_HeadConv1d):
    """Depthwise convolution with ``heads`` shared, softmax-normalised kernels (see module doc)."""

    def _build_kernels(self) -> None:
        self.weight = nn.Parameter(torch.empty(self.heads, self.kernel_size))
        nn.init.xavier_uniform_(self.weight)

    def _kernels(self, x: Tensor) -> Tensor:
        return self._normalise(self.weight)


class DynamicConv1d(_HeadConv1d):
    """Depthwise convolution whose kernel at each position is predicted from the input there by
    a linear layer ``channels -> heads * kernel_size`` (see module doc)."""

    def _build_kernels(self) -> None:
        self.kernel_proj = nn.Linear(self.channels, self.heads * self.kernel_size)

    def _kernels(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return self._normalise(self.kernel_proj(x).view(b, t, self.heads, self.kernel_size))
