"""In-memory image datasets and the prepared-array file format the pipeline stages exchange.

A *prepared* dataset is a directory holding ``arrays.npz`` (``<split>_images`` as uint8
``(N, C, H, W)`` and ``<split>_labels`` as int64) and ``manifest.json`` (the npz's SHA-256,
per-split counts, channel mean/std, provenance). Loading verifies the SHA-256, so a corrupt or
half-written file is reported instead of silently training on garbage.

:class:`ArrayDataset` keeps everything in memory and supports *batch indexing*
(``dataset[index_tensor]`` returns a whole normalised batch), which makes small-image training
on CPU several times faster than collating one sample at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from common.data.checksums import DataError, sha256_file
from common.io import atomic_write_bytes

ARRAYS_FILE = "arrays.npz"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1


class ArrayDataset(Dataset):
    """uint8 images ``(N, C, H, W)`` and integer labels, normalised on access.

    Args:
        images: uint8 tensor ``(N, C, H, W)``.
        labels: int64 tensor ``(N,)``.
        mean: per-channel mean of ``images / 255``.
        std: per-channel standard deviation of ``images / 255``.
        num_classes: number of classes.
        name: dataset name (for messages).
        transform: optional batch transform applied to the normalised float batch
            ``(B, C, H, W)``; it receives a ``torch.Generator`` for reproducible augmentation.
    """

    supports_batch_indexing = True

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        num_classes: int,
        name: str = "arrays",
        transform: Callable[[Tensor, torch.Generator | None], Tensor] | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        self.images = images
        self.labels = labels.long()
        self.name = name
        self.num_classes = num_classes
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.transform = transform
        self.generator: torch.Generator | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return self.images.shape[0]

    def _normalise(self, x: Tensor) -> Tensor:
        return (x.float().div_(255.0) - self.mean) / self.std

    def __getitem__(self, index: Any) -> tuple[Tensor, Tensor]:
        if isinstance(index, int) or (isinstance(index, Tensor) and index.ndim == 0):
            x, y = self.__getitem__(torch.as_tensor([int(index)]))
            return x[0], y[0]
        index = torch.as_tensor(index, dtype=torch.long)
        x = self._normalise(self.images[index])  # (B, C, H, W) float
        if self.transform is not None:
            x = self.transform(x, self.generator)
        return x, self.labels[index]

    def subset(self, n: int | None, *, seed: int = 0) -> ArrayDataset:
        """A random subset of ``n`` samples (the whole set when ``n`` is None or too large)."""
        if n is None or n >= len(self):
            return self
        g = torch.Generator().manual_seed(seed)
        keep = torch.randperm(len(self), generator=g)[:n].sort().values
        return ArrayDataset(
            self.images[keep],
            self.labels[keep],
            mean=self.mean.flatten().tolist(),
            std=self.std.flatten().tolist(),
            num_classes=self.num_classes,
            name=self.name,
            transform=self.transform,
        )


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 ``(N, C, H, W)`` images scaled to [0, 1]."""
    c = images.shape[1]
    total = np.zeros(c)
    total_sq = np.zeros(c)
    count = 0
    for start in range(0, images.shape[0], chunk):
        block = images[start : start + chunk].astype(np.float64) / 255.0
        total += block.sum(axis=(0, 2, 3))
        total_sq += (block**2).sum(axis=(0, 2, 3))
        count += block.shape[0] * block.shape[2] * block.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


def save_prepared(
    out_dir: str | Path,
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    name: str,
    num_classes: int,
    stats_split: str = "train",
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``arrays.npz`` + ``manifest.json`` into ``out_dir`` and return the manifest.

    Channel statistics are computed on ``stats_split`` only (never on test data).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for split, (images, labels) in splits.items():
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"{split}: images must be uint8 (N, C, H, W)")
        arrays[f"{split}_images"] = np.ascontiguousarray(images)
        arrays[f"{split}_labels"] = np.ascontiguousarray(labels.astype(np.int64))
    tmp = out_dir / f".{ARRAYS_FILE}.tmp.npz"
    np.savez(tmp, **arrays)
    tmp.replace(out_dir / ARRAYS_FILE)
    mean, std = channel_stats(splits[stats_split][0])
    manifest = {
        "name": name,
        "format_version": FORMAT_VERSION,
        "sha256": sha256_file(out_dir / ARRAYS_FILE),
        "num_classes": num_classes,
        "input_shape": list(splits[stats_split][0].shape[1:]),
        "mean": mean,
        "std": std,
        "splits": {
            split: {
                "count": int(labels.shape[0]),
                "label_counts": np.bincount(labels, minlength=num_classes).tolist(),
            }
            for split, (_, labels) in splits.items()
        },
        "provenance": provenance or {},
    }
    atomic_write_bytes((json.dumps(manifest, indent=2) + "\n").encode(), out_dir / MANIFEST_FILE)
    return manifest


def read_manifest(root: str | Path, *, fix: str) -> dict[str, Any]:
    path = Path(root) / MANIFEST_FILE
    if not path.is_file():
        raise DataError(f"{path} is missing. Fix: {fix}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc}). Fix: {fix}") from None


def load_prepared(
    root: str | Path,
    split: str,
    *,
    fix: str,
    verify: bool = True,
    transform: Callable[[Tensor, torch.Generator | None], Tensor] | None = None,
) -> ArrayDataset:
    """Load one split of a prepared dataset, verifying its checksum first.

    Args:
        root: the prepared directory.
        split: ``"train"`` or ``"test"``.
        fix: the instruction shown when the data is missing or corrupt.
        verify: check the SHA-256 of ``arrays.npz`` against the manifest.
        transform: batch augmentation (see :class:`ArrayDataset`).
    """
    root = Path(root)
    manifest = read_manifest(root, fix=fix)
    path = root / ARRAYS_FILE
    if not path.is_file():
        raise DataError(f"{path} is missing. Fix: {fix}")
    if verify:
        actual = sha256_file(path)
        if actual != manifest["sha256"]:
            raise DataError(
                f"{path} is corrupt: its SHA-256 is {actual[:16]}..., the manifest says "
                f"{manifest['sha256'][:16]}.... Fix: {fix}"
            )
    if split not in manifest["splits"]:
        raise DataError(f"{root} has no split {split!r}; it has {', '.join(manifest['splits'])}")
    with np.load(path, allow_pickle=False) as npz:
        images = torch.from_numpy(npz[f"{split}_images"].copy())
        labels = torch.from_numpy(npz[f"{split}_labels"].copy())
    return ArrayDataset(
        images,
        labels,
        mean=manifest["mean"],
        std=manifest["std"],
        num_classes=manifest["num_classes"],
        name=manifest["name"],
        transform=transform,
    )
