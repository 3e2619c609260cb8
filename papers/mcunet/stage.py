"""What the MCUNet stages share: the harness bound to the ``mcunet`` section, the flag catalogue,
and the datasets at a model's resolution."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from common.data import build_dataset
from common.data.transforms import resize
from common.stage import STAGE_FLAGS, stage
from papers.mcunet.config import MCUNetProfile, ModelConfig

SECTION = "mcunet"

FLAGS: dict[str, dict[str, Any]] = {
    **STAGE_FLAGS,
    "name": {
        "required": True,
        "help": "model: a key of papers/mcunet/params.yaml: <profile>.models",
    },
    "model": {"type": Path, "required": True, "help": "directory with model.safetensors"},
    "space": {
        "type": Path,
        "required": True,
        "help": "the search-space stage's output directory (its results.json)",
    },
    "searched": {
        "type": Path,
        "required": True,
        "help": "the TinyNAS search stage's output directory (its results.json)",
    },
    "deployed": {
        "type": Path,
        "required": True,
        "help": "deploy stage output of the ablation model (its model.tflite)",
    },
}

# ``@mcunet_stage(name=..., flags=[...], track=...)``: a stage of this paper (see common.stage).
mcunet_stage = functools.partial(stage, section=SECTION, config=MCUNetProfile, catalogue=FLAGS)


def datasets(
    m: ModelConfig, data: Path, seed: int, *, resolution: int | None = None
) -> tuple[Any, Any]:
    """Train and test splits, upsampled to ``resolution`` (default: the model's) when it differs."""
    size = resolution if resolution is not None else m.resolution
    train = build_dataset(m.dataset, "train", root=data, subset=m.train_subset, seed=seed)
    test = build_dataset(m.dataset, "test", root=data, subset=m.test_subset, seed=seed)
    if train.input_shape[-1] != size:
        train.transform = test.transform = resize(size)
    return train, test
