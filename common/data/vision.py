"""Standard vision datasets through torchvision, for users who have the data.

Nothing here is available offline on the project's CI machines; these loaders exist so that the
``paper`` profiles run unchanged where the data is. Each dataset lives under the data root
(``$EFFML_DATA_ROOT``, default ``<repo>/data``):

=============  ==========================================  =====================================
name           expected layout under the data root         download
=============  ==========================================  =====================================
cifar10        ``cifar10/cifar-10-batches-py/``            ``python -m common.data download cifar10``
cifar100       ``cifar100/cifar-100-python/``              ``python -m common.data download cifar100``
svhn           ``svhn/{train,test}_32x32.mat``             ``python -m common.data download svhn``
imagenet       ``imagenet/{train,val}/<wnid>/*.JPEG``      not downloadable (licence); prepare it yourself
imagefolder    ``root=`` any ImageFolder tree               n/a
=============  ==========================================  =====================================

Downloads happen only when asked (``download=True``); a missing dataset raises a
:class:`~common.data.checksums.DataError` that says where it was looked for and how to get it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from common.data.checksums import DataError
from common.data.registry import DATASETS
from common.paths import DATA_ROOT_ENV, data_root

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _missing(name: str, where: Path, how: str) -> DataError:
    return DataError(
        f"{name} not found under {where}. Fix: {how}, or set {DATA_ROOT_ENV} to the directory "
        f"that holds it"
    )


def cifar_transform(
    train: bool, mean: tuple[float, ...] = CIFAR_MEAN, std: tuple[float, ...] = CIFAR_STD
):
    """Random crop with 4-pixel padding and horizontal flip for training; normalisation only for test."""
    import torch
    from torchvision.transforms import v2

    ops: list[Any] = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    if train:
        ops = [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(), *ops]
    return v2.Compose([*ops, v2.Normalize(mean, std)])


def imagenet_transform(train: bool, resolution: int = 224):
    """Inception-style random-resized crop for training; resize + centre crop (ratio 0.875) for eval."""
    import torch
    from torchvision.transforms import v2

    if train:
        ops: list[Any] = [v2.RandomResizedCrop(resolution), v2.RandomHorizontalFlip()]
    else:
        ops = [v2.Resize(round(resolution / 0.875)), v2.CenterCrop(resolution)]
    return v2.Compose(
        [
            *ops,
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def _tag(ds: Dataset, num_classes: int, input_shape: tuple[int, int, int]) -> Dataset:
    ds.num_classes = num_classes  # type: ignore[attr-defined]
    ds.input_shape = input_shape  # type: ignore[attr-defined]
    return ds


@DATASETS.register("cifar10")
def build_cifar10(split: str, *, root: str | Path | None = None, download: bool = False) -> Dataset:
    from torchvision.datasets import CIFAR10

    root = Path(root) if root else data_root() / "cifar10"
    if not download and not (root / "cifar-10-batches-py").is_dir():
        raise _missing("CIFAR-10", root, "run `python -m common.data download cifar10`")
    ds = CIFAR10(
        str(root),
        train=split == "train",
        download=download,
        transform=cifar_transform(split == "train"),
    )
    return _tag(ds, 10, (3, 32, 32))


@DATASETS.register("cifar100")
def build_cifar100(
    split: str, *, root: str | Path | None = None, download: bool = False
) -> Dataset:
    from torchvision.datasets import CIFAR100

    root = Path(root) if root else data_root() / "cifar100"
    if not download and not (root / "cifar-100-python").is_dir():
        raise _missing("CIFAR-100", root, "run `python -m common.data download cifar100`")
    ds = CIFAR100(
        str(root),
        train=split == "train",
        download=download,
        transform=cifar_transform(split == "train"),
    )
    return _tag(ds, 100, (3, 32, 32))


@DATASETS.register("svhn")
def build_svhn(split: str, *, root: str | Path | None = None, download: bool = False) -> Dataset:
    from torchvision.datasets import SVHN

    root = Path(root) if root else data_root() / "svhn"
    if not download and not (root / f"{split}_32x32.mat").is_file():
        raise _missing("SVHN", root, "run `python -m common.data download svhn`")
    mean, std = (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)
    ds = SVHN(
        str(root), split=split, download=download, transform=cifar_transform(False, mean, std)
    )
    return _tag(ds, 10, (3, 32, 32))


@DATASETS.register("imagefolder")
def build_imagefolder(
    split: str, *, root: str | Path | None = None, resolution: int = 224, download: bool = False
) -> Dataset:
    """Any ``root/<split>/<class>/<image>`` tree, with ImageNet-style transforms."""
    from torchvision.datasets import ImageFolder

    if root is None:
        raise DataError("the imagefolder dataset needs root=<directory holding train/ and val/>")
    if download:
        raise DataError("imagefolder datasets cannot be downloaded")
    where = Path(root) / split
    if not where.is_dir():
        raise _missing(
            f"ImageFolder split {split!r}", Path(root), f"create {where}/<class>/<image> files"
        )
    ds = ImageFolder(str(where), transform=imagenet_transform(split == "train", resolution))
    return _tag(ds, len(ds.classes), (3, resolution, resolution))


@DATASETS.register("imagenet")
def build_imagenet(
    split: str, *, root: str | Path | None = None, resolution: int = 224, download: bool = False
) -> Dataset:
    """ILSVRC-2012 as an ImageFolder (``train/`` and ``val/`` with one folder per WordNet id)."""
    root = Path(root) if root else data_root() / "imagenet"
    if download:
        raise DataError(
            "ImageNet cannot be downloaded automatically (its licence requires registration at "
            "image-net.org); place train/ and val/ class folders under " + str(root)
        )
    if not (root / split).is_dir():
        raise _missing(
            "ImageNet", root, f"put the ILSVRC-2012 {split} images in {root / split}/<wnid>/*.JPEG"
        )
    return build_imagefolder(split, root=root, resolution=resolution)


def download(name: str, root: str | Path | None = None) -> Path:
    """Download a torchvision dataset on request (both splits)."""
    if name not in {"cifar10", "cifar100", "svhn"}:
        raise DataError(
            f"{name} cannot be downloaded by this tool; downloadable: cifar10, cifar100, svhn"
        )
    where = Path(root) if root else data_root() / name
    for split in ("train", "test"):
        DATASETS.get(name)(split, root=where, download=True)
    return where
