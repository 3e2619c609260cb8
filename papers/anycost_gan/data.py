"""The images Anycost GAN learns, in [-1, 1]: the prepared colour digits (default profile) or a
folder of images such as FFHQ (paper profile)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from common.data.arrays import ArrayDataset
from common.data.checksums import DataError
from papers.anycost_gan.config import DataConfig

SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def user_path(path: str) -> Path:
    """A path of the paper profile: relative to the data root ``$EFFML_DATA_ROOT`` (else
    ``data/``) unless absolute or starting with ``~``."""
    from common.paths import data_root

    p = Path(path).expanduser()
    return p if p.is_absolute() else data_root() / p


def to_unit_range(ds: ArrayDataset) -> ArrayDataset:
    """The same uint8 images normalised to [-1, 1] (a GAN's range) instead of the set's mean/std."""
    c = ds.images.shape[1]
    return ArrayDataset(ds.images, ds.labels, mean=[0.5] * c, std=[0.5] * c,
                        num_classes=ds.num_classes, name=ds.name)  # fmt: skip


class ImageFolder(Dataset):
    """Every image under ``root`` (recursively, sorted by path), square-resized to ``size`` px,
    as ``(image in [-1, 1], 0)``. Decoded on access; a file that cannot be read is one error
    naming it."""

    def __init__(self, root: Path, size: int, limit: int | None = None) -> None:
        if not root.is_dir():
            raise DataError(
                f"{root}: no such image folder. Fix: put the dataset's images there (e.g. FFHQ's "
                "images1024x1024) or set data.root / $EFFML_DATA_ROOT"
            )
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES)
        if not self.files:
            raise DataError(f"{root}: no {'/'.join(SUFFIXES)} images in it. Fix: data.root")
        self.files = self.files[:limit] if limit else self.files
        self.size = size
        self.num_classes = 1

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        from PIL import Image, UnidentifiedImageError

        path = self.files[int(index)]
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                if im.size != (self.size, self.size):
                    im = im.resize((self.size, self.size), Image.Resampling.LANCZOS)
                data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(
                f"{path}: not a readable image ({exc}). Fix: remove or replace it"
            ) from exc
        x = data.view(self.size, self.size, 3).permute(2, 0, 1).float() / 127.5 - 1
        return x, torch.tensor(0)


def gan_dataset(cfg: DataConfig, split: str, size: int, data: Path | None) -> Dataset:
    """The profile's images for ``split`` (``train``; ``test`` = held-out images, the colour
    digits' test split or, for a folder, the same images: FID's protocol compares with the
    training set)."""
    if cfg.dataset == "folder":
        limit = cfg.train_images if split == "train" else cfg.eval_images
        return ImageFolder(user_path(cfg.root or ""), size, limit)
    from common.data import build_dataset

    n = cfg.train_images if split == "train" else cfg.eval_images
    ds = build_dataset("colour_digits", split, root=data, subset=n, seed=cfg.seed)
    if ds.images.shape[-1] != size:
        raise DataError(
            f"the colour digits are {ds.images.shape[-1]} px but generator.size is {size}. "
            "Fix: generator.size: 32 for this dataset"
        )
    return to_unit_range(ds)


def stack(ds: Dataset, n: int | None = None) -> Tensor:
    """The first ``n`` images of ``ds`` as one tensor."""
    if isinstance(ds, ArrayDataset):
        k = len(ds) if n is None else min(n, len(ds))
        return ds[torch.arange(k)][0]
    k = len(ds) if n is None else min(n, len(ds))
    return torch.stack([ds[i][0] for i in range(k)])
