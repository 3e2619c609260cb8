"""ROUGE-L through Google's rouge-score: the longest common subsequence by hand on small cases."""

from __future__ import annotations

import pytest

from common.text.rouge import rouge_l


def test_identical_texts_score_100_and_disjoint_ones_0() -> None:
    assert rouge_l(["the cat sat"], ["the cat sat"]) == pytest.approx(100.0)
    assert rouge_l(["dog runs"], ["the cat sat"]) == 0.0


def test_lcs_f1_by_hand() -> None:
    # LCS("the cat sat on the mat", "the cat on mat") = 4 words: P = 4/4, R = 4/6, F = 0.8
    assert rouge_l(["the cat on mat"], ["the cat sat on the mat"]) == pytest.approx(80.0)
    # a mean over sentences, not a pooled count
    assert rouge_l(["a b", "x"], ["a b", "y"]) == pytest.approx(50.0)


def test_misaligned_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        rouge_l(["a", "b"], ["a"])
