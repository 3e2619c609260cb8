"""A model's corpus: its token datasets, its tokenizer's folder and the texts that train it.

The profile's ``corpora`` say where each corpus lives (:class:`~papers.lite_transformer.config.
CorpusConfig`); the committed Bible corpus is the default, and the ``paper`` profile reads the
user's WMT, IWSLT, CNN-DailyMail and WikiText-103 folders through the shared readers of
:mod:`common.text.corpus`.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from common.data import build_dataset
from common.paths import data_root
from common.text.corpus import read_pairs, read_parallel, read_text
from papers.lite_transformer.config import CorpusConfig, LiteTransformerProfile


def corpus_root(corpus: CorpusConfig, bible: Path) -> Path:
    """The folder of a corpus: ``bible`` (the stage's ``--data``) for the Bible, else its
    ``root`` (relative to the data root unless absolute)."""
    if corpus.kind == "bible":
        return Path(bible)
    root = Path(corpus.root or "").expanduser()
    return root if root.is_absolute() else data_root() / root


def tokenizer_dir(tokenizers: Path, corpus: str) -> Path:
    """Where the tokenizer stage writes the tokenizer of ``corpus``."""
    return Path(tokenizers) / corpus


def load_split(
    profile: LiteTransformerProfile,
    corpus: str,
    task: str,
    split: str,
    *,
    bible: Path,
    tokenizer: Any,
    subset: int | None = None,
    max_tokens: int | None = None,
) -> Any:
    """The ``split`` of ``corpus`` as token sequences for ``task`` (see ``common.text.corpus``)."""
    c = profile.corpora[corpus]
    root = corpus_root(c, bible)
    common = {"root": root, "tokenizer": tokenizer, "subset": subset, "max_tokens": max_tokens}
    if c.kind == "bible":
        return build_dataset(
            "bible_en_es" if task == "translation" else "bible_en", split, **common
        )
    if c.kind == "parallel":
        return build_dataset(
            "parallel_text", split, source=c.source, target=c.target,
            truncate_source=c.truncate_source, **common,
        )  # fmt: skip
    return build_dataset("lm_text", split, pattern=c.pattern, block_tokens=c.block_tokens, **common)


def tokenizer_texts(profile: LiteTransformerProfile, corpus: str, bible: Path) -> list[str]:
    """The sentences a corpus's tokenizer is trained on: both sides of the training pairs (or
    the training lines), at most ``train_sentences`` of them, a fixed random sample."""
    c = profile.corpora[corpus]
    root = corpus_root(c, bible)
    if c.kind == "bible":
        pairs = read_pairs(root, "train")
        texts = [en for _, en, _ in pairs] + [es for _, _, es in pairs]
    elif c.kind == "parallel":
        src, tgt = read_parallel(root, "train", c.source, c.target)
        texts = src + tgt
    else:
        texts = read_text(root, "train", c.pattern)
    cap = profile.tokenizer_for(corpus).train_sentences
    if cap is not None and len(texts) > cap:
        texts = random.Random(0).sample(texts, cap)
    return texts
