"""Greedy and beam-search decoding for autoregressive models with an incremental cache.

The model is seen through two callbacks, so translation models and language models decode the
same way:

* ``step(tokens, cache) -> log_probs``: ``tokens`` ``(N, 1)`` are the newest token of each of the
  ``N`` hypotheses, ``cache`` the caller's incremental state (e.g. one dict per decoder layer,
  :mod:`common.layers`), updated in place; returns ``(N, vocab)`` log-probabilities of the next
  token;
* ``reorder(cache, order)``: keep the cache rows ``order`` (a ``(N,)`` index tensor) when beam
  search reorders hypotheses.

Beam search keeps ``beam`` hypotheses per sentence; a hypothesis ends at ``eos`` (or at
``max_len``) and finished ones are ranked by ``score / length ** length_penalty`` (the length
counts the generated tokens, ``eos`` included; Lite Transformer's test script uses beam 4 and a
length penalty of 0.6). With ``beam=1`` it is greedy decoding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["Hypothesis", "beam_search", "greedy"]

Step = Callable[[Tensor, Any], Tensor]
Reorder = Callable[[Any, Tensor], None]


@dataclass
class Hypothesis:
    """A finished output: its tokens (without ``bos``, with ``eos`` if it ended on one), the sum
    of its log-probabilities and the length-normalised score it was ranked by."""

    tokens: list[int]
    log_prob: float
    score: float


def greedy(
    step: Step, cache: Any, *, batch_size: int, bos: int, eos: int, max_len: int
) -> list[list[int]]:
    """The most likely next token at every step, until ``eos`` or ``max_len`` tokens."""
    tokens = torch.full((batch_size, 1), bos, dtype=torch.long)
    out: list[list[int]] = [[] for _ in range(batch_size)]
    done = torch.zeros(batch_size, dtype=torch.bool)
    for _ in range(max_len):
        nxt = step(tokens, cache).argmax(dim=-1)
        for i in range(batch_size):
            if not done[i]:
                out[i].append(int(nxt[i]))
        done |= nxt.eq(eos)
        if bool(done.all()):
            break
        tokens = nxt.unsqueeze(1)
    return out


def beam_search(
    step: Step,
    reorder: Reorder,
    cache: Any,
    *,
    batch_size: int,
    bos: int,
    eos: int,
    max_len: int,
    beam: int = 4,
    length_penalty: float = 0.6,
) -> list[Hypothesis]:
    """The best hypothesis of each sentence (see the module doc). ``cache`` must hold
    ``batch_size * beam`` rows, sentence-major (rows ``b*beam .. b*beam+beam-1`` are sentence
    ``b``): repeat each sentence's encoder state ``beam`` times before calling."""
    n = batch_size * beam
    tokens = torch.full((n, 1), bos, dtype=torch.long)
    scores = torch.zeros(batch_size, beam)
    scores[:, 1:] = float("-inf")  # all beams start identical: expand only the first
    history = torch.empty(n, 0, dtype=torch.long)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch_size)]
    active = torch.ones(batch_size, dtype=torch.bool)
    for t in range(max_len):
        logp = step(tokens, cache).float()  # (n, V)
        vocab = logp.shape[-1]
        total = (scores.view(n, 1) + logp).view(batch_size, beam * vocab)
        # 2 * beam candidates: enough to refill the beam after some of them end.
        top, index = total.topk(min(2 * beam, beam * vocab), dim=-1)
        source, token = index // vocab, index % vocab
        new_scores = torch.full((batch_size, beam), float("-inf"))
        new_rows = torch.zeros(batch_size, beam, dtype=torch.long)
        new_tokens = torch.full((batch_size, beam), eos, dtype=torch.long)
        for b in range(batch_size):
            if not active[b]:
                new_rows[b] = torch.arange(beam) + b * beam
                continue
            kept = 0
            for score, src, tok in zip(
                top[b].tolist(), source[b].tolist(), token[b].tolist(), strict=True
            ):
                if score == float("-inf"):
                    break
                row = b * beam + src
                if tok == eos or t == max_len - 1:
                    seq = [*history[row].tolist(), tok]
                    length = len(seq)
                    finished[b].append(Hypothesis(seq, score, score / length**length_penalty))
                else:
                    new_scores[b, kept], new_rows[b, kept], new_tokens[b, kept] = score, row, tok
                    kept += 1
                if kept == beam:
                    break
            # A sentence is done when it has ``beam`` finished hypotheses (as fairseq stops).
            if len(finished[b]) >= beam or kept == 0:
                active[b] = False
        if not bool(active.any()):
            break
        order = new_rows.view(-1)
        reorder(cache, order)
        history = torch.cat([history[order], new_tokens.view(n, 1)], dim=1)
        scores = new_scores
        tokens = new_tokens.view(n, 1)
    return [max(f, key=lambda h: h.score) for f in finished]
