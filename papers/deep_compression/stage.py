"""What every Deep Compression stage does the same way: config, data, model files, evaluation."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from common.checkpoint import CheckpointError, load_model
from common.config import ConfigError, load_profile
from common.data import build_dataset
from common.stage import STAGE_FLAGS, run_stage
from common.train import evaluate_dataset
from papers.deep_compression.config import BaselineConfig, DeepCompressionProfile

EXPERIMENT = "deep_compression"
SECTION = "deep_compression"


def load_config(params: Path) -> tuple[str, DeepCompressionProfile]:
    return load_profile(DeepCompressionProfile, params, SECTION)


def network_config(params: Path, cfg: DeepCompressionProfile, section: str, name: str) -> Any:
    """``cfg.<section>[name]`` with an error listing the networks the section has."""
    entries = getattr(cfg, section)
    if name not in entries:
        raise ConfigError(
            f"{params}: {SECTION}.profiles.<profile>.{section} has no {name!r}; it has {', '.join(entries)}"
        )
    return entries[name]


def datasets(base: BaselineConfig, data: Path) -> tuple[Dataset, Dataset]:
    """The train and test splits a network was trained on (same subsets, same seed)."""
    seed = base.train.seed
    train = build_dataset(base.dataset, "train", root=data, subset=base.train_subset, seed=seed)
    test = build_dataset(base.dataset, "test", root=data, subset=base.test_subset, seed=seed)
    return train, test


def load_network(directory: Path) -> tuple[nn.Module, dict[str, Any]]:
    """A model written by an earlier stage (``model.safetensors`` + its JSON)."""
    path = directory / "model.safetensors"
    if not path.is_file():
        raise CheckpointError(
            f"{path} not found: run the earlier stage first (`dvc repro` runs it for you)"
        )
    return load_model(path)


def test_error(model: nn.Module, data: Dataset) -> float:
    return evaluate_dataset(model.eval(), data)["error"]


# The stages' command-line flags; dvc.yaml passes every path through them.
FLAGS: dict[str, dict[str, Any]] = {
    **STAGE_FLAGS,
    "name": {"required": True, "help": "network: a key of the profile's section for this stage"},
    "baseline": {"type": Path, "required": True, "help": "directory of the trained baseline"},
    "pruned": {"type": Path, "required": True, "help": "directory of the pruned network"},
}


def run_main(
    description: str,
    flags: list[str] | Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], Any],
    argv: list[str] | None,
) -> int:
    """:func:`common.stage.run_stage` with this paper's flag catalogue."""
    return run_stage(description, flags, run, argv, catalogue=FLAGS)


@torch.no_grad()
def dense_bytes(model: nn.Module) -> int:
    """float32 bytes of every parameter: the uncompressed size of Table 1."""
    return sum(p.numel() * 4 for p in model.parameters())
