"""SpAtten on a GPT-style decoder: summarise a long prompt, then generate, with the key/value
cache pruned in cascade and K fetched progressively.

The network is the house's decoder-only language model (``common.models.transformer.DecoderLM``,
attention mixer: pre-norm layers, tied output); :class:`PrunedDecoder` runs its modules with an
explicit per-layer key/value cache so that every fetch is ours to count. One sequence at a time
(the paper's GPT-2 setting: batch 1):

* **summarization**: the prompt's tokens pass through the layers together (causal attention);
* **generation**: one token a step, attending to the cache of every layer.

Token importance (attention probability received, summed over heads and queries) accumulates
over layers and steps. With :class:`DecoderPruning` the cache of layer ``l`` keeps at most
``token_keep[l]`` of the tokens so far: the least important are dropped from that layer *and every
later one* (cascade), never the newest token. Local value pruning, K/V quantization and the
progressive LSB re-fetch (a step's query whose largest probability is below ``tau``) act as in
the encoder (:mod:`papers.spatten.bert`). The reference repository's KV-cache variant
(:class:`KVBudget`: keep ``start`` + the ``important`` most important + ``recent`` tokens) and its
start + recent baseline use the same machinery.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from papers.spatten.bert import local_values, msb_part, quantize


@dataclass(frozen=True)
class DecoderPruning:
    token_keep: tuple[float, ...] | None = None  # per layer, fraction of the tokens so far
    value_keep: float = 1.0
    k_msb_bits: int | None = None
    k_lsb_bits: int = 0
    v_bits: int | None = None
    tau: float = 0.0


@dataclass(frozen=True)
class KVBudget:
    """A fixed cache of ``start + important + recent`` tokens per layer (``important=0``: the
    start + recent baseline)."""

    start: int = 4
    important: int = 32
    recent: int = 32

    @property
    def size(self) -> int:
        return self.start + self.important + self.recent


@dataclass
class StepCounts:
    """Rows fetched by one (step, layer, head): its queries, the keys and V rows fetched,
    whether K's LSBs were, and how many tokens the dense model would attend to."""

    layer: int
    queries: int
    keys: int
    values: int
    requant: bool
    visible: int


@dataclass
class DecodeTrace:
    steps: list[list[StepCounts]] = field(default_factory=list)  # per step, per (layer, head)
    kept: list[list[list[int]]] = field(default_factory=list)  # per step, per layer: positions


class PrunedDecoder:
    """Runs a trained ``DecoderLM`` (attention mixer) with SpAtten's cache pruning."""

    def __init__(self, model: nn.Module) -> None:
        if getattr(model, "mixer", "attention") != "attention":
            raise ValueError("SpAtten prunes attention: give a DecoderLM with mixer 'attention'")
        self.model = model.eval()
        self.layers = list(model.decoder)
        self.heads = self.layers[0].mixer.heads
        self.head_dim = self.layers[0].mixer.head_dim

    @torch.inference_mode()
    def score(
        self,
        tokens: Tensor,
        prompt: int,
        *,
        pruning: DecoderPruning | None = None,
        budget: KVBudget | None = None,
        trace: DecodeTrace | None = None,
    ) -> tuple[float, int]:
        """Summarise ``tokens[:prompt]``, then generate ``tokens[prompt:]`` one at a time
        (teacher-forced): the summed negative log-likelihood of the generated tokens and their
        number. ``tokens`` is 1-D and starts with BOS."""
        p = pruning or DecoderPruning()
        n_layers = len(self.layers)
        caches: list[dict[str, Tensor]] = [{} for _ in range(n_layers)]
        importance = torch.zeros(len(tokens), device=tokens.device)
        nll, count = 0.0, 0
        steps = [(0, prompt)] + [(t, t + 1) for t in range(prompt, len(tokens) - 1)]
        for start, end in steps:
            x = self.model.embed(tokens[start:end][None], start)  # (1, q, E)
            positions = torch.arange(start, end, device=tokens.device)
            counts: list[StepCounts] = []
            for i, layer in enumerate(self.layers):
                x = self._layer(i, layer, x, positions, caches[i], importance, p, counts)
                self._prune(i, caches, importance, p, budget, newest=end - 1)
                if len(positions) > 1 and budget is None:  # summarization: pruned tokens stop
                    alive = torch.isin(positions, caches[i]["pos"])
                    x, positions = x[:, alive], positions[alive]
            logits = self.model.output(self.model.decoder_norm(x[:, -1]))
            if end < len(tokens):
                nll += float(F.cross_entropy(logits.float(), tokens[end][None]))
                count += 1
            if trace is not None:
                trace.steps.append(counts)
                trace.kept.append([c["pos"].tolist() for c in caches])
        return nll, count

    def _layer(
        self,
        index: int,
        layer: nn.Module,
        x: Tensor,
        positions: Tensor,
        cache: dict[str, Tensor],
        importance: Tensor,
        p: DecoderPruning,
        counts: list[StepCounts],
    ) -> Tensor:
        att = layer.mixer
        h = layer.mix_norm(x)
        split = lambda t: t.view(1, t.shape[1], self.heads, self.head_dim).transpose(1, 2)  # noqa: E731
        q = split(att.q_proj(h)) / math.sqrt(self.head_dim)
        k_new, v_new = split(att.k_proj(h)), split(att.v_proj(h))
        if "k" in cache:
            k = torch.cat([cache["k"], k_new], 2)
            v = torch.cat([cache["v"], v_new], 2)
            pos = torch.cat([cache["pos"], positions])
        else:
            k, v, pos = k_new, v_new, positions
        cache["k"], cache["v"], cache["pos"] = k, v, pos
        future = pos[None, :] > positions[:, None]  # (q, keys): causal
        bias = torch.zeros(future.shape, device=x.device).masked_fill(future, float("-inf"))
        if p.v_bits is not None:
            codes, scale = quantize(v, p.v_bits)
            v = codes * scale
        flat = torch.zeros(1, self.heads, len(positions), dtype=torch.bool, device=x.device)
        if p.k_msb_bits is None:
            probs = torch.softmax(q @ k.transpose(-1, -2) + bias, -1)
        else:
            codes, scale = quantize(k, p.k_msb_bits + p.k_lsb_bits)
            probs = torch.softmax(
                q @ (msb_part(codes, p.k_lsb_bits) * scale).transpose(-1, -2) + bias, -1
            )
            if p.k_lsb_bits and p.tau > 0:
                flat = probs.amax(-1) < p.tau
                if bool(flat.any()):
                    full = torch.softmax(q @ (codes * scale).transpose(-1, -2) + bias, -1)
                    probs = torch.where(flat[..., None], full, probs)
        importance.index_add_(0, pos, probs.sum((0, 1, 2)).float())
        used = probs
        if p.value_keep < 1.0:
            visible = (~future).sum(-1)  # (q,) keys each query may see
            keep = torch.ceil(visible.float() * p.value_keep).clamp_min(1).long()
            used = local_values(probs, keep[None, None, :])
        fetched = (used > 0).any(2)[0]  # (H, keys): a row any query uses is fetched once
        for head in range(self.heads):
            counts.append(
                StepCounts(index, len(positions), len(pos), int(fetched[head].sum()),
                           bool(flat[0, head].any()), int(positions[-1]) + 1)
            )  # fmt: skip
        out = (used @ v).transpose(1, 2).reshape(1, len(positions), -1)
        x = x + att.out_proj(out)
        return layer._feed_forward(x)

    def _prune(
        self,
        index: int,
        caches: list[dict[str, Tensor]],
        importance: Tensor,
        p: DecoderPruning,
        budget: KVBudget | None,
        newest: int,
    ) -> None:
        """Drop tokens from layer ``index``'s cache (and, in cascade, from every later layer)."""
        cache = caches[index]
        pos = cache["pos"]
        n = len(pos)
        if budget is not None:
            if n <= budget.size:
                return
            start = pos[: budget.start]
            recent = pos[n - budget.recent :] if budget.recent else pos[:0]
            middle = pos[budget.start : n - budget.recent]
            top = middle[importance[middle].topk(min(budget.important, len(middle))).indices]
            keep = torch.cat([start, top, recent]).sort().values
            self._keep(cache, keep)
            return
        if p.token_keep is None or p.token_keep[index] >= 1.0:
            return
        target = max(1, math.ceil((newest + 1) * p.token_keep[index] - 1e-9))
        if n <= target:
            return
        score = importance[pos].clone()
        score[pos == newest] = float("inf")  # the token being processed stays
        from papers.spatten.topk import topk_keep_order

        keep = pos[topk_keep_order(score, target)]
        for later in caches[index:]:  # cascade: gone from this layer and every later one
            if "pos" in later:
                self._keep(later, keep)

    @staticmethod
    def _keep(cache: dict[str, Tensor], keep: Tensor) -> None:
        mask = torch.isin(cache["pos"], keep)
        cache["k"], cache["v"] = cache["k"][:, :, mask], cache["v"][:, :, mask]
        cache["pos"] = cache["pos"][mask]
