"""Small, shared file formats of the pipeline: atomic writes, flat metrics JSON, per-epoch history
CSV, masks."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


def atomic_write_bytes(data: bytes, path: str | Path) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_metrics(metrics: Mapping[str, float], path: str | Path) -> Path:
    """Flat ``{"network/stage/metric": value}`` JSON, sorted (DVC metrics and MLflow read it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(metrics), indent=2, sort_keys=True) + "\n")
    return path


def read_metrics(path: str | Path) -> dict[str, float]:
    return json.loads(Path(path).read_text())


def write_json(data: object, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def write_history(history: list[Mapping[str, float]], path: str | Path) -> Path:
    """One row per epoch (a DVC plot); ``epoch`` first, integer-valued columns as integers."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for rec in history for k in rec}, key=lambda k: (k != "epoch", k))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        for rec in history:
            writer.writerow(
                {
                    k: (int(v) if k in ("epoch", "step") else round(float(v), 6))
                    for k, v in rec.items()
                }
            )
    return path


def read_history(path: str | Path) -> list[dict[str, float]]:
    with open(path) as fh:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]


def save_masks(masks: Mapping[str, torch.Tensor], path: str | Path) -> Path:
    """Pruning keep-masks as uint8 tensors in safetensors."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.to(torch.uint8).contiguous().cpu() for k, v in masks.items()}, str(path))
    return path


def load_masks(path: str | Path) -> dict[str, torch.Tensor]:
    return {k: v.bool() for k, v in load_file(str(path)).items()}
