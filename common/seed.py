"""The one seeding function every stage uses."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def derive_seed(*parts: int | str) -> int:
    """A stable 63-bit seed from any number of parts (e.g. the run seed and an epoch index).

    Unlike ``hash()``, the result does not change between Python processes.
    """
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
