"""Token models: the encoder-decoder Transformer and the decoder-only language model, each with
attention or Lite Transformer's long-short range attention (LSRA) as the token mixer.

Both are built from the pre-norm layers of :mod:`common.layers.transformer`: token embeddings
scaled by ``sqrt(dim)`` plus sinusoidal positions, the layer stacks, a final LayerNorm and an output
projection tied to the embeddings (one joint vocabulary, as the WMT configs of Lite Transformer
share all embeddings). Token id ``pad_id`` is padding: masks come from the ids themselves.

``kernel_sizes`` gives the LSRA convolution's kernel per layer (the paper's ``[3, 7, 15, 31, 31,
31]`` for six layers; a shallower stack takes the first ones). ``ffn_dim`` defaults to ``dim``,
the flattened FFN; ``4 * dim`` is the usual bottleneck design.

Registered builders: ``transformer_seq2seq``, ``transformer_lm`` (``mixer="attention"`` or
``"lsra"``). Their Mult-Adds follow the paper's convention with :func:`mult_adds`: a 30-token
source and target, the layers only (embeddings and the output projection excluded, which is
what makes the paper's 90M for its smallest WMT model add up).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from common.layers.transformer import DecoderLayer, EncoderLayer, Mixer
from common.models import MODELS
from common.text.decode import Hypothesis, beam_search, greedy

__all__ = ["DecoderLM", "Seq2SeqTransformer", "mult_adds", "reorder_cache"]

PAPER_KERNEL_SIZES = (3, 7, 15, 31, 31, 31)


def sinusoidal_positions(length: int, dim: int) -> Tensor:
    """``(length, dim)`` sine/cosine position codes (Vaswani et al. 2017; sines then cosines)."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float) / max(half - 1, 1))
    angle = torch.arange(length, dtype=torch.float)[:, None] * freq[None, :]
    out = torch.cat([angle.sin(), angle.cos()], dim=1)
    return torch.nn.functional.pad(out, (0, dim - 2 * half))


class TokenEmbedding(nn.Module):
    """Scaled token embedding plus sinusoidal positions (from ``offset`` when decoding)."""

    def __init__(self, vocab_size: int, dim: int, pad_id: int, max_positions: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(vocab_size, dim))
        nn.init.normal_(self.weight, mean=0.0, std=dim**-0.5)
        with torch.no_grad():
            self.weight[pad_id].zero_()
        self.scale = math.sqrt(dim)
        self.max_positions = max_positions
        self.register_buffer(
            "positions", sinusoidal_positions(max_positions, dim), persistent=False
        )

    def forward(self, tokens: Tensor, offset: int = 0) -> Tensor:
        end = offset + tokens.shape[1]
        if end > self.max_positions:
            raise ValueError(
                f"sequence of {end} tokens is longer than max_positions={self.max_positions}"
            )
        x = torch.nn.functional.embedding(tokens, self.weight) * self.scale
        return x + self.positions[offset:end]


class OutputProjection(nn.Module):
    """Logits from the tied embedding matrix (a module of its own so that MAC counts can set it
    apart)."""

    def __init__(self, embedding: TokenEmbedding) -> None:
        super().__init__()
        self.embedding = [embedding]  # a list: not registered twice as a sub-module

    def forward(self, x: Tensor) -> Tensor:
        return torch.nn.functional.linear(x, self.embedding[0].weight)


def _kernels(kernel_sizes: Sequence[int], layers: int) -> list[int]:
    if len(kernel_sizes) < layers:
        raise ValueError(f"kernel_sizes gives {len(kernel_sizes)} kernels for {layers} layers")
    return [int(k) for k in kernel_sizes[:layers]]


def reorder_cache(cache: Any, order: Tensor) -> None:
    """Keep the batch rows ``order`` of every tensor in a (nested) decoding cache, in place."""
    items = cache.items() if isinstance(cache, dict) else enumerate(cache)
    for key, value in list(items):
        if isinstance(value, Tensor):
            cache[key] = value.index_select(0, order.to(value.device))
        elif isinstance(value, (dict, list)):
            reorder_cache(value, order)


class _TokenModel(nn.Module):
    """What both models share: embedding, decoder stack, final norm, tied output."""

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        decoder_layers: int,
        heads: int,
        ffn_dim: int | None,
        mixer: Mixer,
        kernel_sizes: Sequence[int],
        conv: str,
        glu: bool,
        dropout: float,
        attention_dropout: float,
        weight_dropout: float,
        pad_id: int,
        max_positions: int,
        cross_attention: bool,
    ) -> None:
        super().__init__()
        self.pad_id, self.dim, self.mixer = pad_id, dim, mixer
        self.ffn_dim = ffn_dim or dim
        self.lsra = (
            {"kind": conv, "glu": glu, "weight_dropout": weight_dropout} if mixer == "lsra" else {}
        )
        self.lsra["attention_dropout"] = attention_dropout
        self.heads, self.dropout = heads, dropout
        self.embed = TokenEmbedding(vocab_size, dim, pad_id, max_positions)
        self.decoder = nn.ModuleList(
            DecoderLayer(
                dim,
                heads,
                self.ffn_dim,
                mixer=mixer,
                kernel_size=k,
                dropout=dropout,
                cross_attention=cross_attention,
                **self.lsra,
            )
            for k in _kernels(kernel_sizes, decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(dim)
        self.output = OutputProjection(self.embed)

    def _decode(
        self,
        tokens: Tensor,
        memory: Tensor | None = None,
        memory_mask: Tensor | None = None,
        cache: dict | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, list[Tensor]]:
        offset = 0 if cache is None else cache.get("step", 0)
        x = self.embed(tokens, offset)
        x = torch.nn.functional.dropout(x, self.dropout, self.training)
        padding = None if cache is not None else tokens.eq(self.pad_id)
        layer_caches = (
            None if cache is None else cache.setdefault("layers", [{} for _ in self.decoder])
        )
        weights = []
        for i, layer in enumerate(self.decoder):
            x, w = layer(
                x,
                memory,
                memory_mask,
                padding_mask=padding,
                cache=None if layer_caches is None else layer_caches[i],
                need_weights=need_weights,
            )
            if w is not None:
                weights.append(w)
        if cache is not None:
            cache["step"] = offset + tokens.shape[1]
        return self.output(self.decoder_norm(x)), weights


class Seq2SeqTransformer(_TokenModel):
    """Encoder-decoder translation model: ``model(source, inputs) -> logits (B, T, vocab)``
    (``inputs`` are the decoder's ``[BOS] + y``, teacher forcing)."""

    def __init__(
        self,
        vocab_size: int = 1000,
        dim: int = 128,
        *,
        encoder_layers: int = 3,
        decoder_layers: int = 3,
        heads: int = 4,
        ffn_dim: int | None = None,
        mixer: Mixer = "attention",
        kernel_sizes: Sequence[int] = PAPER_KERNEL_SIZES,
        conv: str = "dynamic",
        glu: bool = True,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        weight_dropout: float = 0.0,
        pad_id: int = 0,
        max_positions: int = 512,
    ) -> None:
        super().__init__(
            vocab_size, dim, decoder_layers, heads, ffn_dim, mixer, kernel_sizes, conv, glu,
            dropout, attention_dropout, weight_dropout, pad_id, max_positions, True,
        )  # fmt: skip
        self.encoder = nn.ModuleList(
            EncoderLayer(
                dim, heads, self.ffn_dim, mixer=mixer, kernel_size=k, dropout=dropout, **self.lsra
            )
            for k in _kernels(kernel_sizes, encoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(dim)

    def encode(self, source: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor, list]:
        """``(memory (B, S, dim), source padding mask (B, S), per-layer attention weights)``."""
        mask = source.eq(self.pad_id)
        x = torch.nn.functional.dropout(self.embed(source), self.dropout, self.training)
        weights = []
        for layer in self.encoder:
            x, w = layer(x, padding_mask=mask, need_weights=need_weights)
            if w is not None:
                weights.append(w)
        return self.encoder_norm(x), mask, weights

    def forward(self, source: Tensor, inputs: Tensor) -> Tensor:
        memory, mask, _ = self.encode(source)
        return self._decode(inputs, memory, mask)[0]

    @torch.inference_mode()
    def translate(
        self,
        source: Tensor,
        *,
        bos: int,
        eos: int,
        beam: int = 4,
        length_penalty: float = 0.6,
        max_len_a: float = 1.2,
        max_len_b: int = 10,
    ) -> list[list[int]]:
        """Token ids of each source sentence's translation, without ``eos`` (``beam=1``:
        greedy). At most ``max_len_a * source length + max_len_b`` tokens are generated."""
        was_training = self.training
        self.eval()
        try:
            memory, mask, _ = self.encode(source)
            b = source.shape[0]
            max_len = min(
                int(max_len_a * source.shape[1] + max_len_b),
                self.embed.max_positions,
            )
            if beam > 1:
                memory, mask = memory.repeat_interleave(beam, 0), mask.repeat_interleave(beam, 0)
            # The encoder state lives in the cache so that beam search reorders it with the rest.
            cache: dict = {"memory": memory, "mask": mask}

            def step(tokens: Tensor, c: dict) -> Tensor:
                # The search keeps its bookkeeping on the CPU; the model runs where it lives.
                tokens = tokens.to(source.device)
                logits, _ = self._decode(tokens, c["memory"], c["mask"], c)
                return torch.log_softmax(logits[:, -1].float(), dim=-1).cpu()

            if beam == 1:
                outs = greedy(step, cache, batch_size=b, bos=bos, eos=eos, max_len=max_len)
            else:
                hyps: list[Hypothesis] = beam_search(
                    step, reorder_cache, cache, batch_size=b, bos=bos, eos=eos,
                    max_len=max_len, beam=beam, length_penalty=length_penalty,
                )  # fmt: skip
                outs = [h.tokens for h in hyps]
            return [o[:-1] if o and o[-1] == eos else o for o in outs]
        finally:
            self.train(was_training)


class DecoderLM(_TokenModel):
    """Decoder-only language model: ``model(inputs) -> next-token logits (B, T, vocab)``."""

    def __init__(
        self,
        vocab_size: int = 1000,
        dim: int = 128,
        *,
        layers: int = 3,
        heads: int = 4,
        ffn_dim: int | None = None,
        mixer: Mixer = "attention",
        kernel_sizes: Sequence[int] = PAPER_KERNEL_SIZES,
        conv: str = "dynamic",
        glu: bool = True,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        weight_dropout: float = 0.0,
        pad_id: int = 0,
        max_positions: int = 512,
    ) -> None:
        super().__init__(
            vocab_size, dim, layers, heads, ffn_dim, mixer, kernel_sizes, conv, glu,
            dropout, attention_dropout, weight_dropout, pad_id, max_positions, False,
        )  # fmt: skip

    def forward(self, inputs: Tensor, cache: dict | None = None) -> Tensor:
        return self._decode(inputs, cache=cache)[0]


def mult_adds(model: nn.Module, tokens: int = 30) -> dict[str, int]:
    """Mult-Adds of one forward pass over a ``tokens``-long source and target (batch 1), with the
    shared counter: ``layers`` (the paper's convention: embeddings and output projection
    excluded), ``output`` (the vocabulary projection) and ``total``."""
    from common.measure import count_macs

    x = torch.ones(1, tokens, dtype=torch.long)
    args = (x, x) if isinstance(model, Seq2SeqTransformer) else (x,)
    report = count_macs(model, *args)
    out = sum(v for k, v in report.per_module.items() if k == "output" or k.startswith("output."))
    return {"layers": report.total - out, "output": out, "total": report.total}


def analytic_mult_adds(
    *,
    dim: int,
    ffn_dim: int,
    heads: int,
    encoder_layers: int,
    decoder_layers: int,
    mixer: str,
    kernel_sizes: Sequence[int],
    conv: str = "dynamic",
    glu: bool = True,
    cross_attention: bool = True,
    tokens: int = 30,
) -> int:
    """The same count by formula (layers only), for checking :func:`mult_adds`.

    Per ``n``-token layer of width ``d``: attention ``4 n d^2`` (projections) ``+ 2 n^2 d``
    (scores and weighted sum); FFN ``2 n d f``; LSRA: attention on ``d/2`` plus the conv branch
    (input linear ``n h (2h if GLU else h)``, the dynamic kernels' predictor ``n h H k``, the
    convolution ``n h k``, output linear ``n h^2``, with ``h = d/2``); decoder layers add
    cross-attention (``cross_attention``) to a ``n``-token source."""
    n = tokens

    def attention(d: int, n_kv: int) -> int:
        return 4 * n * d * d + 2 * n * n_kv * d

    def mixer_cost(k: int) -> int:
        if mixer == "attention":
            return attention(dim, n)
        h = dim // 2
        branch = n * h * (2 * h if glu else h) + n * h * k + n * h * h
        if conv == "dynamic":
            branch += n * h * heads * k
        return attention(h, n) + branch

    ffn = 2 * n * dim * ffn_dim
    enc = sum(mixer_cost(k) + ffn for k in kernel_sizes[:encoder_layers])
    cross = attention(dim, n) if cross_attention else 0
    dec = sum(mixer_cost(k) + cross + ffn for k in kernel_sizes[:decoder_layers])
    return enc + dec


MODELS.register("transformer_seq2seq")(Seq2SeqTransformer)
MODELS.register("transformer_lm")(DecoderLM)


def _token_inputs(seq2seq: bool):
    """``example_inputs(batch, tokens)``: random token ids for tests that run every model."""

    def make(batch: int = 2, tokens: int = 12) -> tuple[Tensor, ...]:
        g = torch.Generator().manual_seed(0)
        x = torch.randint(3, 1000, (batch, tokens), generator=g)
        return (x, x.flip(1)) if seq2seq else (x,)

    return make


Seq2SeqTransformer.example_inputs = staticmethod(_token_inputs(True))
DecoderLM.example_inputs = staticmethod(_token_inputs(False))
