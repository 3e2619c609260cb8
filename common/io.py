"""Small, shared file formats of the pipeline: atomic writes, flat metrics JSON, per-epoch history
CSV, masks."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from common.env import pid_alive

TMP_DIR_ENV = "EFFML_TMP_DIR"


def scratch_dir() -> Path:
    """Where temporary files of atomic writes go: ``$EFFML_TMP_DIR`` or ``<repo>/.tmp``.

    Outside every DVC output, so a process killed mid-write leaves nothing inside an output
    folder (it would change the folder's hash); leftovers are removed by :func:`clean_temps`.
    """
    env = os.environ.get(TMP_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[1] / ".tmp"


def _file_mode() -> int:
    """The mode an ordinary new file gets (mkstemp makes 0600 files)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def clean_temps(folder: Path | None = None) -> int:
    """Remove the temporary files of writers that died (their pid is gone); return how many."""
    folder = folder or scratch_dir()
    removed = 0
    for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
        parts = tmp.name.rsplit(".", 3)  # .<name>.<pid>.<random>.tmp
        if len(parts) == 4 and parts[1].isdigit() and not pid_alive(int(parts[1])):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_FILE_MODE = _file_mode()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; on success it is fsynced and
    renamed over ``path`` (and the directory fsynced), on failure removed.

    The temporary file lives in :func:`scratch_dir` when that is on the same file system (a
    rename cannot cross file systems), otherwise beside ``path``; either way its name carries
    the writer's pid, so :func:`clean_temps` can remove it if the writer is killed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = scratch_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if folder.stat().st_dev != path.parent.stat().st_dev:
            folder = path.parent
    except OSError:
        folder = path.parent
    clean_temps(folder)
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(data: bytes, path: str | Path) -> Path:
    """Write ``data`` to ``path`` atomically and durably (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` atomically and durably (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def write_metrics(metrics: Mapping[str, float], path: str | Path) -> Path:
    """Flat ``{"network/stage/metric": value}`` JSON, sorted (DVC metrics and MLflow read it)."""
    return atomic_write_bytes(
        (json.dumps(dict(metrics), indent=2, sort_keys=True) + "\n").encode(), path
    )


def read_metrics(path: str | Path) -> dict[str, float]:
    return json.loads(Path(path).read_text())


def write_json(data: object, path: str | Path) -> Path:
    return atomic_write_bytes((json.dumps(data, indent=2) + "\n").encode(), path)


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
