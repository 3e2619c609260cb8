"""Checkpoints that survive interruption and load safely.

* :func:`atomic_save` (from :mod:`common.io`) writes to a temporary file in the same directory and
  renames it over the target, so a process killed mid-write leaves the previous checkpoint intact.
* :func:`safe_load` always uses ``weights_only=True``: a checkpoint can never execute code.
* Finished models are stored as *architecture config (JSON) + weights (safetensors)*
  (:func:`save_model` / :func:`load_model`), the format every paper ships.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from common.errors import InputError
from common.io import atomic_path, atomic_save, atomic_write_bytes

__all__ = [
    "CheckpointError",
    "atomic_save",
    "atomic_write_bytes",
    "load_model",
    "model_config_path",
    "safe_load",
    "save_model",
]


class CheckpointError(InputError, RuntimeError):
    """A checkpoint is missing, unreadable or does not match the model."""


def _load_failure(exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in one short clause.

    PyTorch's own message is many lines and suggests ``weights_only=False``, which would let the
    file run code: never repeated here.
    """
    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return (
            f"it holds a Python object ({found.group(1)}) besides tensors and plain containers, "
            "and objects are never unpickled here (loading one could run code)"
        )
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in text:
        return (
            "it is truncated, not a PyTorch checkpoint, or pickled data other than tensors "
            "(never unpickled here: it could run code)"
        )
    first = text.strip().splitlines()[0] if text.strip() else ""
    first = first.split(". ")[0].rstrip(".")
    if isinstance(exc, (RuntimeError, EOFError, KeyError, ValueError, OSError)) or not first:
        detail = f": {first}" if first and not isinstance(exc, KeyError) else ""
        return f"it is truncated or not a PyTorch checkpoint ({type(exc).__name__}{detail})"
    return f"{type(exc).__name__}: {first}"


def safe_load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(..., weights_only=True)`` with a one-line error that names the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt, truncated, or holding pickled code
        raise CheckpointError(
            f"cannot load checkpoint {path}: {_load_failure(exc)}; "
            "delete it to start that run afresh, or give a checkpoint this repository wrote"
        ) from exc


def save_model(
    model: nn.Module, path: str | Path, *, arch: dict[str, Any], extra: dict[str, Any] | None = None
) -> Path:
    """Save ``model`` as ``<path>`` (safetensors weights) + ``<path>.json`` (architecture config).

    Args:
        model: the model; its ``state_dict`` is saved (shared tensors are de-duplicated).
        path: weights file, conventionally ``model.safetensors``.
        arch: what is needed to rebuild the model, e.g. ``{"name": "lenet5", "kwargs": {}}``.
        extra: more JSON metadata (resolved config, metrics) stored beside the architecture.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, tmp, metadata={"arch": json.dumps(arch)})
    meta = {"arch": arch, **(extra or {})}
    atomic_write_bytes((json.dumps(meta, indent=2) + "\n").encode(), model_config_path(path))
    return path


def model_config_path(weights: str | Path) -> Path:
    weights = Path(weights)
    return weights.with_name(weights.name + ".json")


def load_model(path: str | Path, *, build: Any = None) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_model`.

    Args:
        path: the safetensors file.
        build: ``build(arch) -> nn.Module``; defaults to the model registry's ``create_model``.

    Returns:
        ``(model, metadata)`` with the model in eval mode.
    """
    path = Path(path)
    cfg_path = model_config_path(path)
    if not path.is_file() or not cfg_path.is_file():
        raise CheckpointError(
            f"model {path} (and its {cfg_path.name}) not found. Fix: run the stage that "
            "writes it first (`dvc repro` runs the stages in order)"
        )
    meta = json.loads(cfg_path.read_text())
    if build is None:
        from common.models import create_model

        def build(arch: dict[str, Any]) -> nn.Module:
            return create_model(arch["name"], **arch.get("kwargs", {}))

    model = build(meta["arch"])
    try:
        state = load_file(path)
    except Exception as exc:
        raise CheckpointError(f"cannot read weights {path}: {exc}") from exc
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise CheckpointError(f"{path} does not match architecture {meta['arch']}: {exc}") from None
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match architecture {meta['arch']}: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    return model.eval(), meta
