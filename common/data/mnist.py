"""MNIST (LeCun, Cortes, Burges), shipped with this repository under ``data/mnist``.

The four original IDX files are committed with their SHA-256 sums (CC BY-SA 3.0, see
``data/mnist/README.md``). Every read verifies the checksums, so a corrupt or truncated file
fails loudly with the file's name and the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from common.data.arrays import MANIFEST_FILE, ArrayDataset, channel_stats, load_prepared
from common.data.checksums import DataError, verify_directory
from common.data.idx import read_idx
from common.data.registry import DATASETS
from common.paths import data_root

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
RAW_FIX = (
    "MNIST ships with this repository: restore the file with `git checkout -- data/mnist` "
    "(or set EFFML_DATA_ROOT to a directory whose mnist/ holds the four IDX files and SHA256SUMS)"
)
PREPARED_FIX = "regenerate it with `dvc repro prepare_mnist` (or delete data/prepared/mnist)"


def read_mnist_raw(root: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Verify and read one split from the raw IDX files: ``(images (N, 28, 28) uint8, labels)``."""
    if split not in FILES:
        raise DataError(f"MNIST has no split {split!r}; use 'train' or 'test'")
    root = Path(root)
    verify_directory(root, list(FILES[split]), fix=RAW_FIX)
    images = read_idx(root / FILES[split][0])
    labels = read_idx(root / FILES[split][1]).astype(np.int64)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise DataError(
            f"{root}: unexpected MNIST shapes {images.shape} / {labels.shape}. Fix: {RAW_FIX}"
        )
    return images, labels


def default_root() -> Path:
    prepared = data_root() / "prepared" / "mnist"
    return prepared if (prepared / MANIFEST_FILE).is_file() else data_root() / "mnist"


@DATASETS.register("mnist")
def build_mnist(
    split: str, *, root: str | Path | None = None, subset: int | None = None, seed: int = 0
) -> ArrayDataset:
    """MNIST as an :class:`ArrayDataset` of ``(1, 28, 28)`` images.

    ``root`` may be the raw directory (IDX files + SHA256SUMS) or a prepared one
    (``arrays.npz`` + ``manifest.json``, written by the ``prepare_mnist`` stage).
    """
    root = Path(root) if root is not None else default_root()
    if (root / MANIFEST_FILE).is_file():
        ds = load_prepared(root, split, fix=PREPARED_FIX)
    else:
        images, labels = read_mnist_raw(root, split)
        train_images = images if split == "train" else read_mnist_raw(root, "train")[0]
        mean, std = channel_stats(train_images[:, None])
        ds = ArrayDataset(
            torch.from_numpy(images[:, None].copy()),
            torch.from_numpy(labels),
            mean=mean,
            std=std,
            num_classes=10,
            name="mnist",
        )
    return ds.subset(subset, seed=seed)
