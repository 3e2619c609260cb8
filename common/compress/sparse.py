"""Sparse storage with relative indices and filler zeros (Deep Compression, Section 2, Fig. 2).

The non-zero entries of a pruned layer (flattened in C order) are stored as pairs
``(relative index, weight code)``. The relative index counts the zeros skipped since the previous
stored entry and has a fixed width of ``index_bits`` bits, so it can skip at most
``2^index_bits - 1`` zeros. When a gap is longer, a *filler* entry (weight code 0, which decodes to
0.0) is stored at the farthest reachable position and the count starts again. Decoding is
``position = cumsum(relative + 1) - 1``, as in the reference decoder.
"""

from __future__ import annotations

import numpy as np


def encode_positions(keep: np.ndarray, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Relative indices for the ``True`` entries of a flattened mask, with fillers.

    Returns:
        ``(relative (n_entries,) int64, is_filler (n_entries,) bool)``; ``n_entries`` counts the
        real entries plus the fillers.
    """
    if index_bits < 1:
        raise ValueError("index_bits must be >= 1")
    positions = np.flatnonzero(np.asarray(keep).ravel())
    max_skip = (1 << index_bits) - 1
    gaps = np.diff(positions, prepend=-1) - 1  # zeros skipped before each real entry
    fillers_before = gaps // (max_skip + 1)  # each filler consumes max_skip zeros plus itself
    n_entries = positions.size + int(fillers_before.sum())
    relative = np.empty(n_entries, dtype=np.int64)
    is_filler = np.zeros(n_entries, dtype=bool)
    # Index in the output of each real entry: itself plus every filler before it.
    real_at = np.arange(positions.size) + np.cumsum(fillers_before)
    relative[real_at] = gaps - fillers_before * (max_skip + 1)
    mask = np.ones(n_entries, dtype=bool)
    mask[real_at] = False
    relative[mask] = max_skip
    is_filler[mask] = True
    return relative, is_filler


def decode_positions(relative: np.ndarray) -> np.ndarray:
    """Absolute flattened positions of every stored entry (fillers included)."""
    return np.cumsum(np.asarray(relative, dtype=np.int64) + 1) - 1
