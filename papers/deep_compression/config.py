"""Typed configuration of the Deep Compression stages (``deep_compression.profiles.<name>``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from common.config import ConfigError, bounds
from common.models import MODELS
from common.train import TrainConfig


@dataclass(frozen=True)
class BaselineConfig:
    """One reference network of Table 1, trained from scratch on MNIST."""

    model: str
    train: TrainConfig
    dataset: Literal["mnist"] = "mnist"
    train_subset: int | None = field(default=None, metadata=bounds(ge=1))
    test_subset: int | None = field(default=None, metadata=bounds(ge=1))
    latency_repeats: int = field(default=50, metadata=bounds(ge=1))

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(
                f"model: {self.model!r} is not a registered model; known: {', '.join(MODELS.names())}"
            )


@dataclass(frozen=True)
class DeepCompressionProfile:
    """Everything under ``deep_compression.profiles.<profile>`` in params.yaml."""

    baseline: dict[str, BaselineConfig]
