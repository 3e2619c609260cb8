"""BLEU two ways, and the noise of a BLEU difference.

* :func:`sacrebleu_score`: sacreBLEU's corpus BLEU on detokenized text (its standard ``13a``
  tokenization), the shareable number.
* :func:`tokenized_bleu`: BLEU on whitespace tokens of text that is already tokenized, the way
  fairseq's ``score.py`` scores Lite Transformer's outputs (the paper's "tokenized BLEU"). Here the
  text is tokenized with sacreBLEU's ``13a`` rules (the Moses-like tokenizer it ships), and the
  counting is ours: per-sentence n-gram statistics (:func:`sentence_stats`) summed over the corpus,
  so :func:`paired_bootstrap` can resample sentences thousands of times cheaply.

Corpus BLEU (Papineni et al. 2002): ``BP * exp(mean_n log p_n)`` over n = 1..4, where ``p_n`` is
clipped n-gram matches over hypothesis n-grams summed over the corpus, and
``BP = min(1, exp(1 - r / c))`` with ``r``, ``c`` the reference and hypothesis lengths. A zero
precision makes BLEU 0 (no smoothing, as sacreBLEU's corpus default).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

ORDER = 4


def _tokenize_13a(text: str) -> str:
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    return Tokenizer13a()(text)


def sacrebleu_score(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """sacreBLEU corpus BLEU (one reference per sentence, default settings)."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def sentence_stats(hypothesis: Sequence[str], reference: Sequence[str]) -> np.ndarray:
    """``[hyp length, ref length, matches_1, total_1, ..., matches_4, total_4]`` of one sentence
    (token lists)."""
    out = np.zeros(2 + 2 * ORDER, dtype=np.int64)
    out[0], out[1] = len(hypothesis), len(reference)
    for n in range(1, ORDER + 1):
        hyp = Counter(tuple(hypothesis[i : i + n]) for i in range(len(hypothesis) - n + 1))
        ref = Counter(tuple(reference[i : i + n]) for i in range(len(reference) - n + 1))
        out[2 * n] = sum(min(c, ref[g]) for g, c in hyp.items())
        out[2 * n + 1] = max(len(hypothesis) - n + 1, 0)
    return out


def bleu_from_stats(stats: np.ndarray) -> float:
    """Corpus BLEU (0-100) from summed sentence statistics (last axis as in
    :func:`sentence_stats`; leading axes are separate corpora)."""
    stats = np.asarray(stats, dtype=np.float64)
    c, r = stats[..., 0], stats[..., 1]
    matches, totals = stats[..., 2::2], stats[..., 3::2]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = np.where(matches > 0, np.log(matches / np.maximum(totals, 1)), -np.inf).mean(
            axis=-1
        )
        bp = np.where(c < r, 1.0 - r / np.maximum(c, 1e-9), 0.0)
        score = np.where(np.isfinite(log_p) & (c > 0), np.exp(bp + log_p), 0.0)
    return score * 100.0 if score.ndim else float(score) * 100.0


def corpus_stats(hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """``(sentences, 10)`` statistics of 13a-tokenized text (see the module doc)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    return (
        np.stack(
            [
                sentence_stats(_tokenize_13a(h).split(), _tokenize_13a(r).split())
                for h, r in zip(hypotheses, references, strict=True)
            ]
        )
        if hypotheses
        else np.zeros((0, 2 + 2 * ORDER), dtype=np.int64)
    )


def tokenized_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """BLEU of whitespace tokens after 13a tokenization (see the module doc)."""
    return float(bleu_from_stats(corpus_stats(hypotheses, references).sum(axis=0)))


def paired_bootstrap(
    stats_a: np.ndarray, stats_b: np.ndarray, *, samples: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Koehn (2004) paired bootstrap: resample the test sentences with replacement ``samples``
    times and score both systems on each resample. Returns the observed difference ``A - B``, the
    standard deviation of the resampled differences (the noise of the difference, in BLEU) and
    the share of resamples where A wins."""
    a, b = np.asarray(stats_a), np.asarray(stats_b)
    if a.shape != b.shape:
        raise ValueError(f"the systems were scored on different sentences: {a.shape} vs {b.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(samples, len(a)))
    diff = bleu_from_stats(a[idx].sum(axis=1)) - bleu_from_stats(b[idx].sum(axis=1))
    return {
        "difference": float(bleu_from_stats(a.sum(0)) - bleu_from_stats(b.sum(0))),
        "std": float(np.std(diff, ddof=1)),
        "win_rate": float(np.mean(diff > 0)),
    }


def bootstrap_std(stats: np.ndarray, *, samples: int = 1000, seed: int = 0) -> float:
    """Standard deviation of one system's BLEU over bootstrap resamples of its test sentences."""
    a = np.asarray(stats)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(samples, len(a)))
    return float(np.std(bleu_from_stats(a[idx].sum(axis=1)), ddof=1)) if len(a) else math.nan
