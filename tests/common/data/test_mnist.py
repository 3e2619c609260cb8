from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from common.data import DataError, build_dataset
from common.data.idx import read_idx, write_idx
from common.data.mnist import FILES, read_mnist_raw

REPO = Path(__file__).resolve().parents[3]


def test_idx_round_trip(tmp_path: Path) -> None:
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.idx", "a.idx.gz"):
        write_idx(arr, tmp_path / name)
        assert np.array_equal(read_idx(tmp_path / name), arr)


def test_real_mnist_is_complete_and_canonical() -> None:
    """The committed files are the full MNIST (counts and label histogram are canonical)."""
    images, labels = read_mnist_raw(REPO / "data" / "mnist", "test")
    assert images.shape == (10000, 28, 28)
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_fake_mnist_loads(fake_mnist: Path) -> None:
    ds = build_dataset("mnist", "train", root=fake_mnist)
    x, y = ds[0]
    assert len(ds) == 256 and x.shape == (1, 28, 28) and 0 <= int(y) < 10
    xb, yb = ds[[0, 1, 2]]
    assert xb.shape == (3, 1, 28, 28) and yb.shape == (3,)


def test_corrupted_file_is_detected_and_named(fake_mnist: Path) -> None:
    target = fake_mnist / FILES["train"][0]
    raw = bytearray(gzip.decompress(target.read_bytes()))
    raw[100] ^= 0xFF  # one flipped pixel, still a valid gzip/IDX file
    target.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError) as exc:
        build_dataset("mnist", "train", root=fake_mnist)
    msg = str(exc.value)
    assert str(target) in msg and "corrupt" in msg
    assert "git checkout -- data/mnist" in msg


def test_missing_file_is_named(fake_mnist: Path) -> None:
    (fake_mnist / FILES["test"][1]).unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz is missing. Fix: MNIST ships"):
        build_dataset("mnist", "test", root=fake_mnist)


def test_unknown_split() -> None:
    with pytest.raises(DataError, match="no split 'valid'"):
        read_mnist_raw(REPO / "data" / "mnist", "valid")
