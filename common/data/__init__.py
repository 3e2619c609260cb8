"""Datasets: a registry with real offline defaults, verified files, and fast in-memory batching.

>>> from common.data import build_dataset, DATASETS
>>> train = build_dataset("mnist", "train")       # verified against data/mnist/SHA256SUMS
>>> DATASETS.names()                              # every registered dataset

Registering the built-in datasets happens on import of this package (the text corpora are
defined with the text utilities, :mod:`common.text.corpus`).
"""

from common.data import colour_digits, mnist, vision  # noqa: F401  (registers datasets)
from common.data.arrays import ArrayDataset, load_prepared, save_prepared
from common.data.checksums import DataError
from common.data.loader import EpochBatchSampler, build_loader
from common.data.registry import DATASETS, build_dataset
from common.text import corpus  # noqa: F401  (registers the text corpora)

__all__ = [
    "DATASETS",
    "ArrayDataset",
    "DataError",
    "EpochBatchSampler",
    "build_dataset",
    "build_loader",
    "load_prepared",
    "save_prepared",
]
