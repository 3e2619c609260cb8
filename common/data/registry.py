"""The dataset registry: ``build_dataset(name, split)`` for every dataset the papers use."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from torch.utils.data import Dataset

from common.registry import Registry


class DatasetBuilder(Protocol):
    def __call__(self, split: str, *, root: str | Path | None = None, **kwargs: Any) -> Dataset: ...


DATASETS: Registry[DatasetBuilder] = Registry("dataset")


def build_dataset(
    name: str, split: str, *, root: str | Path | None = None, **kwargs: Any
) -> Dataset:
    """Build split ``split`` of the registered dataset ``name``.

    Args:
        name: a registered name (``DATASETS.names()`` lists them).
        split: ``"train"`` or ``"test"`` (``"val"`` for ImageNet-style sets).
        root: where the data lives; each dataset has a default under the data root
            (``$EFFML_DATA_ROOT``, else ``<repo>/data``).
        **kwargs: dataset-specific options (``download=True`` for torchvision sets, ...).

    Every returned dataset has ``num_classes`` and ``input_shape`` attributes.
    """
    return DATASETS.get(name)(split, root=root, **kwargs)
