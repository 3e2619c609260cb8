"""Pipeline stages that prepare the offline datasets.

``python -m common.data.prepare mnist --raw data/mnist --out data/prepared/mnist``
    Verify the committed IDX files against their SHA-256 sums, decode them into ``arrays.npz``
    with a manifest, check the canonical statistics, and draw a sample grid.

``python -m common.data.prepare colour_digits --params params.yaml --mnist data/prepared/mnist --out data/prepared/colour_digits``
    Build the MNIST-M-style colour-digit set (see :mod:`common.data.colour_digits`).

``python -m common.data.prepare bible --params params.yaml --raw data/bible --out data/prepared/bible``
    Verify the committed Bible texts and split them by whole chapters into train/valid/test
    (see :mod:`common.text.corpus`).

Each run is recorded in MLflow (experiment ``data``).
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.config import bounds, to_dict
from common.data.arrays import load_prepared, save_prepared
from common.data.checksums import DataError
from common.data.colour_digits import blend_digits, load_photos
from common.data.mnist import FILES, PREPARED_FIX, RAW_FIX, read_mnist_raw
from common.stage import StageContext, stage

# Canonical MNIST facts, used to check the decoded data (not to produce any reported number).
MNIST_COUNTS = {"train": 60000, "test": 10000}


@dataclass(frozen=True)
class ColourDigitsConfig:
    """How many colour digits to generate, from which MNIST samples, with which seed."""

    n_train: int = field(default=60000, metadata=bounds(ge=10, le=60000))
    n_test: int = field(default=10000, metadata=bounds(ge=10, le=10000))
    size: int = field(default=32, metadata=bounds(ge=28, le=64))
    jitter: int = field(default=2, metadata=bounds(ge=0, le=18))
    min_contrast: float = field(default=0.5, metadata=bounds(gt=0, le=1))
    tint: bool = True
    seed: int = 0


@dataclass(frozen=True)
class BibleConfig:
    """Shares of the Bible's chapters held out for validation and test (by a hash of the
    chapter's reference, so the split never depends on the order or the code around it)."""

    valid_pct: float = field(default=3.0, metadata=bounds(ge=0, le=50))
    test_pct: float = field(default=4.0, metadata=bounds(gt=0, le=50))


@dataclass(frozen=True)
class DataProfile:
    """A profile of ``data/params.yaml``."""

    colour_digits: ColourDigitsConfig = ColourDigitsConfig()
    bible: BibleConfig = BibleConfig()


def _sample_grid(images: np.ndarray, labels: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 10, figsize=(10, 4.4))
    for k in range(10):
        idx = np.flatnonzero(labels == k)[:4]
        for r, i in enumerate(idx):
            ax = axes[r, k]
            img = images[i].transpose(1, 2, 0)
            ax.imshow(
                img[..., 0] if img.shape[-1] == 1 else img,
                cmap="gray" if img.shape[-1] == 1 else None,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(str(k))
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def prepare_mnist(raw: Path, out: Path) -> dict:
    splits = {}
    for split in ("train", "test"):
        images, labels = read_mnist_raw(raw, split)
        if images.shape[0] != MNIST_COUNTS[split]:
            raise DataError(
                f"{raw / FILES[split][0]} holds {images.shape[0]} {split} images, MNIST has "
                f"{MNIST_COUNTS[split]}. Fix: {RAW_FIX}"
            )
        splits[split] = (images[:, None], labels)
    manifest = save_prepared(
        out,
        splits,
        name="mnist",
        num_classes=10,
        provenance={
            "source": str(raw),
            "raw_sha256": (raw / "SHA256SUMS").read_text().split("\n"),
            "licence": "CC BY-SA 3.0 (Yann LeCun, Corinna Cortes, Christopher J.C. Burges)",
        },
    )
    _sample_grid(splits["train"][0], splits["train"][1], out / "samples.png", "MNIST (train)")
    return manifest


def prepare_colour_digits(mnist_dir: Path, out: Path, cfg: ColourDigitsConfig) -> dict:
    photos = load_photos()
    splits = {}
    for split, n, salt in (("train", cfg.n_train, 0), ("test", cfg.n_test, 1)):
        ds = load_prepared(mnist_dir, split, fix=PREPARED_FIX, name="mnist")
        rng = np.random.default_rng([cfg.seed, salt])
        keep = np.sort(rng.choice(len(ds), size=n, replace=False))
        digits = ds.images[keep, 0].numpy()
        images, _ = blend_digits(
            digits,
            [p for _, p in photos],
            seed=cfg.seed * 1000 + salt + 1,
            size=cfg.size,
            jitter=cfg.jitter,
            min_contrast=cfg.min_contrast,
            tint=cfg.tint,
        )
        splits[split] = (images, ds.labels[keep].numpy())
    manifest = save_prepared(
        out,
        splits,
        name="colour_digits",
        num_classes=10,
        provenance={
            "recipe": "MNIST digits blended over natural-photo patches, out = |patch - digit| "
            "(after Ganin & Lempitsky 2015, MNIST-M)",
            "config": to_dict(cfg),
            "photos": [
                {
                    "name": name,
                    "shape": list(p.shape),
                    "sha256": hashlib.sha256(p.tobytes()).hexdigest(),
                }
                for name, p in photos
            ],
        },
    )
    _sample_grid(
        splits["train"][0], splits["train"][1], out / "samples.png", "Colour digits (train)"
    )
    return manifest


def _metrics(name: str, manifest: dict) -> dict[str, float]:
    m = {f"{name}/{split}/count": float(s["count"]) for split, s in manifest["splits"].items()}
    for c, (mu, sd) in enumerate(zip(manifest["mean"], manifest["std"], strict=True)):
        m[f"{name}/train/mean_c{c}"] = mu
        m[f"{name}/train/std_c{c}"] = sd
    return m


def _flags(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dataset", required=True)
    p = sub.add_parser("mnist", help="verify and decode the committed MNIST files")
    p.add_argument(
        "--raw", type=Path, required=True, help="directory with the IDX files and SHA256SUMS"
    )
    p.add_argument("--out", type=Path, required=True, help="prepared output directory")
    p.add_argument("--metrics", type=Path, required=True, help="flat JSON metrics file")
    c = sub.add_parser("colour_digits", help="generate the MNIST-M-style colour-digit set")
    c.add_argument("--params", type=Path, default=argparse.SUPPRESS, help="root params.yaml")
    c.add_argument("--mnist", type=Path, required=True, help="prepared MNIST directory")
    c.add_argument("--out", type=Path, required=True, help="prepared output directory")
    c.add_argument("--metrics", type=Path, required=True, help="flat JSON metrics file")
    b = sub.add_parser("bible", help="verify and split the English-Spanish Bible texts")
    b.add_argument("--params", type=Path, default=argparse.SUPPRESS, help="root params.yaml")
    b.add_argument(
        "--raw", type=Path, required=True, help="directory with the texts and SHA256SUMS"
    )
    b.add_argument("--out", type=Path, required=True, help="prepared output directory")
    b.add_argument("--metrics", type=Path, required=True, help="flat JSON metrics file")


@stage(
    section="data",
    name="prepare_{dataset}",
    config=DataProfile,
    flags=_flags,
    description=__doc__.split("\n")[0],
    track=lambda ctx: {"colour_digits": ctx.config.colour_digits, "bible": ctx.config.bible}.get(
        ctx.args.dataset
    ),
)
def main(ctx: StageContext) -> None:
    args = ctx.args
    if args.dataset == "bible":
        from common.text.corpus import prepare_bible

        cfg = ctx.config.bible
        manifest = prepare_bible(args.raw, args.out, valid_pct=cfg.valid_pct, test_pct=cfg.test_pct)
        metrics = {
            f"bible/{split}/{what}": float(n)
            for what in ("pairs", "chapters", "lm_lines")
            for split, n in manifest[what].items()
        }
        ctx.finish(
            metrics,
            artifacts=[args.out / "manifest.json"],
            summary=f"wrote {args.out} (pairs {manifest['pairs']}, chapters {manifest['chapters']})",
        )
        return
    if args.dataset == "mnist":
        manifest = prepare_mnist(args.raw, args.out)
    else:
        ctx.save_config(ctx.config.colour_digits, args.out / "config.json")
        manifest = prepare_colour_digits(args.mnist, args.out, ctx.config.colour_digits)
    counts = ", ".join(f"{k}={v['count']}" for k, v in manifest["splits"].items())
    ctx.finish(
        _metrics(args.dataset, manifest),
        artifacts=[args.out / "manifest.json", args.out / "samples.png"],
        summary=f"wrote {args.out} ({counts})",
    )


if __name__ == "__main__":
    raise SystemExit(main())
