"""Tiny generated datasets for tests (and for trying things out without any download).

* :func:`write_fake_mnist` writes a small MNIST-format directory (IDX files + SHA256SUMS) whose
  images are simple per-class glyphs plus noise, so a network can actually learn them.
* :func:`write_fake_imagefolder` writes an ImageFolder tree of small PNGs.
* :func:`tiny_array_dataset` builds an in-memory :class:`ArrayDataset` directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from common.data.arrays import ArrayDataset
from common.data.checksums import sha256_file
from common.data.idx import write_idx
from common.data.mnist import FILES


def _glyph_images(
    n: int, *, size: int, channels: int, num_classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Class ``k`` lights a distinct horizontal band, plus uniform noise: easily learnable.

    One label in ten is replaced by a random one, so the loss cannot collapse towards zero (a
    collapsed loss fills a CPU with denormal floats and makes tests crawl).
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(num_classes, size=n)
    images = rng.integers(0, 60, size=(n, channels, size, size)).astype(np.int32)
    band = max(1, size // num_classes)
    for k in range(num_classes):
        rows = slice((k * band) % size, (k * band) % size + band)
        images[labels == k, :, rows, :] += 180
    noisy = rng.random(n) < 0.1
    labels[noisy] = rng.integers(num_classes, size=int(noisy.sum()))
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)


def write_fake_mnist(
    root: str | Path, *, n_train: int = 256, n_test: int = 64, seed: int = 0
) -> Path:
    """Write an MNIST-layout directory of learnable 28x28 glyphs with a valid SHA256SUMS."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1)):
        images, labels = _glyph_images(n, size=28, channels=1, num_classes=10, seed=s)
        write_idx(images[:, 0], root / FILES[split][0])
        write_idx(labels.astype(np.uint8), root / FILES[split][1])
    lines = [f"{sha256_file(root / name)}  {name}" for names in FILES.values() for name in names]
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return root


def tiny_array_dataset(
    n: int = 128, *, size: int = 28, channels: int = 1, num_classes: int = 10, seed: int = 0
) -> ArrayDataset:
    images, labels = _glyph_images(
        n, size=size, channels=channels, num_classes=num_classes, seed=seed
    )
    return ArrayDataset(
        torch.from_numpy(images),
        torch.from_numpy(labels),
        mean=[0.3] * channels,
        std=[0.3] * channels,
        num_classes=num_classes,
        name="tiny",
    )


def write_fake_imagefolder(
    root: str | Path,
    *,
    classes: int = 3,
    per_class: int = 4,
    size: int = 40,
    splits: tuple[str, ...] = ("train", "val"),
    seed: int = 0,
) -> Path:
    """Write ``root/<split>/class_<k>/<i>.png`` RGB images."""
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    for split in splits:
        for k in range(classes):
            d = root / split / f"class_{k}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                arr = rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{i}.png")
    return root
