"""Repository-relative locations, overridable through environment variables.

``EFFML_DATA_ROOT`` points at the data root (default: ``<repo>/data``): users who already keep
CIFAR-10 or ImageNet somewhere set it once instead of editing code.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ROOT_ENV = "EFFML_DATA_ROOT"


def repo_root() -> Path:
    """The repository checkout this package was imported from (an editable install)."""
    return Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """Where datasets live: ``$EFFML_DATA_ROOT`` if set, else ``<repo>/data``."""
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env).expanduser().resolve() if env else repo_root() / "data"
