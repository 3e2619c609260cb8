"""The driving dataset: its files, and the batches the networks train on.

A prepared dataset (the output of the stage ``fast_lidarnet_data``) is a folder with one
``<split>.npz`` per split (``train``, ``val``, ``test``) and ``meta.json``. Each ``.npz`` holds
``F`` frames:

=============  =================  ==========================================================
key            shape, dtype       what
=============  =================  ==========================================================
``points``     (P, 3) int16       every frame's LiDAR points, vehicle frame, centimetres
                                  (x forward, y left, z up from the ground), cropped to
                                  ``data.bounds``, frame after frame
``offsets``    (F + 1,) int64     frame ``f``'s points are ``points[offsets[f]:offsets[f+1]]``
``maps``       (F, 2, H, W) uint8 the topometric map raster (route, roads), 255 = 1.0
``labels``     (F, K + 1) float32 curvature (1/m) now and at the next ``K = horizon`` steps
``poses``      (F, 3) float32     the true pose (x, y, yaw) in the map's world frame
``drive``      (F,) int32         which drive (map) the frame comes from
=============  =================  ==========================================================

Centimetres in int16 keep a frame at ~6 bytes per point (the crop is well inside +-327 m).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from common.errors import InputError
from common.io import atomic_write_bytes

SPLITS = ("train", "val", "test")
KEYS = ("points", "offsets", "maps", "labels", "poses", "drive")


class DatasetError(InputError):
    """A prepared dataset is missing or malformed."""


def crop(points: np.ndarray, bounds: list[float] | tuple[float, ...]) -> np.ndarray:
    """The points inside ``bounds`` (xmin, xmax, ymin, ymax, zmin, zmax)."""
    b = bounds
    keep = (
        (points[:, 0] >= b[0]) & (points[:, 0] < b[1])
        & (points[:, 1] >= b[2]) & (points[:, 1] < b[3])
        & (points[:, 2] >= b[4]) & (points[:, 2] < b[5])
    )  # fmt: skip
    return points[keep]


def pack_frames(
    points: list[np.ndarray],
    maps: np.ndarray,
    labels: np.ndarray,
    poses: np.ndarray,
    drive: np.ndarray,
    bounds: list[float],
) -> dict[str, np.ndarray]:
    """Frames as the arrays of one split (see the module docstring)."""
    cropped = [crop(np.asarray(p, dtype=np.float32), bounds) for p in points]
    sizes = np.array([len(p) for p in cropped], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    flat = np.concatenate(cropped) if cropped else np.zeros((0, 3), np.float32)
    return {
        "points": np.round(flat * 100).astype(np.int16),
        "offsets": offsets,
        "maps": np.round(np.clip(maps, 0, 1) * 255).astype(np.uint8),
        "labels": labels.astype(np.float32),
        "poses": poses.astype(np.float32),
        "drive": drive.astype(np.int32),
    }


def concat_splits(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Several packed parts (e.g. one per map) as one split."""
    out = {k: np.concatenate([p[k] for p in parts]) for k in KEYS if k != "offsets"}
    sizes = np.concatenate([np.diff(p["offsets"]) for p in parts])
    out["offsets"] = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return out


def write_split(folder: Path, split: str, arrays: dict[str, np.ndarray]) -> Path:
    """Write one split atomically (an interrupted write leaves no half file)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(buf.getvalue(), Path(folder) / f"{split}.npz")


def read_split(folder: Path, split: str) -> dict[str, np.ndarray]:
    """One split's arrays, checked (one clear error naming the fix when missing or malformed)."""
    path = Path(folder) / f"{split}.npz"
    if not path.is_file():
        raise DatasetError(
            f"{path} not found. Fix: run the data stage (`dvc repro fast_lidarnet_data`)"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in KEYS}
    except (KeyError, ValueError, OSError, EOFError) as exc:
        raise DatasetError(
            f"{path} is not a Fast-LiDARNet split ({exc}). Fix: rerun the data stage"
        ) from None
    f = len(arrays["labels"])
    o = arrays["offsets"]
    if (
        arrays["points"].ndim != 2
        or arrays["points"].shape[1] != 3
        or o.shape != (f + 1,)
        or o[0] != 0
        or o[-1] != len(arrays["points"])
        or np.any(np.diff(o) < 0)
        or len(arrays["maps"]) != f
        or arrays["maps"].ndim != 4
        or len(arrays["poses"]) != f
        or len(arrays["drive"]) != f
    ):
        raise DatasetError(f"{path}: inconsistent arrays. Fix: rerun the data stage")
    return arrays


def read_meta(folder: Path) -> dict[str, Any]:
    path = Path(folder) / "meta.json"
    if not path.is_file():
        raise DatasetError(
            f"{path} not found. Fix: run the data stage (`dvc repro fast_lidarnet_data`)"
        )
    return json.loads(path.read_text())


@dataclass
class FrameBatch:
    """A batch: ``points`` (list of ``(N_i, 3)`` float32 metres), ``maps`` (B, 2, H, W) float32
    in [0, 1], ``labels`` (B, K + 1) curvature now and in the future."""

    points: list[Tensor]
    maps: Tensor
    labels: Tensor

    def to(self, device: torch.device | str) -> FrameBatch:
        return FrameBatch([p.to(device) for p in self.points], self.maps.to(device),
                          self.labels.to(device))  # fmt: skip

    def __len__(self) -> int:
        return len(self.points)


class DriveFrames(torch.utils.data.Dataset):
    """One split in memory; ``dataset[indices]`` is one :class:`FrameBatch` (vectorised)."""

    supports_batch_indexing = True

    def __init__(self, arrays: dict[str, np.ndarray], *, limit: int | None = None) -> None:
        n = len(arrays["labels"]) if limit is None else min(limit, len(arrays["labels"]))
        self.points = arrays["points"]
        self.offsets = arrays["offsets"][: n + 1]
        self.maps = arrays["maps"][:n]
        self.labels = arrays["labels"][:n]
        self.poses = arrays["poses"][:n]
        self.drive = arrays["drive"][:n]
        self._digest = hashlib.sha256(
            self.points[: self.offsets[-1]].tobytes() + self.maps.tobytes() + self.labels.tobytes()
        ).hexdigest()[:16]

    @classmethod
    def load(cls, folder: Path, split: str, *, limit: int | None = None) -> DriveFrames:
        return cls(read_split(folder, split), limit=limit)

    def __len__(self) -> int:
        return len(self.labels)

    def fingerprint(self) -> str:
        return self._digest

    def frame_points(self, i: int) -> Tensor:
        """Frame ``i``'s points in metres, ``(N, 3)`` float32."""
        p = self.points[self.offsets[i] : self.offsets[i + 1]]
        return torch.from_numpy(p.astype(np.float32) / 100.0)

    def __getitem__(self, index: int | list[int]) -> FrameBatch:
        idx = [index] if isinstance(index, int) else list(index)
        return FrameBatch(
            points=[self.frame_points(i) for i in idx],
            maps=torch.from_numpy(self.maps[idx].astype(np.float32) / 255.0),
            labels=torch.from_numpy(self.labels[idx]),
        )
