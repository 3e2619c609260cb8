"""What a resumable run depends on, as short hashes: its code and the content of its data.

A checkpoint is resumed only under the same fingerprint (:mod:`common.train.trainer`, the OFA
search, the sub-net measurements). Besides the config and the starting weights, the fingerprint
must change when anything the result depends on changes, or a rerun after an edit would resume the
finished old run and re-emit its model and metrics:

* :func:`source_digest`: the source of every repository module the process has imported (the
  packages under the repository root, not the installed libraries, whose versions are pinned);
* :func:`data_digest`: the content of a dataset: every array it holds (images, labels, token
  sequences, subset indices), not only its type and length.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.imports import code_files, data_files, module_file
from common.paths import repo_root

__all__ = ["data_digest", "loaded_sources", "source_digest"]

_MAX_DEPTH = 4  # datasets wrapping datasets (Subset of a ConcatDataset of ...)


def loaded_sources(root: Path | None = None) -> list[Path]:
    """Source files of the imported modules that live in the repository (sorted, no venv)."""
    root = (root or repo_root()).resolve()
    files = set()
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if not name or not name.endswith(".py"):
            continue
        path = Path(name).resolve()
        if path.is_relative_to(root) and not any(
            part.startswith(".") or part == "site-packages" for part in path.relative_to(root).parts
        ):
            files.add(path)
    return sorted(files)


def _entry_sources(root: Path) -> list[Path] | None:
    """The code a stage run with ``python -m <module>`` can load: the static import closure of
    its module plus the package data it reads, exactly what its DVC stage declares (see
    :mod:`common.imports`). ``None`` when the entry point is not a repository module."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", None)
    if not name or module_file(name, root) is None:
        return None
    files = code_files(name, root)
    paths = [root / f for f in files]
    for extra in data_files(files):
        extra_path = root / extra
        paths.extend(sorted(p for p in extra_path.rglob("*") if p.is_file()) or [extra_path])
    return sorted(set(paths))


def source_digest(root: Path | None = None) -> str:
    """Hash of the path and content of the repository code this run depends on.

    For a stage (``python -m papers.x.y``) that is its module's static import closure, which does
    not depend on what happens to be imported when the hash is taken; otherwise (tests, a
    notebook) every repository module imported so far.
    """
    root = (root or repo_root()).resolve()
    paths = _entry_sources(root)
    if paths is None:
        paths = loaded_sources(root)
    h = hashlib.sha256()
    for path in paths:
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        try:
            h.update(path.read_bytes())
        except OSError:  # removed since: the run's code is gone, so is any match
            h.update(b"<missing>")
        h.update(b"\0")
    return h.hexdigest()[:16]


def _update_array(h: Any, value: torch.Tensor | np.ndarray) -> None:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:
            value = value.view(torch.int16)
        value = value.contiguous().numpy()
    value = np.ascontiguousarray(value)
    h.update(f"{value.dtype.str}{value.shape}".encode())
    h.update(value.reshape(-1).view(np.uint8) if value.size else b"")


def _update(h: Any, obj: Any, depth: int, seen: set[int]) -> bool:
    """Feed the arrays reachable from ``obj`` into ``h``; True if any was found."""
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        _update_array(h, obj)
        return True
    if depth > _MAX_DEPTH or id(obj) in seen:
        return False
    seen.add(id(obj))
    if isinstance(obj, Mapping):
        items: Any = sorted(obj.items(), key=lambda kv: str(kv[0]))
    elif isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        if obj and all(isinstance(v, (int, np.integer)) for v in obj[:16]):  # index lists
            h.update(np.asarray(obj, dtype=np.int64).tobytes())
            return True
        items = list(enumerate(obj))
    elif hasattr(obj, "__dict__") and not callable(obj):
        items = sorted(vars(obj).items())
    else:
        return False
    found = False
    for key, value in items:
        h.update(str(key).encode() + b"\0")
        found |= _update(h, value, depth + 1, seen)
    return found


def data_digest(data: Any) -> dict[str, Any] | None:
    """Type, length and a hash of every array a dataset holds (``None`` for no dataset).

    In-memory datasets (arrays of images and labels, token sequences, subsets with indices) are
    hashed by content; a dataset may also define ``fingerprint()`` (e.g. a folder-backed one
    returning its file list and sizes), which is used as well.
    """
    if data is None:
        return None
    sig: dict[str, Any] = {"type": type(data).__name__, "len": len(data)}
    h = hashlib.sha256()
    if _update(h, data, 0, set()):
        sig["content"] = h.hexdigest()[:16]
    own = getattr(data, "fingerprint", None)
    if callable(own):
        sig["own"] = own()
    return sig
