"""SpAtten's tasks on the offline Bible corpus, on the chapter split of the ``prepare_bible``
stage (``data/prepared/bible``: no chapter crosses splits, the same test chapters as Lite
Transformer's) with the King James text of each verse from ``data/bible``:

* ``paraphrase`` (a sentence pair, like GLUE's MRPC/QQP): the same verse in two English
  translations (World English Bible, King James Version) is a paraphrase; a WEB verse with the KJV
  text of another verse of the same chapter (same topic and names: a hard negative) is not.
  Balanced, one negative per positive.
* ``section`` (a single sentence, like SST-2's single input): which of six parts of the Bible a
  WEB verse comes from (the Law, History, Wisdom, Prophets, Gospels and Acts, Letters and
  Revelation), books taken in canonical order.

Each example is a ``(2, max_length)`` tensor (WordPiece ids; segment ids) and a label, ready for
the shared classification loop; sentences are encoded by the MiniLM checkpoint's tokenizer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from common.data.checksums import DataError
from common.text.corpus import chapter_of, read_bible, read_pairs

# Canonical book counts per section (39 Old Testament books, 27 New Testament books).
SECTIONS = [
    ("Law", 5),
    ("History", 12),
    ("Wisdom", 5),
    ("Prophets", 17),
    ("Gospels and Acts", 5),
    ("Letters and Revelation", 22),
]
TASKS = ("paraphrase", "section")


@dataclass(frozen=True)
class Example:
    text: str
    pair: str | None
    label: int


def examples(raw: str | Path, prepared: str | Path, task: str, split: str) -> list[Example]:
    """The examples of a task's split, in a fixed shuffled order."""
    if task not in TASKS:
        raise DataError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    pairs, kjv = read_bible(raw)
    in_split = [(ref, en) for ref, en, _ in read_pairs(prepared, split)]
    rng = random.Random(f"{task}:{split}")
    out: list[Example] = []
    if task == "section":
        books = list(dict.fromkeys(ref.split(".")[0] for ref, _, _ in pairs))
        if len(books) != sum(n for _, n in SECTIONS):
            raise DataError(f"{raw}: expected 66 books, found {len(books)}")
        section = {}
        for label, (_, n) in enumerate(SECTIONS):
            for book in books[len(section) : len(section) + n]:
                section[book] = label
        out = [Example(en, None, section[ref.split(".")[0]]) for ref, en in in_split]
    else:
        second = dict(kjv)
        by_chapter: dict[str, list[str]] = {}
        for ref, _ in in_split:
            if ref in second:
                by_chapter.setdefault(chapter_of(ref), []).append(ref)
        for ref, en in in_split:
            others = [r for r in by_chapter.get(chapter_of(ref), []) if r != ref]
            if ref not in second or not others:
                continue
            out.append(Example(en, second[ref], 1))
            out.append(Example(en, second[rng.choice(others)], 0))
    rng.shuffle(out)
    return out


class EncodedTask(Dataset):
    """Examples encoded as ``(ids; segment ids)`` of ``max_length`` (pairs truncated longest
    first, as BERT's GLUE scripts), with their labels."""

    def __init__(self, items: list[Example], tokenizer: Any, max_length: int, classes: int) -> None:
        texts = [e.text for e in items]
        pairs = [e.pair for e in items]
        kw = {"truncation": True, "max_length": max_length, "padding": "max_length"}
        enc = (
            tokenizer(texts, pairs, **kw)
            if any(p is not None for p in pairs)
            else tokenizer(texts, **kw)
        )
        ids = torch.tensor(enc["input_ids"])
        types = torch.tensor(enc["token_type_ids"])
        self.inputs = torch.stack([ids, types], 1)  # (N, 2, T)
        self.targets = torch.tensor([e.label for e in items])
        self.items = items
        self.num_classes = classes
        self.input_shape = tuple(self.inputs.shape[1:])

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[i], self.targets[i]


def num_classes(task: str) -> int:
    return 2 if task == "paraphrase" else len(SECTIONS)


def load_task(
    raw: str | Path,
    prepared: str | Path,
    task: str,
    split: str,
    tokenizer: Any,
    *,
    max_length: int,
    subset: int | None,
) -> EncodedTask:
    items = examples(raw, prepared, task, split)
    if subset is not None:
        items = items[:subset]
    return EncodedTask(items, tokenizer, max_length, num_classes(task))


def task_split(
    profile: Any, row: str, split: str, tokenizer: Any, *, raw: Path, prepared: Path,
    subset: int | None,
) -> Dataset:  # fmt: skip
    """A split of a profile's encoder row, encoded at its encoder's ``max_length``: a Bible task,
    or a GLUE / SQuAD benchmark from the user's files (:mod:`papers.spatten.benchmarks`), whose
    validation set is held out of the training file (``valid_subset`` examples, default 5%; SQuAD:
    whole paragraphs) and whose dev set is the test set."""
    from papers.spatten import benchmarks as b
    from papers.spatten.config import user_path

    bench, task = profile.benchmark(row), profile.tasks[row]
    max_length = profile.encoder_of(row).max_length
    if bench in TASKS:
        return load_task(
            raw, prepared, bench, split, tokenizer, max_length=max_length, subset=subset
        )
    root = user_path(task.root)
    if bench in b.GLUE:
        items = b.glue_examples(root, bench, "dev" if split == "test" else "train")
    else:
        items = b.squad_examples(root, bench, "dev" if split == "test" else "train")
    if split != "test":
        items = _hold_out(items, split, task.valid_subset, bench)
    items = items[:subset] if subset is not None else items
    if bench in b.GLUE:
        return EncodedTask(items, tokenizer, max_length, b.glue_classes(bench))
    return b.SpanTask(items, tokenizer, max_length, task.doc_stride)


def _hold_out(items: list, split: str, size: int | None, seed: str) -> list:
    """The validation examples (a seeded draw of ``size``, default 5%, of the training file's:
    whole paragraphs for SQuAD) or the rest, shuffled."""
    groups: dict[str, list] = {}
    for item in items:
        groups.setdefault(getattr(item, "context", None) or str(len(groups)), []).append(item)
    keys = list(groups)
    random.Random(f"{seed}:hold-out").shuffle(keys)
    want = size or max(1, len(items) // 20)
    valid, n = set(), 0
    for k in keys:
        if n >= want:
            break
        valid.add(k)
        n += len(groups[k])
    if n >= len(items):
        raise DataError(f"{seed}: {len(items)} training examples leave none to train on after "
                        f"holding out the validation set (valid_subset {size})")  # fmt: skip
    return [x for k in keys if (k in valid) == (split == "valid") for x in groups[k]]
