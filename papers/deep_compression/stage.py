"""What is particular to the Deep Compression stages: their flags, data, model files and sizes.

Every stage is a :func:`dc_stage` (the shared harness, :func:`common.stage.stage`, with this
paper's section, profile class and flag catalogue)::

    @dc_stage(name="deep_compression_prune@{name}", flags=[...], track=lambda c: c.entry("prune"))
    def main(ctx: StageContext) -> None: ...
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from common.checkpoint import CheckpointError, load_model
from common.data import build_dataset
from common.io import write_json
from common.stage import STAGE_FLAGS, StageContext, stage
from common.train import evaluate_dataset
from papers.deep_compression.config import BaselineConfig, DeepCompressionProfile

SECTION = "deep_compression"

# The stages' command-line flags; dvc.yaml passes every path through them.
FLAGS: dict[str, dict[str, Any]] = {
    **STAGE_FLAGS,
    "name": {"required": True, "help": "network: a key of the profile's section for this stage"},
    "baseline": {"type": Path, "required": True, "help": "directory of the trained baseline"},
    "pruned": {"type": Path, "required": True, "help": "directory of the pruned network"},
}

dc_stage = functools.partial(stage, section=SECTION, config=DeepCompressionProfile, catalogue=FLAGS)


def datasets(base: BaselineConfig, data: Path) -> tuple[Dataset, Dataset]:
    """The train and test splits a network was trained on (same subsets, same seed)."""
    seed = base.train.seed
    train = build_dataset(base.dataset, "train", root=data, subset=base.train_subset, seed=seed)
    test = build_dataset(base.dataset, "test", root=data, subset=base.test_subset, seed=seed)
    return train, test


def network_inputs(
    ctx: StageContext, model_dir: Path, train_subset: int | None = None
) -> tuple[Dataset, Dataset, nn.Module, dict[str, Any]]:
    """What a stage after training works on: the splits the network ``--name`` was trained on
    (the training split cut to ``train_subset`` images when given) and the model an earlier stage
    wrote to ``model_dir`` with its metadata."""
    train, test = datasets(ctx.entry("baseline"), ctx.args.data)
    if train_subset is not None:
        train = train.subset(train_subset, seed=0)
    model, meta = load_network(model_dir)
    return train, test, model, meta


def load_network(directory: Path) -> tuple[nn.Module, dict[str, Any]]:
    """A model written by an earlier stage (``model.safetensors`` + its JSON)."""
    path = directory / "model.safetensors"
    if not path.is_file():
        raise CheckpointError(
            f"{path} not found: run the earlier stage first (`dvc repro` runs it for you)"
        )
    return load_model(path)


def test_error(model: nn.Module, data: Dataset) -> float:
    """Top-1 error (%) of ``model`` on ``data``."""
    return evaluate_dataset(model.eval(), data)["error"]


@torch.no_grad()
def dense_bytes(model: nn.Module) -> int:
    """float32 bytes of every parameter: the uncompressed size of Table 1."""
    return sum(p.numel() * 4 for p in model.parameters())


def finish_analysis(ctx: StageContext, config: Any, side: Any, metrics: dict[str, float]) -> None:
    """The end of an analysis stage whose ``--out`` is one JSON file of points or rows for the
    report: write it and the resolved config beside it (``<out>_config.json``), then the metrics."""
    out = ctx.args.out
    write_json(side, out)
    ctx.save_config(config, out.with_name(out.stem + "_config.json"))
    ctx.finish(metrics, artifacts=[out])
