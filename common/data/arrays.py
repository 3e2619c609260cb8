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
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from common.data.checksums import DataError, read_text_file, sha256_file
from common.io import atomic_path, atomic_write_bytes

ARRAYS_FILE = "arrays.npz"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
_HEX = frozenset("0123456789abcdef")


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
    with atomic_path(out_dir / ARRAYS_FILE) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # a file object: np.savez would append .npz to a path
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
    """The parsed ``manifest.json`` of the prepared directory ``root``.

    A missing directory or file, unreadable or invalid JSON, or JSON that is not an object
    raises :class:`DataError` naming the file and ``fix``; the entries are checked by
    :func:`check_manifest`.
    """
    root = Path(root)
    path = root / MANIFEST_FILE
    if not root.exists():
        raise DataError(f"{root} does not exist, so it holds no prepared dataset. Fix: {fix}")
    if not root.is_dir():
        raise DataError(f"{root} is not a directory (expected a prepared dataset). Fix: {fix}")
    if not path.exists():
        what = "is empty" if not any(root.iterdir()) else f"has no {MANIFEST_FILE}"
        raise DataError(
            f"{path} is missing ({root} {what}; the prepare stage writes {MANIFEST_FILE} and "
            f"{ARRAYS_FILE}). Fix: {fix}"
        )
    text = read_text_file(path, what="a JSON manifest", fix=fix)
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc}). Fix: {fix}") from None
    if not isinstance(manifest, dict):
        raise DataError(
            f"{path} holds a JSON {type(manifest).__name__}, not the manifest object. Fix: {fix}"
        )
    return manifest


def _is_number_list(value: Any) -> bool:
    """Whether ``value`` is a JSON list of numbers (a manifest's ``mean`` or ``std``)."""
    return isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    )


def check_manifest(path: Path, manifest: dict[str, Any], *, fix: str, verify: bool) -> None:
    """Raise :class:`DataError` naming ``path`` unless ``manifest`` has the entries loading needs.

    Those are ``name``, ``num_classes``, ``mean``/``std`` (one number per channel), ``splits``
    (an object per split) and, when ``verify``, ``sha256`` (64 hex digits).
    """
    required: dict[str, tuple[Callable[[Any], bool], str]] = {
        "name": (lambda v: isinstance(v, str), "a string"),
        "num_classes": (
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
            "a positive integer",
        ),
        "mean": (lambda v: _is_number_list(v) and len(v) >= 1, "a list of numbers"),
        "std": (lambda v: _is_number_list(v) and len(v) >= 1, "a list of numbers"),
        "splits": (
            lambda v: isinstance(v, dict) and all(isinstance(x, dict) for x in v.values()),
            "an object of splits",
        ),
    }
    if verify:
        required["sha256"] = (
            lambda v: isinstance(v, str) and len(v) == 64 and all(c in _HEX for c in v.lower()),
            "a SHA-256 of 64 hex digits",
        )
    for key, (ok, what) in required.items():
        if key not in manifest:
            raise DataError(
                f"{path} has no {key!r} entry (a prepared manifest needs it). Fix: {fix}"
            )
        if not ok(manifest[key]):
            raise DataError(
                f"{path}: {key!r} is {_short(manifest[key])}, expected {what}. Fix: {fix}"
            )
    if len(manifest["mean"]) != len(manifest["std"]):
        raise DataError(
            f"{path}: 'mean' has {len(manifest['mean'])} channels but 'std' has "
            f"{len(manifest['std'])}. Fix: {fix}"
        )


def _short(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters for a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_split(path: Path, split: str, *, fix: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of ``split`` from the npz at ``path``; a bad archive is a DataError."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            for key in (f"{split}_images", f"{split}_labels"):
                if key not in npz.files:
                    raise DataError(
                        f"{path} has no array {key!r} (it has {', '.join(npz.files) or 'none'}). "
                        f"Fix: {fix}"
                    )
            return npz[f"{split}_images"], npz[f"{split}_labels"]
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(
            f"{path} cannot be read as a NumPy .npz archive ({type(exc).__name__}: "
            f"{_first_line(exc)}); it is truncated or corrupt. Fix: {fix}"
        ) from None


def _first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, so a wrapped error stays one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no details"


def _check_arrays(
    path: Path,
    split: str,
    images: np.ndarray,
    labels: np.ndarray,
    manifest: dict[str, Any],
    *,
    fix: str,
) -> None:
    """Raise :class:`DataError` unless one split's arrays fit each other and the manifest."""
    key = f"{path} [{split}_images]"
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(
            f"{key} is {images.dtype} of shape {images.shape}, expected uint8 (N, C, H, W). "
            f"Fix: {fix}"
        )
    if images.shape[0] == 0:
        raise DataError(f"{key} holds no images: the {split} split is empty. Fix: {fix}")
    channels = len(manifest["mean"])
    expected = manifest.get("input_shape")
    if expected is not None and list(images.shape[1:]) != list(expected):
        raise DataError(
            f"{key} has images of shape {tuple(images.shape[1:])}, the manifest says "
            f"{tuple(expected)}. Fix: {fix}"
        )
    if images.shape[1] != channels:
        raise DataError(
            f"{key} has {images.shape[1]} channels, the manifest's mean/std have {channels}. "
            f"Fix: {fix}"
        )
    key = f"{path} [{split}_labels]"
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{key} is {labels.dtype} of shape {labels.shape}, expected integers (N,). Fix: {fix}"
        )
    if labels.shape[0] != images.shape[0]:
        raise DataError(
            f"{key} holds {labels.shape[0]} labels for {images.shape[0]} images. Fix: {fix}"
        )
    count = manifest["splits"][split].get("count")
    if count is not None and count != labels.shape[0]:
        raise DataError(
            f"{key} holds {labels.shape[0]} samples, the manifest says {count}. Fix: {fix}"
        )
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= manifest["num_classes"]:
        bad = low if low < 0 else high
        raise DataError(
            f"{key} holds label {bad}, outside 0..{manifest['num_classes'] - 1} "
            f"(num_classes={manifest['num_classes']}). Fix: {fix}"
        )


def load_prepared(
    root: str | Path,
    split: str,
    *,
    fix: str,
    verify: bool = True,
    transform: Callable[[Tensor, torch.Generator | None], Tensor] | None = None,
    name: str | None = None,
) -> ArrayDataset:
    """Load one split of a prepared dataset, verifying its checksum first.

    Every problem with the directory (missing, empty, a manifest without the entries loading
    needs, a truncated or corrupt ``arrays.npz``, arrays of the wrong dtype or shape, labels out
    of range) raises :class:`DataError` with one line naming the file, what is wrong and ``fix``.

    Args:
        root: the prepared directory.
        split: ``"train"`` or ``"test"``.
        fix: the instruction shown when the data is missing or corrupt.
        verify: check the SHA-256 of ``arrays.npz`` against the manifest.
        transform: batch augmentation (see :class:`ArrayDataset`).
        name: the dataset the caller expects (the manifest's ``name``); ``None`` accepts any.
    """
    root = Path(root)
    manifest = read_manifest(root, fix=fix)
    check_manifest(root / MANIFEST_FILE, manifest, fix=fix, verify=verify)
    if name is not None and manifest["name"] != name:
        raise DataError(
            f"{root / MANIFEST_FILE} describes the {manifest['name']!r} dataset, not {name!r}: "
            f"the wrong prepared directory was given. Fix: point it at the {name} one, or "
            f"{fix}"
        )
    path = root / ARRAYS_FILE
    if not path.is_file():
        raise DataError(f"{path} is missing. Fix: {fix}")
    if verify:
        actual = sha256_file(path)
        if actual != manifest["sha256"].lower():
            raise DataError(
                f"{path} is corrupt: its SHA-256 is {actual[:16]}..., the manifest says "
                f"{manifest['sha256'][:16]}.... Fix: {fix}"
            )
    if split not in manifest["splits"]:
        raise DataError(f"{root} has no split {split!r}; it has {', '.join(manifest['splits'])}")
    images, labels = _load_split(path, split, fix=fix)
    _check_arrays(path, split, images, labels, manifest, fix=fix)
    return ArrayDataset(
        torch.from_numpy(images.copy()),
        torch.from_numpy(labels.astype(np.int64, copy=False).copy()),
        mean=manifest["mean"],
        std=manifest["std"],
        num_classes=manifest["num_classes"],
        name=manifest["name"],
        transform=transform,
    )
