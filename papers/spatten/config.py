"""The profiles of SpAtten's stages (``papers/spatten/params.yaml``), typed and validated."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config import ConfigError, bounds
from common.data import DATASETS
from common.models import check_model
from common.train import TrainConfig


@dataclass(frozen=True)
class ModelConfig:
    """One network the ``train`` stage trains: a registered model on a registered dataset."""

    model: str = "lenet5"
    model_kwargs: dict[str, int | float] = field(default_factory=dict)
    dataset: str = "mnist"
    train_subset: int | None = field(default=None, metadata=bounds(ge=1))
    test_subset: int | None = field(default=None, metadata=bounds(ge=1))
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        # Checked with the params, before any work: a typo names the key and what is allowed.
        check_model(self.model, self.model_kwargs)
        if self.dataset not in DATASETS:
            raise ConfigError(
                f"dataset: {self.dataset!r} is not a registered dataset; "
                f"known: {', '.join(DATASETS.names())}"
            )


@dataclass(frozen=True)
class SpattenProfile:
    """A profile of ``papers/spatten/params.yaml``."""

    models: dict[str, ModelConfig] = field(default_factory=dict)
