"""Parallel and monolingual text corpora, split by documents so no near-duplicate crosses splits.

The offline corpus is the Bible (``data/bible``, public domain): 31,077 verse pairs English
(World English Bible) x Spanish (Reina-Valera 1909), and the King James Version, a second English
translation of the same verses. :func:`prepare_bible` verifies the committed files, assigns every
*chapter* to train, valid or test by a hash of its reference (so a verse and its neighbours, which
often repeat each other, stay on one side, and KJV verses of a test chapter never reach training),
and writes:

* ``{train,valid,test}.tsv``: ``ref<TAB>english<TAB>spanish`` (translation);
* ``lm_{train,valid,test}.txt``: one English verse a line, both translations (language modelling);
* ``manifest.json``: counts, the split rule and the sources' SHA-256.

:func:`read_pairs` / :func:`read_lines` read them back; the registered token datasets
(``bible_en_es``, ``bible_en``) encode them with a trained SentencePiece model
(:mod:`common.text.tokenizer`).

A user's own corpora (the paper-scale ones: WMT, IWSLT, CNN-DailyMail, WikiText-103) are read
from the layouts their preparation scripts leave:

* ``parallel_text``: fairseq's raw parallel layout, ``{train,valid,test}.<source>`` and
  ``.<target>``, one sentence a line, the two sides aligned line by line (what
  ``prepare-wmt14en2fr.sh`` writes before binarising; CNN-DailyMail as ``.source``/``.target``);
* ``lm_text``: one file per split named by a pattern (WikiText-103: ``wiki.{split}.tokens``),
  one line an example, or, with ``block_tokens``, the whole split as one token stream cut into
  blocks (fairseq's ``--sample-break-mode none``).

Both hold the encoded corpus in memory, as Python token lists: at WMT'14 En-Fr's 36M pairs that
takes tens of GB (cap it with ``subset``).
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.data.checksums import DataError, read_text_file, verify_directory
from common.data.registry import DATASETS
from common.io import atomic_path, write_json

PAIRS_FILE = "web_rv1909_en_es.tsv.gz"
KJV_FILE = "kjv_en.txt.gz"
SPLITS = ("train", "valid", "test")
RAW_FIX = "restore the committed files with `git checkout -- data/bible`"
PREPARED_FIX = "rerun the data stage: `dvc repro prepare_bible`"


def chapter_of(ref: str) -> str:
    """``"Gen.1.3"`` -> ``"Gen.1"``."""
    return ref.rsplit(".", 1)[0]


def split_of(chapter: str, valid_pct: float, test_pct: float) -> str:
    """The split of a chapter: a stable hash of its name, so a chapter never changes side when
    the corpus or the code around it changes."""
    h = int(hashlib.sha256(chapter.encode()).hexdigest()[:8], 16) % 10000 / 100.0
    if h < test_pct:
        return "test"
    if h < test_pct + valid_pct:
        return "valid"
    return "train"


def _gz_lines(path: Path) -> list[str]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return fh.read().splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path} cannot be read as gzip UTF-8 text ({exc}). Fix: {RAW_FIX}"
        ) from None


def read_bible(raw: str | Path) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """The verse pairs ``(ref, english, spanish)`` and the KJV verses ``(ref, text)`` with the
    pairs' reference style (books matched by their canonical order)."""
    raw = Path(raw)
    verify_directory(raw, [PAIRS_FILE, KJV_FILE], fix=RAW_FIX)
    pairs = []
    for n, line in enumerate(_gz_lines(raw / PAIRS_FILE), 1):
        cols = line.split("\t")
        if len(cols) != 3 or cols[0].count(".") != 2:
            raise DataError(
                f"{raw / PAIRS_FILE}:{n}: expected ref<TAB>english<TAB>spanish. Fix: {RAW_FIX}"
            )
        pairs.append((cols[0], cols[1].strip(), cols[2].strip()))
    books = list(dict.fromkeys(ref.split(".")[0] for ref, _, _ in pairs))
    kjv: list[tuple[str, str]] = []
    kjv_books: list[str] = []
    for n, line in enumerate(_gz_lines(raw / KJV_FILE), 1):
        head, _, text = line.partition(" ")
        book = head.rstrip("0123456789:")
        loc = head[len(book) :]
        if not book or loc.count(":") != 1:
            raise DataError(
                f"{raw / KJV_FILE}:{n}: expected '<Book><chapter>:<verse> text'. Fix: {RAW_FIX}"
            )
        if not kjv_books or kjv_books[-1] != book:
            kjv_books.append(book)
        chapter, verse = loc.split(":")
        kjv.append((f"{len(kjv_books) - 1}.{chapter}.{verse}", text.strip()))
    if len(kjv_books) != len(books):
        raise DataError(
            f"{raw / KJV_FILE} has {len(kjv_books)} books, the pairs {len(books)}. Fix: {RAW_FIX}"
        )
    kjv = [(f"{books[int(r.split('.')[0])]}.{r.split('.', 1)[1]}", t) for r, t in kjv]
    return pairs, kjv


def prepare_bible(raw: str | Path, out: str | Path, *, valid_pct: float, test_pct: float) -> dict:
    """Split the corpus by chapters into ``out`` (see the module doc); returns the manifest."""
    pairs, kjv = read_bible(raw)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    by_split: dict[str, list[tuple[str, str, str]]] = {s: [] for s in SPLITS}
    for ref, en, es in pairs:
        by_split[split_of(chapter_of(ref), valid_pct, test_pct)].append((ref, en, es))
    lm: dict[str, list[str]] = {s: [en for _, en, _ in by_split[s]] for s in SPLITS}
    for ref, text in kjv:
        lm[split_of(chapter_of(ref), valid_pct, test_pct)].append(text)
    for s in SPLITS:
        with atomic_path(out / f"{s}.tsv") as tmp:
            tmp.write_text("".join(f"{r}\t{e}\t{p}\n" for r, e, p in by_split[s]), encoding="utf-8")
        with atomic_path(out / f"lm_{s}.txt") as tmp:
            tmp.write_text("".join(f"{t}\n" for t in lm[s]), encoding="utf-8")
    manifest = {
        "name": "bible",
        "sources": {
            "pairs": "World English Bible x Reina-Valera 1909 (public domain)",
            "kjv": "King James Version (public domain)",
            "sha256": {
                n: hashlib.sha256((Path(raw) / n).read_bytes()).hexdigest()
                for n in (PAIRS_FILE, KJV_FILE)
            },
        },
        "split_rule": f"whole chapters by SHA-256 of the chapter reference: {test_pct}% test, "
        f"{valid_pct}% valid, the rest train",
        "pairs": {s: len(by_split[s]) for s in SPLITS},
        "chapters": {s: len({chapter_of(r) for r, _, _ in by_split[s]}) for s in SPLITS},
        "lm_lines": {s: len(lm[s]) for s in SPLITS},
    }
    write_json(manifest, out / "manifest.json")
    return manifest


def _prepared(root: str | Path, name: str) -> Path:
    path = Path(root) / name
    if not path.is_file():
        raise DataError(f"{path} is missing: the corpus is not prepared. Fix: {PREPARED_FIX}")
    return path


def read_pairs(root: str | Path, split: str) -> list[tuple[str, str, str]]:
    """``(ref, english, spanish)`` of a prepared split."""
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    path = _prepared(root, f"{split}.tsv")
    rows = []
    for n, line in enumerate(read_text_file(path, what="a TSV", fix=PREPARED_FIX).splitlines(), 1):
        cols = line.split("\t")
        if len(cols) != 3:
            raise DataError(f"{path}:{n}: expected 3 tab-separated columns. Fix: {PREPARED_FIX}")
        rows.append((cols[0], cols[1], cols[2]))
    return rows


def read_lines(root: str | Path, split: str) -> list[str]:
    """The English verses of a prepared language-modelling split."""
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    path = _prepared(root, f"lm_{split}.txt")
    return read_text_file(path, what="a text file", fix=PREPARED_FIX).splitlines()


def _subset(items: Sequence[Any], subset: int | None) -> Sequence[Any]:
    """The first ``subset`` items: splits are in canonical (book) order, so a subset of the test
    set is a fixed, reproducible list of sentences."""
    return items if subset is None else items[:subset]


def _tokenizer(tokenizer: Any) -> Any:
    from common.text.tokenizer import Tokenizer

    return tokenizer if isinstance(tokenizer, Tokenizer) else Tokenizer.load(tokenizer)


def _pairs_dataset(
    src_text: Sequence[str],
    tgt_text: Sequence[str],
    refs: Sequence[str],
    tokenizer: Any,
    max_tokens: int | None,
    truncate_source: int | None = None,
) -> Any:
    """Encoded pairs as :class:`~common.data.tokens.TokenSequences`, sources cut to their first
    ``truncate_source`` tokens (summarization's long articles), then pairs with a side longer
    than ``max_tokens`` (with its EOS) dropped; texts kept as ``.refs``, ``.sources_text`` and
    ``.targets_text``."""
    from common.data.tokens import TokenSequences

    tok = _tokenizer(tokenizer)
    src, tgt = tok.encode(list(src_text)), tok.encode(list(tgt_text))
    if truncate_source is not None:
        src = [s[:truncate_source] for s in src]
    keep = [
        i
        for i in range(len(src))
        if max_tokens is None or max(len(src[i]), len(tgt[i])) + 1 <= max_tokens
    ]
    ds = TokenSequences(
        [tgt[i] for i in keep], [src[i] for i in keep], pad_id=tok.pad_id, bos_id=tok.bos_id,
        eos_id=tok.eos_id,
    )  # fmt: skip
    ds.refs = [refs[i] for i in keep]
    ds.sources_text = [src_text[i] for i in keep]
    ds.targets_text = [tgt_text[i] for i in keep]
    ds.vocab_size = ds.num_classes = tok.vocab_size
    return ds


def _lines_dataset(
    lines: Sequence[str], tokenizer: Any, max_tokens: int | None, block_tokens: int | None = None
) -> Any:
    """Encoded lines, one example each (longer than ``max_tokens`` dropped), or with
    ``block_tokens`` one stream (an EOS after every line) cut into examples of that many tokens
    with their BOS/EOS."""
    from common.data.tokens import TokenSequences

    tok = _tokenizer(tokenizer)
    encoded = tok.encode(list(lines))
    if block_tokens is None:
        ids = [t for t in encoded if max_tokens is None or len(t) + 1 <= max_tokens]
    else:
        if block_tokens < 3:
            raise DataError(f"block_tokens must be at least 3, got {block_tokens}")
        stream = [i for t in encoded for i in (*t, tok.eos_id)]
        size = block_tokens - 1  # the batch adds BOS to the inputs and EOS to the targets
        ids = [stream[i : i + size] for i in range(0, len(stream), size)]
    ds = TokenSequences(ids, pad_id=tok.pad_id, bos_id=tok.bos_id, eos_id=tok.eos_id)
    ds.vocab_size = ds.num_classes = tok.vocab_size
    return ds


@DATASETS.register("bible_en_es")
def bible_en_es(
    split: str,
    *,
    root: str | Path | None = None,
    tokenizer: Any,
    subset: int | None = None,
    max_tokens: int | None = None,
    reverse: bool = False,
    **_: Any,
) -> Any:
    """English -> Spanish verse pairs as a :class:`~common.data.tokens.TokenSequences`
    (``reverse``: Spanish -> English); ``max_tokens`` drops pairs with a longer side (training
    only). The texts are kept as ``.refs``, ``.sources_text`` and ``.targets_text``."""
    from common.paths import data_root

    rows = _subset(read_pairs(root or data_root() / "prepared" / "bible", split), subset)
    src_text = [es if reverse else en for _, en, es in rows]
    tgt_text = [en if reverse else es for _, en, es in rows]
    return _pairs_dataset(src_text, tgt_text, [r for r, _, _ in rows], tokenizer, max_tokens)


@DATASETS.register("bible_en")
def bible_en(
    split: str,
    *,
    root: str | Path | None = None,
    tokenizer: Any,
    subset: int | None = None,
    max_tokens: int | None = None,
    **_: Any,
) -> Any:
    """English verses (both translations) for language modelling, one example a verse."""
    from common.paths import data_root

    lines = _subset(read_lines(root or data_root() / "prepared" / "bible", split), subset)
    return _lines_dataset(lines, tokenizer, max_tokens)


def _user_fix(root: Path, what: str) -> str:
    return (
        f"Fix: put {what} in {root} (or point the profile's corpus root at the folder that has it)"
    )


def read_parallel(
    root: str | Path, split: str, source: str, target: str, *, limit: int | None = None
) -> tuple[list[str], list[str]]:
    """The aligned sentences of ``{split}.{source}`` and ``{split}.{target}`` in ``root``
    (at most ``limit``)."""
    root = Path(root)
    sides = []
    for lang in (source, target):
        path = root / f"{split}.{lang}"
        if not path.is_file():
            raise DataError(
                f"{path} is missing. "
                + _user_fix(root, f"{split}.{source} and {split}.{target}, one sentence a line")
            )
        sides.append(_read_lines(path, limit))
    if len(sides[0]) != len(sides[1]):
        raise DataError(
            f"{root / f'{split}.{source}'} has {len(sides[0])} lines but "
            f"{root / f'{split}.{target}'} has {len(sides[1])}: the two sides of a parallel "
            "corpus must align line by line. Fix: re-run the corpus's preparation script"
        )
    return sides[0], sides[1]


def read_text(root: str | Path, split: str, pattern: str, *, limit: int | None = None) -> list[str]:
    """The non-empty lines of the split's file (``pattern`` with ``{split}``) in ``root``."""
    path = Path(root) / pattern.format(split=split)
    if not path.is_file():
        raise DataError(f"{path} is missing. " + _user_fix(Path(root), pattern.format(split=split)))
    return [t for t in _read_lines(path, limit) if t.strip()]


def _read_lines(path: Path, limit: int | None) -> list[str]:
    lines = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if limit is not None and len(lines) >= limit:
                    break
                lines.append(line.rstrip("\n").strip())
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}). "
            "Fix: convert it with `iconv -t utf-8`"
        ) from None
    return lines


@DATASETS.register("parallel_text")
def parallel_text(
    split: str,
    *,
    root: str | Path,
    source: str,
    target: str,
    tokenizer: Any,
    subset: int | None = None,
    max_tokens: int | None = None,
    truncate_source: int | None = None,
    **_: Any,
) -> Any:
    """A user's parallel corpus in fairseq's raw layout (see the module doc), ``source`` ->
    ``target``, as :class:`~common.data.tokens.TokenSequences` with its texts; sources cut to
    ``truncate_source`` tokens if given."""
    src, tgt = read_parallel(root, split, source, target, limit=subset)
    refs = [f"{split}.{i + 1}" for i in range(len(src))]
    return _pairs_dataset(src, tgt, refs, tokenizer, max_tokens, truncate_source)


@DATASETS.register("lm_text")
def lm_text(
    split: str,
    *,
    root: str | Path,
    pattern: str,
    tokenizer: Any,
    subset: int | None = None,
    max_tokens: int | None = None,
    block_tokens: int | None = None,
    **_: Any,
) -> Any:
    """A user's monolingual corpus (see the module doc): a line an example, or blocks."""
    lines = read_text(root, split, pattern, limit=subset)
    return _lines_dataset(lines, tokenizer, max_tokens, block_tokens)
