"""BLEU: ours equals sacreBLEU on fixed examples; the bootstrap measures noise, not signal."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu

from common.text.bleu import (
    bleu_from_stats,
    bootstrap_std,
    corpus_stats,
    paired_bootstrap,
    sacrebleu_score,
    sentence_stats,
    tokenized_bleu,
)

REFS = [
    "En el principio creó Dios los cielos y la tierra.",
    "Y la tierra estaba desordenada y vacía, y las tinieblas estaban sobre la haz del abismo.",
    "Y dijo Dios: Sea la luz: y fué la luz.",
    "Y vió Dios que la luz era buena.",
]
HYPS = [
    "En el principio Dios creó los cielos y la tierra.",
    "La tierra estaba vacía, y había tinieblas sobre el abismo.",
    "Dios dijo: Sea la luz, y fue la luz.",
    "Y Dios vio la luz.",
]


def test_our_bleu_equals_sacrebleu() -> None:
    ours = tokenized_bleu(HYPS, REFS)
    assert ours == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score, abs=1e-9)
    assert ours == pytest.approx(sacrebleu_score(HYPS, REFS), abs=1e-9)
    # ... and on pre-tokenized text scored without tokenization
    pre = [" ".join(h.split()) for h in HYPS]
    assert bleu_from_stats(
        sum(sentence_stats(h.split(), r.split()) for h, r in zip(pre, REFS, strict=True))
    ) == pytest.approx(sacrebleu.corpus_bleu(pre, [REFS], tokenize="none").score, abs=1e-9)


def test_edge_cases_match_sacrebleu() -> None:
    assert tokenized_bleu(REFS, REFS) == pytest.approx(100.0)
    assert (
        tokenized_bleu(["x y z"] * 4, REFS)
        == 0.0
        == sacrebleu.corpus_bleu(["x y z"] * 4, [REFS]).score
    )
    short = [r.split()[0] for r in REFS]  # brevity penalty bites, and 4-grams are missing
    assert tokenized_bleu(short, REFS) == pytest.approx(sacrebleu.corpus_bleu(short, [REFS]).score)
    long = [r + " " + r for r in REFS]  # longer than the reference: no brevity penalty
    assert tokenized_bleu(long, REFS) == pytest.approx(sacrebleu.corpus_bleu(long, [REFS]).score)


def test_clipped_counts() -> None:
    s = sentence_stats(["the", "the", "the", "the"], ["the", "cat"])
    assert list(s[:4]) == [4, 2, 1, 4]  # lengths, then 1-gram matches clipped to 1 of 4


def test_paired_bootstrap_of_identical_systems_is_zero_and_noise_is_positive() -> None:
    stats = corpus_stats(HYPS * 10, REFS * 10)
    same = paired_bootstrap(stats, stats, samples=200)
    assert same["difference"] == 0 and same["std"] == 0 and same["win_rate"] == 0
    worse = corpus_stats([h.split(" ", 1)[-1] for h in HYPS] * 10, REFS * 10)
    diff = paired_bootstrap(stats, worse, samples=200, seed=1)
    assert diff["difference"] > 0 and diff["std"] > 0 and diff["win_rate"] > 0.9
    assert bootstrap_std(stats, samples=200) > 0
    with pytest.raises(ValueError, match="different sentences"):
        paired_bootstrap(stats, stats[:3])


def test_bleu_from_stats_vectorises_over_corpora() -> None:
    stats = corpus_stats(HYPS, REFS)
    many = np.stack([stats.sum(0), stats[:2].sum(0)])
    out = bleu_from_stats(many)
    assert out.shape == (2,)
    assert out[0] == pytest.approx(tokenized_bleu(HYPS, REFS))
    assert out[1] == pytest.approx(tokenized_bleu(HYPS[:2], REFS[:2]))
