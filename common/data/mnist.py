"""MNIST (LeCun, Cortes, Burges), shipped with this repository under ``data/mnist``.

The four original IDX files are committed with their SHA-256 sums (CC BY-SA 3.0, see
``data/mnist/README.md``). Every read verifies the checksums, so a corrupt or truncated file
fails loudly with the file's name and the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from common.data.arrays import (
    ARRAYS_FILE,
    MANIFEST_FILE,
    ArrayDataset,
    channel_stats,
    load_prepared,
)
from common.data.checksums import SUMS_FILE, DataError, verify_directory
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
PREPARED_FIX = (
    "regenerate it with `dvc repro prepare_mnist` (or `make repro`), the stage that decodes "
    "data/mnist into data/prepared/mnist"
)


def read_mnist_raw(root: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Verify and read one split from the raw IDX files: ``(images (N, 28, 28) uint8, labels)``.

    Labels come back as int64 in ``0..9``; anything else in the files is a :class:`DataError`
    naming the file and the fix.
    """
    if split not in FILES:
        raise DataError(f"MNIST has no split {split!r}; use 'train' or 'test'")
    root = Path(root)
    verify_directory(root, list(FILES[split]), fix=RAW_FIX)
    image_file, label_file = (root / name for name in FILES[split])
    images = read_idx(image_file, fix=RAW_FIX)
    labels = read_idx(label_file, fix=RAW_FIX)
    if images.dtype != np.uint8 or images.shape[1:] != (28, 28):
        raise DataError(
            f"{image_file} holds {images.dtype} images of shape {images.shape}, MNIST's are "
            f"uint8 (N, 28, 28). Fix: {RAW_FIX}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(
            f"{label_file} holds {labels.dtype} labels of shape {labels.shape}, MNIST's are "
            f"uint8 (N,). Fix: {RAW_FIX}"
        )
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{label_file} holds {labels.shape[0]} labels but {image_file.name} holds "
            f"{images.shape[0]} images. Fix: {RAW_FIX}"
        )
    if labels.size and int(labels.max()) > 9:
        raise DataError(
            f"{label_file} holds label {int(labels.max())}, MNIST's labels are 0 to 9. "
            f"Fix: {RAW_FIX}"
        )
    return images, labels.astype(np.int64)


def _is_prepared(root: Path) -> bool:
    """Whether ``root`` is to be read as a prepared directory rather than the raw IDX files.

    It is when it holds ``manifest.json`` or ``arrays.npz``, and also when it holds neither those
    nor any raw file (``SHA256SUMS``, an IDX file): a missing or empty directory is a prepared one
    whose stage has not run, and the message should say so, not blame ``data/mnist``.
    """
    if (root / MANIFEST_FILE).exists() or (root / ARRAYS_FILE).exists():
        return True
    raw_names = [SUMS_FILE, *(name for pair in FILES.values() for name in pair)]
    return not any((root / name).exists() for name in raw_names)


def default_root() -> Path:
    prepared = data_root() / "prepared" / "mnist"
    return prepared if (prepared / MANIFEST_FILE).is_file() else data_root() / "mnist"


@DATASETS.register("mnist")
def build_mnist(
    split: str, *, root: str | Path | None = None, subset: int | None = None, seed: int = 0
) -> ArrayDataset:
    """MNIST as an :class:`ArrayDataset` of ``(1, 28, 28)`` images.

    ``root`` may be the raw directory (IDX files + SHA256SUMS) or a prepared one
    (``arrays.npz`` + ``manifest.json``, written by the ``prepare_mnist`` stage). A directory
    with neither (missing or empty) is taken for a prepared one that has not been made yet.
    """
    if root is None:
        root = default_root()
        prepared = root != data_root() / "mnist"
    else:
        root = Path(root)
        prepared = _is_prepared(root)
    if prepared:
        ds = load_prepared(root, split, fix=PREPARED_FIX, name="mnist")
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
