from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from common.data import DataError, build_dataset, load_prepared
from common.data.arrays import ARRAYS_FILE, channel_stats


def test_prepared_matches_raw(fake_mnist: Path, prepared_fake_mnist: Path) -> None:
    raw = build_dataset("mnist", "train", root=fake_mnist)
    prepared = build_dataset("mnist", "train", root=prepared_fake_mnist)
    assert torch.equal(raw.images, prepared.images)
    assert torch.equal(raw.labels, prepared.labels)
    assert torch.allclose(raw.mean, prepared.mean) and torch.allclose(raw.std, prepared.std)


def test_normalisation_uses_train_statistics(prepared_fake_mnist: Path) -> None:
    ds = load_prepared(prepared_fake_mnist, "train", fix="-")
    x, _ = ds[torch.arange(len(ds))]
    assert abs(float(x.mean())) < 1e-3
    assert abs(float(x.std()) - 1.0) < 1e-2


def test_corrupt_prepared_file_is_detected(prepared_fake_mnist: Path) -> None:
    path = prepared_fake_mnist / ARRAYS_FILE
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DataError) as exc:
        build_dataset("mnist", "train", root=prepared_fake_mnist)
    assert str(path) in str(exc.value) and "dvc repro prepare_mnist" in str(exc.value)


def test_subset_is_seeded(prepared_fake_mnist: Path) -> None:
    a = build_dataset("mnist", "train", root=prepared_fake_mnist, subset=50, seed=1)
    b = build_dataset("mnist", "train", root=prepared_fake_mnist, subset=50, seed=1)
    c = build_dataset("mnist", "train", root=prepared_fake_mnist, subset=50, seed=2)
    assert len(a) == 50 and torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)


def test_channel_stats() -> None:
    imgs = np.zeros((2, 2, 4, 4), dtype=np.uint8)
    imgs[:, 1] = 255
    mean, std = channel_stats(imgs)
    assert mean == [0.0, 1.0] and std == [0.0, 0.0]
