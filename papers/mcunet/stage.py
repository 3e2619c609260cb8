"""What the MCUNet stages share: config loading, the flag catalogue, datasets at a resolution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.config import ConfigError, load_profile
from common.data import build_dataset
from common.data.transforms import resize
from common.stage import STAGE_FLAGS
from papers.mcunet.config import MCUNetProfile, ModelConfig

EXPERIMENT = "mcunet"
SECTION = "mcunet"

FLAGS: dict[str, dict[str, Any]] = {
    **STAGE_FLAGS,
    "name": {"required": True, "help": "model: a key of mcunet.profiles.<profile>.models"},
    "model": {"type": Path, "required": True, "help": "directory with model.safetensors"},
}


def load_config(params: Path) -> tuple[str, MCUNetProfile]:
    return load_profile(MCUNetProfile, params, SECTION)


def model_config(params: Path, cfg: MCUNetProfile, name: str) -> ModelConfig:
    if name not in cfg.models:
        raise ConfigError(
            f"{params}: {SECTION}.profiles.<profile>.models has no {name!r}; it has {', '.join(cfg.models)}"
        )
    return cfg.models[name]


def datasets(m: ModelConfig, data: Path, seed: int) -> tuple[Any, Any]:
    """Train and test splits, upsampled to the model's resolution when it differs."""
    train = build_dataset(m.dataset, "train", root=data, subset=m.train_subset, seed=seed)
    test = build_dataset(m.dataset, "test", root=data, subset=m.test_subset, seed=seed)
    if train.input_shape[-1] != m.resolution:
        train.transform = test.transform = resize(m.resolution)
    return train, test
