"""The Bible corpus: verified, split by whole chapters, and tokenized with clear errors."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from common.data import DataError, build_dataset
from common.paths import repo_root
from common.text.corpus import chapter_of, prepare_bible, read_bible, read_lines, read_pairs
from common.text.tokenizer import Tokenizer, train_tokenizer

RAW = repo_root() / "data" / "bible"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bible")
    prepare_bible(RAW, out, valid_pct=3.0, test_pct=4.0)
    return out


@pytest.fixture(scope="module")
def tokenizer(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    pairs = read_pairs(prepared, "train")[:2000]
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer([e for _, e, _ in pairs] + [s for _, _, s in pairs], out, vocab_size=300)
    return Tokenizer.load(out)


def test_every_verse_lands_in_one_split_and_chapters_never_straddle(prepared: Path) -> None:
    splits = {s: read_pairs(prepared, s) for s in ("train", "valid", "test")}
    assert sum(len(v) for v in splits.values()) == 31077
    chapters = {s: {chapter_of(r) for r, _, _ in v} for s, v in splits.items()}
    assert not chapters["train"] & chapters["test"]
    assert not chapters["train"] & chapters["valid"]
    assert not chapters["valid"] & chapters["test"]
    assert 0.02 < len(splits["test"]) / 31077 < 0.07
    # language modelling: both English translations of the same chapters
    lm_test = read_lines(prepared, "test")
    assert len(lm_test) > len(splits["test"]) * 1.9
    # Only stock phrases recur verbatim in other chapters ("Yahweh spoke to Moses, saying,").
    test_en = [e for _, e, _ in splits["test"]]
    seen = set(read_lines(prepared, "train"))
    assert sum(e in seen for e in test_en) / len(test_en) < 0.03


def test_kjv_books_follow_the_pairs_order() -> None:
    pairs, kjv = read_bible(RAW)
    assert kjv[0][0] == "Gen.1.1" and "In the beginning God created" in kjv[0][1]
    assert kjv[-1][0].startswith("Rev.22.")
    assert {chapter_of(r) for r, _ in kjv} >= {chapter_of(r) for r, _, _ in pairs[:1000]}


def test_corrupt_or_missing_raw_files_name_the_fix(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(RAW, raw)
    (raw / "kjv_en.txt.gz").chmod(0o644)
    with gzip.open(raw / "kjv_en.txt.gz", "wt") as fh:
        fh.write("Ge1:1 tampered\n")
    with pytest.raises(DataError, match=r"corrupt.*git checkout -- data/bible"):
        read_bible(raw)
    with pytest.raises(DataError, match=r"is missing.*dvc repro prepare_bible"):
        read_pairs(tmp_path / "nowhere", "train")


def test_datasets_tokenize_with_the_trained_model(prepared: Path, tokenizer: Tokenizer) -> None:
    ds = build_dataset("bible_en_es", "test", root=prepared, tokenizer=tokenizer, subset=5)
    assert len(ds) == 5 and ds.vocab_size == 300
    assert tokenizer.decode([ds.sources[0].tolist()])[0] == ds.sources_text[0]
    batch = ds.collate([ds[0], ds[1]])
    assert batch.inputs[0, 0] == tokenizer.bos_id and batch.source is not None
    lm = build_dataset("bible_en", "valid", root=prepared, tokenizer=tokenizer, max_tokens=20)
    assert all(len(t) + 1 <= 20 for t in lm.targets)


def test_a_bad_tokenizer_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "spm.model").write_bytes(b"not a model")
    with pytest.raises(DataError, match="is not a SentencePiece model"):
        Tokenizer.load(tmp_path)
    with pytest.raises(DataError, match="no tokenizer there"):
        Tokenizer.load(tmp_path / "missing")


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(t + "\n" for t in lines), encoding="utf-8")


def test_parallel_text_reads_fairseqs_raw_layout(tmp_path: Path, tokenizer: Tokenizer) -> None:
    _write(tmp_path / "test.en", ["In the beginning.", "And God said.", "Let there be light."])
    _write(tmp_path / "test.fr", ["Au commencement.", "Et Dieu dit.", "Que la lumiere soit."])
    ds = build_dataset(
        "parallel_text", "test", root=tmp_path, source="en", target="fr", tokenizer=tokenizer
    )
    assert ds.sources_text == ["In the beginning.", "And God said.", "Let there be light."]
    assert ds.targets_text[2] == "Que la lumiere soit."
    assert ds.sources[1].tolist() == tokenizer.encode(["And God said."])[0]
    cut = build_dataset("parallel_text", "test", root=tmp_path, source="en", target="fr",
                        tokenizer=tokenizer, truncate_source=2, subset=2)  # fmt: skip
    assert len(cut) == 2 and max(len(s) for s in cut.sources) <= 2
    _write(tmp_path / "valid.en", ["one", "two"])
    _write(tmp_path / "valid.fr", ["un"])
    with pytest.raises(DataError, match=r"has 2 lines but .*valid.fr has 1"):
        build_dataset("parallel_text", "valid", root=tmp_path, source="en", target="fr",
                      tokenizer=tokenizer)  # fmt: skip
    with pytest.raises(DataError, match=r"train\.en is missing.*Fix:"):
        build_dataset("parallel_text", "train", root=tmp_path, source="en", target="fr",
                      tokenizer=tokenizer)  # fmt: skip


def test_lm_text_blocks_cover_the_stream_with_an_eos_after_every_line(
    tmp_path: Path, tokenizer: Tokenizer
) -> None:
    lines = ["In the beginning God created the heavens and the earth.", "", "And God said."]
    _write(tmp_path / "wiki.valid.tokens", lines)
    per_line = build_dataset("lm_text", "valid", root=tmp_path, pattern="wiki.{split}.tokens",
                             tokenizer=tokenizer)  # fmt: skip
    assert len(per_line) == 2  # the empty line is no example
    blocks = build_dataset("lm_text", "valid", root=tmp_path, pattern="wiki.{split}.tokens",
                           tokenizer=tokenizer, block_tokens=5)  # fmt: skip
    stream = [i for t in tokenizer.encode([lines[0], lines[2]]) for i in (*t, tokenizer.eos_id)]
    assert [i for t in blocks.targets for i in t.tolist()] == stream
    assert all(len(t) <= 4 for t in blocks.targets)  # + BOS/EOS = 5 tokens a block
    (tmp_path / "wiki.test.tokens").write_bytes(b"\xff\xfe bad")
    with pytest.raises(DataError, match=r"not UTF-8.*iconv"):
        build_dataset("lm_text", "test", root=tmp_path, pattern="wiki.{split}.tokens",
                      tokenizer=tokenizer)  # fmt: skip


def test_an_impossible_vocabulary_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"cannot train a bpe model of 5000 pieces.*Fix: change"):
        train_tokenizer(["a b c", "b c d"] * 20, tmp_path, vocab_size=5000, model_type="bpe")
