"""Greedy and beam search on a small causal model with a real incremental cache."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from common.layers import DecoderLayer
from common.text.decode import beam_search, greedy

BOS, EOS, VOCAB = 1, 2, 7


class TinyLM(nn.Module):
    """Embedding, one causal decoder layer (no encoder), projection to the vocabulary."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 16)
        self.pos = nn.Embedding(32, 16)
        self.layer = DecoderLayer(16, 2, 16, cross_attention=False)
        self.out = nn.Linear(16, VOCAB)

    def full(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.pos(torch.arange(tokens.shape[1]))
        h, _ = self.layer(h)
        return self.out(h).log_softmax(-1)

    def step(self, tokens: torch.Tensor, cache: dict) -> torch.Tensor:
        t = cache.setdefault("t", 0)
        h = self.embed(tokens) + self.pos(torch.tensor([t]))
        h, _ = self.layer(h, cache=cache.setdefault("layer", {}))
        cache["t"] = t + 1
        return self.out(h[:, -1]).log_softmax(-1)


def reorder(cache: dict, order: torch.Tensor) -> None:
    def walk(d: dict) -> None:
        for key, value in d.items():
            if isinstance(value, dict):
                walk(value)
            elif isinstance(value, torch.Tensor):
                d[key] = value.index_select(0, order)

    walk(cache)


@pytest.fixture()
def model() -> TinyLM:
    torch.manual_seed(3)
    m = TinyLM().eval()
    with torch.no_grad():  # make EOS plausible but not immediate
        m.out.bias[EOS] = -1.0
    return m


def _score(model: TinyLM, seq: list[int]) -> float:
    with torch.no_grad():
        logp = model.full(torch.tensor([[BOS, *seq[:-1]]]))
    return sum(logp[0, i, tok].item() for i, tok in enumerate(seq))


def test_greedy_follows_the_argmax_of_the_full_pass(model: TinyLM) -> None:
    with torch.no_grad():
        out = greedy(model.step, {}, batch_size=3, bos=BOS, eos=EOS, max_len=6)
    assert out[0] == out[1] == out[2]  # the same prompt three times
    prefix = [BOS]
    for tok in out[0]:
        with torch.no_grad():
            assert tok == int(model.full(torch.tensor([prefix]))[0, -1].argmax())
        prefix.append(tok)


def test_beam_1_equals_greedy(model: TinyLM) -> None:
    with torch.no_grad():
        g = greedy(model.step, {}, batch_size=2, bos=BOS, eos=EOS, max_len=6)
        b = beam_search(model.step, reorder, {}, batch_size=2, bos=BOS, eos=EOS, max_len=6, beam=1)
    assert [h.tokens for h in b] == g


def test_beam_search_finds_the_best_sequence_of_an_exhaustive_search(model: TinyLM) -> None:
    """With a beam as wide as the vocabulary and a short horizon, nothing is pruned that could
    win: the result is the best of every sequence up to max_len (scored by the full pass)."""
    max_len, penalty = 3, 0.6
    with torch.no_grad():
        best = beam_search(
            model.step,
            reorder,
            {},
            batch_size=1,
            bos=BOS,
            eos=EOS,
            max_len=max_len,
            beam=VOCAB * VOCAB,
            length_penalty=penalty,
        )[0]
    candidates = []
    for n in range(1, max_len + 1):
        for seq in itertools.product(range(VOCAB), repeat=n):
            if EOS in seq[:-1] or (n < max_len and seq[-1] != EOS):
                continue  # ends at its first EOS, or is cut at max_len
            candidates.append(list(seq))
    scored = [(_score(model, s) / len(s) ** penalty, s) for s in candidates]
    top_score, top_seq = max(scored)
    assert best.tokens == top_seq
    assert math.isclose(best.score, top_score, rel_tol=1e-4)
    assert math.isclose(best.log_prob, _score(model, top_seq), rel_tol=1e-4)


def test_beam_scores_match_the_full_pass_after_reordering(model: TinyLM) -> None:
    """Long hypotheses whose beams were reordered many times: each returned log-probability is
    what the full (uncached) pass gives its tokens, so the cache followed every reorder."""
    with torch.no_grad():
        model.out.bias[EOS] = -4.0  # long outputs: many reorders before anything ends
        hyps = beam_search(
            model.step, reorder, {}, batch_size=2, bos=BOS, eos=EOS, max_len=8, beam=3
        )
    for h in hyps:
        assert len(h.tokens) >= 4
        assert math.isclose(h.log_prob, _score(model, h.tokens), rel_tol=1e-4, abs_tol=1e-4)
