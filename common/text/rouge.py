"""ROUGE-L for summarization, with Google's ``rouge-score`` (the implementation the field uses).

:func:`rouge_l`: the mean over sentences of the ROUGE-L F1 (longest common subsequence of words,
Porter-stemmed), times 100. It is the summary-level LCS of each output against its reference
(``rougeL``); the ``rougeLsum`` variant that splits summaries into sentences needs sentence breaks
that one-line-per-example corpora do not keep.
"""

from __future__ import annotations

from collections.abc import Sequence


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F1 x 100 of aligned hypotheses and references."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    if not references:
        return 0.0
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [
        scorer.score(ref, hyp)["rougeL"].fmeasure
        for hyp, ref in zip(hypotheses, references, strict=True)
    ]
    return 100.0 * sum(scores) / len(scores)
