"""The paper profile's encoder benchmarks from the user's files: GLUE and SQuAD.

* **GLUE** in the layout of its download script (what BERT's ``run_classifier.py`` reads):
  ``<root>/<TASK>/train.tsv`` and ``dev.tsv`` (MNLI: ``dev_matched.tsv``), tab-separated, unquoted.
  GLUE's test labels are hidden, so the dev set is our test set and the validation set (the pruning
  search's) is held out from the end of the training file. Every task is scored by accuracy (the
  metric the pruning search needs per example); STS-B, a regression, is not among them.
* **SQuAD** v1.1 / v2.0 JSON (``train-v1.1.json`` + ``dev-v1.1.json``, ``...-v2.0.json``): questions
  on Wikipedia paragraphs, an answer span (v2.0: or none). Long paragraphs become several windows
  (``doc_stride``); the answer is the best span over an example's windows (at most
  ``MAX_ANSWER`` tokens; v2.0 answers "no answer" when ``[CLS]`` scores higher), scored by the
  official token F1 and exact match after its normalisation. A pruned token cannot be an answer
  boundary: the model reads only the tokens cascade pruning kept.
"""

from __future__ import annotations

import collections
import csv
import json
import re
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from common.data.checksums import DataError
from papers.spatten.data import Example

# task -> (folder, test file, text column, pair column or None, label column, labels or None);
# columns by header name, or by index for CoLA (no header)
GLUE: dict[str, tuple[str, str, str | int, str | int | None, str | int, tuple[str, ...] | None]] = {
    "cola": ("CoLA", "dev.tsv", 3, None, 1, ("0", "1")),
    "sst2": ("SST-2", "dev.tsv", "sentence", None, "label", ("0", "1")),
    "mrpc": ("MRPC", "dev.tsv", "#1 String", "#2 String", "Quality", ("0", "1")),
    "qqp": ("QQP", "dev.tsv", "question1", "question2", "is_duplicate", ("0", "1")),
    "mnli": ("MNLI", "dev_matched.tsv", "sentence1", "sentence2", "gold_label",
             ("contradiction", "entailment", "neutral")),
    "qnli": ("QNLI", "dev.tsv", "question", "sentence", "label", ("entailment", "not_entailment")),
    "rte": ("RTE", "dev.tsv", "sentence1", "sentence2", "label", ("entailment", "not_entailment")),
    "wnli": ("WNLI", "dev.tsv", "sentence1", "sentence2", "label", ("0", "1")),
}  # fmt: skip
SQUAD = {"squad1": "v1.1", "squad2": "v2.0"}
BENCHMARKS = (*GLUE, *SQUAD)
MAX_ANSWER = 30  # tokens, as BERT's SQuAD scripts
N_BEST = 20
FIX = "see papers/spatten/README.md (the paper profile) for the layout the benchmark needs"


def _rows(path: Path, header: bool) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise DataError(f"{path} is missing. Fix: {FIX}")
    csv.field_size_limit(sys.maxsize)
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason}). Fix: {FIX}") from None
    if header and rows:
        return rows[0], rows[1:]
    return [], rows


def glue_examples(root: str | Path, task: str, split: str) -> list[Example]:
    """A GLUE task's ``train`` or ``dev`` examples; rows with a missing field are skipped (QQP's
    training file has a few)."""
    folder, dev, text, pair, label, labels = GLUE[task]
    path = Path(root) / folder / ("train.tsv" if split == "train" else dev)
    names, rows = _rows(path, header=not isinstance(text, int))

    def col(c: str | int | None) -> int | None:
        if c is None or isinstance(c, int):
            return c
        if c not in names:
            raise DataError(f"{path}: no column {c!r} in its header {names[:12]}. Fix: {FIX}")
        return names.index(c)

    ti, pi, li = col(text), col(pair), col(label)
    need = max(i for i in (ti, pi, li) if i is not None)
    index = {v: i for i, v in enumerate(labels or ())}
    out = []
    for row in rows:
        if len(row) <= need or row[li] not in index:
            continue
        out.append(Example(row[ti], None if pi is None else row[pi], index[row[li]]))
    if not out:
        raise DataError(f"{path} holds no usable {task} example. Fix: {FIX}")
    return out


def glue_classes(task: str) -> int:
    return len(GLUE[task][5] or ())


# ---------------------------------------------------------------------- SQuAD
@dataclass(frozen=True)
class QA:
    qid: str
    question: str
    context: str
    answers: tuple[str, ...]  # () = no answer (v2.0)
    start: int  # character offset of the first answer (-1: none)


def squad_examples(root: str | Path, task: str, split: str) -> list[QA]:
    version = SQUAD[task]
    path = Path(root) / f"{'train' if split == 'train' else 'dev'}-{version}.json"
    if not path.is_file():
        raise DataError(f"{path} is missing. Fix: {FIX}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        out = []
        for article in data:
            for para in article["paragraphs"]:
                for q in para["qas"]:
                    answers = [a for a in q.get("answers", []) if a["text"].strip()]
                    if not answers and not q.get("is_impossible", False):
                        continue
                    out.append(
                        QA(q["id"], q["question"], para["context"],
                           tuple(a["text"] for a in answers),
                           int(answers[0]["answer_start"]) if answers else -1)
                    )  # fmt: skip
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not SQuAD {version} JSON ({exc!r}). Fix: {FIX}") from None
    return out


class SpanTask(Dataset):
    """SQuAD examples as windows: ``inputs (N, 2, T)`` (ids; segment ids), ``targets (N, 2)`` the
    answer's first and last token (``[CLS]``: not in this window / no answer), and what scoring
    needs (each window's example and character offsets)."""

    def __init__(self, items: list[QA], tokenizer: Any, max_length: int, doc_stride: int) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise DataError("SQuAD needs a fast tokenizer (tokenizer.json or vocab.txt)")
        enc = tokenizer(
            [q.question for q in items], [q.context for q in items],
            truncation="only_second", max_length=max_length, stride=doc_stride,
            return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length",
        )  # fmt: skip
        n = len(enc["input_ids"])
        self.example = torch.tensor(enc["overflow_to_sample_mapping"])
        offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(n, max_length, 2)
        context = np.array([[s == 1 for s in enc.sequence_ids(f)] for f in range(n)])
        offsets[~context] = -1
        targets = np.zeros((n, 2), dtype=np.int64)
        for f in range(n):
            q = items[int(self.example[f])]
            inside = np.flatnonzero(context[f])
            if q.start < 0 or not len(inside):
                continue
            a0, a1 = q.start, q.start + len(q.answers[0])
            if offsets[f, inside[0], 0] <= a0 and offsets[f, inside[-1], 1] >= a1:
                first = inside[offsets[f, inside, 1] > a0][0]
                last = inside[offsets[f, inside, 0] < a1][-1]
                targets[f] = (first, max(first, last))
        offsets, targets = torch.from_numpy(offsets), torch.from_numpy(targets)
        ids = torch.tensor(enc["input_ids"])
        types = torch.tensor(enc["token_type_ids"])
        self.inputs = torch.stack([ids, types], 1)
        self.targets = targets
        self.offsets = offsets
        self.items = items
        self.num_classes = max_length
        self.input_shape = tuple(self.inputs.shape[1:])

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[i], self.targets[i]

    def predictions(self, logits: torch.Tensor) -> list[str]:
        """Each example's answer text ("" = no answer) from the windows' ``(N, T, 2)`` logits."""
        best: dict[int, tuple[float, str]] = {}
        null: dict[int, float] = {}
        for f in range(len(self)):
            j = int(self.example[f])
            s_log, e_log = logits[f, :, 0], logits[f, :, 1]
            null[j] = min(null.get(j, float("inf")), float(s_log[0] + e_log[0]))
            valid = self.offsets[f, :, 0] >= 0
            s_top = s_log.masked_fill(~valid, float("-inf")).topk(N_BEST).indices.tolist()
            e_top = e_log.masked_fill(~valid, float("-inf")).topk(N_BEST).indices.tolist()
            for s in s_top:
                for e in e_top:
                    if not (valid[s] and valid[e]) or e < s or e - s + 1 > MAX_ANSWER:
                        continue
                    score = float(s_log[s] + e_log[e])
                    if j not in best or score > best[j][0]:
                        text = self.items[j].context[
                            int(self.offsets[f, s, 0]) : int(self.offsets[f, e, 1])
                        ]
                        best[j] = (score, text)
        squad2 = any(not q.answers for q in self.items)
        out = []
        for j in range(len(self.items)):
            score, text = best.get(j, (float("-inf"), ""))
            out.append("" if squad2 and null.get(j, float("-inf")) > score else text)
        return out

    def scores(self, logits: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Per example, the official F1 and exact match (0-1) of the predicted answers."""
        preds = self.predictions(logits)
        f1 = np.array(
            [max_over(token_f1, p, q.answers) for p, q in zip(preds, self.items, strict=True)]
        )
        em = np.array(
            [max_over(exact, p, q.answers) for p, q in zip(preds, self.items, strict=True)]
        )
        return f1, em


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def token_f1(pred: str, gold: str) -> float:
    p, g = normalize(pred).split(), normalize(gold).split()
    if not p or not g:
        return float(p == g)
    same = sum((collections.Counter(p) & collections.Counter(g)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def exact(pred: str, gold: str) -> float:
    return float(normalize(pred) == normalize(gold))


def max_over(metric, pred: str, answers: tuple[str, ...]) -> float:
    """The best score over the gold answers; no gold answer: right only if the prediction is
    empty too."""
    return max(metric(pred, a) for a in answers) if answers else float(pred == "")
