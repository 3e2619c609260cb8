from __future__ import annotations

from pathlib import Path

import pytest

from common.data import DATASETS, DataError, build_dataset
from common.data.fixtures import write_fake_imagefolder


def test_registry_lists_offline_and_user_datasets() -> None:
    assert {
        "mnist",
        "colour_digits",
        "cifar10",
        "cifar100",
        "svhn",
        "imagenet",
        "imagefolder",
    } <= set(DATASETS.names())


def test_missing_cifar_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        build_dataset("cifar10", "train", root=tmp_path / "nowhere")
    msg = str(exc.value)
    assert (
        "nowhere" in msg
        and "python -m common.data download cifar10" in msg
        and "EFFML_DATA_ROOT" in msg
    )


def test_imagenet_is_never_downloaded(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="registration"):
        build_dataset("imagenet", "train", root=tmp_path, download=True)


def test_fake_imagefolder_loads_as_imagenet(tmp_path: Path) -> None:
    root = write_fake_imagefolder(tmp_path / "imagenet", classes=3, per_class=2, size=40)
    ds = build_dataset("imagenet", "val", root=root, resolution=32)
    x, y = ds[0]
    assert len(ds) == 6 and ds.num_classes == 3 and tuple(x.shape) == (3, 32, 32) and y in (0, 1, 2)


def test_data_root_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EFFML_DATA_ROOT", str(tmp_path))
    with pytest.raises(DataError, match=str(tmp_path / "cifar100")):
        build_dataset("cifar100", "test")
