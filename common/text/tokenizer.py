"""Subword tokenizers: SentencePiece models trained on a corpus, with fixed special ids.

Every model trained here has ``pad=0, bos=1, eos=2, unk=3`` (what
:class:`~common.data.tokens.TokenSequences` and the decoders assume). :func:`train_tokenizer`
trains one deterministically (one thread, no sampling of the input) and writes ``spm.model`` with
a ``tokenizer.json`` describing it; :class:`Tokenizer` loads one and checks it, so a wrong or
corrupt file gives one clear line instead of a crash inside SentencePiece.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from common.data.checksums import DataError, sha256_file
from common.io import atomic_path, write_json

MODEL_FILE = "spm.model"
PAD, BOS, EOS, UNK = 0, 1, 2, 3


def train_tokenizer(
    texts: Iterable[str],
    out: str | Path,
    *,
    vocab_size: int,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    seed: int = 0,
) -> Path:
    """Train a SentencePiece model on ``texts`` (one sentence each) into ``out/spm.model``."""
    import sentencepiece as spm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    sentences = [t for t in texts if t.strip()]
    if not sentences:
        raise DataError(f"no text to train the tokenizer in {out} on. Fix: check the corpus files")
    try:
        _train_spm(spm, sentences, buf, vocab_size=vocab_size, model_type=model_type,
                   character_coverage=character_coverage)  # fmt: skip
    except RuntimeError as exc:  # SentencePiece reports bad settings as RuntimeError
        msg = str(exc).split("] ")[-1]
        raise DataError(
            f"SentencePiece cannot train a {model_type} model of {vocab_size} pieces on "
            f"{len(sentences)} sentences: {msg} Fix: change the tokenizer's vocab_size in the "
            "profile"
        ) from None
    path = out / MODEL_FILE
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())
    write_json(
        {
            "model": MODEL_FILE,
            "type": model_type,
            "vocab_size": vocab_size,
            "sentences": len(sentences),
            "sha256": sha256_file(path),
        },
        out / "tokenizer.json",
    )
    return path


def _train_spm(spm, sentences, buf, *, vocab_size, model_type, character_coverage) -> None:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=buf,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        pad_id=PAD,
        bos_id=BOS,
        eos_id=EOS,
        unk_id=UNK,
        num_threads=1,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        # A word vocabulary (WikiText-103's) is as large as the corpus has words: a ceiling.
        hard_vocab_limit=model_type != "word",
        minloglevel=2,
    )


class Tokenizer:
    """A trained SentencePiece model: ``encode(texts) -> id lists``, ``decode(ids) -> text``."""

    def __init__(self, processor: object, path: Path) -> None:
        self.sp = processor
        self.path = path
        self.vocab_size = int(processor.get_piece_size())
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = PAD, BOS, EOS, UNK

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Load ``path`` (a ``.model`` file or a folder holding ``spm.model``)."""
        import sentencepiece as spm

        path = Path(path)
        if path.is_dir():
            path = path / MODEL_FILE
        fix = "retrain it: `dvc repro` the paper's tokenizer stage"
        if not path.is_file():
            raise DataError(f"{path} is missing: no tokenizer there. Fix: {fix}")
        sp = spm.SentencePieceProcessor()
        try:
            sp.load(str(path))
        except (OSError, RuntimeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"{path} is not a SentencePiece model ({first}). Fix: {fix}") from None
        ids = (sp.pad_id(), sp.bos_id(), sp.eos_id(), sp.unk_id())
        if ids != (PAD, BOS, EOS, UNK):
            raise DataError(
                f"{path}: special ids pad/bos/eos/unk are {ids}, expected {(PAD, BOS, EOS, UNK)}. "
                f"Fix: train it with common.text.tokenizer.train_tokenizer"
            )
        return cls(sp, path)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(ids) for ids in self.sp.encode(list(texts))]

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        specials = {PAD, BOS, EOS}
        return [self.sp.decode([int(i) for i in seq if int(i) not in specials]) for seq in ids]

    def describe(self) -> dict:
        meta = self.path.parent / "tokenizer.json"
        return json.loads(meta.read_text()) if meta.is_file() else {"vocab_size": self.vocab_size}
