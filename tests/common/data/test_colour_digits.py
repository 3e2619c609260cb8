from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from common.data import build_dataset
from common.data.colour_digits import blend_digits, load_photos
from common.data.prepare import ColourDigitsConfig, prepare_colour_digits


def test_blend_is_absolute_difference() -> None:
    digit = np.zeros((1, 28, 28), dtype=np.uint8)
    digit[0, 10, 10] = 200
    photo = np.full((40, 40, 3), 50, dtype=np.uint8)
    out, which = blend_digits(digit, [photo], seed=0)
    assert out.shape == (1, 3, 32, 32) and which.tolist() == [0]
    assert out[0, :, 12, 12].tolist() == [150, 150, 150]  # |50 - 200| at the padded position
    assert out[0, :, 0, 0].tolist() == [50, 50, 50]  # background passes through


def test_photos_are_natural_and_big_enough() -> None:
    photos = load_photos()
    assert len(photos) >= 8
    assert all(p.ndim == 3 and p.shape[2] == 3 and min(p.shape[:2]) >= 32 for _, p in photos)


def test_generation_is_deterministic(tmp_path: Path, prepared_fake_mnist: Path) -> None:
    cfg = ColourDigitsConfig(n_train=40, n_test=20, seed=3)
    m1 = prepare_colour_digits(prepared_fake_mnist, tmp_path / "a", cfg)
    m2 = prepare_colour_digits(prepared_fake_mnist, tmp_path / "b", cfg)
    m3 = prepare_colour_digits(
        prepared_fake_mnist, tmp_path / "c", ColourDigitsConfig(n_train=40, n_test=20, seed=4)
    )
    assert m1["sha256"] == m2["sha256"] != m3["sha256"]
    ds = build_dataset("colour_digits", "train", root=tmp_path / "a")
    assert len(ds) == 40 and ds.input_shape == (3, 32, 32) and ds.num_classes == 10
    assert (tmp_path / "a" / "samples.png").stat().st_size > 1000
    digest = hashlib.sha256(ds.images.numpy().tobytes()).hexdigest()
    assert (
        digest
        == hashlib.sha256(
            build_dataset("colour_digits", "train", root=tmp_path / "b").images.numpy().tobytes()
        ).hexdigest()
    )


def test_jitter_contrast_and_tint_change_only_the_digit() -> None:
    digit = np.zeros((1, 28, 28), dtype=np.uint8)
    digit[0, 10:18, 10:18] = 255
    photo = np.full((32, 32, 3), 40, dtype=np.uint8)
    plain, _ = blend_digits(digit, [photo], seed=5)
    varied, _ = blend_digits(digit, [photo], seed=5, jitter=2, min_contrast=0.5, tint=True)
    assert plain[0, :, 0, 0].tolist() == varied[0, :, 0, 0].tolist() == [40, 40, 40]
    # Full-contrast white stroke on grey 40 gives 215 in every channel; a dimmed, tinted one less.
    assert plain[0, :, 16, 16].tolist() == [215, 215, 215]
    stroke = varied[0][:, 12:20, 12:20]  # the stroke's core, inside any 2-pixel shift
    assert varied[0].max() < 215  # dimmer than a full-contrast stroke
    assert len(set(stroke[:, 4, 4].tolist())) > 1  # tinted: the channels differ
