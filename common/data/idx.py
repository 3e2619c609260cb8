"""Reader and writer for the IDX format MNIST is distributed in (optionally gzip-compressed).

Format (big-endian): two zero bytes, a type code (0x08 = uint8), the number of dimensions, one
uint32 per dimension, then the data.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}


def _open(path: Path, mode: str):
    return gzip.open(path, mode) if path.suffix == ".gz" else open(path, mode)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX(.gz) file into a numpy array."""
    path = Path(path)
    with _open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(_DTYPES[raw[2]])
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but holds {data.size} values")
    return data.reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def write_idx(array: np.ndarray, path: str | Path) -> Path:
    """Write a uint8/int8 array as IDX (gzip-compressed when ``path`` ends in ``.gz``)."""
    path = Path(path)
    array = np.ascontiguousarray(array)
    header = bytes([0, 0, _CODES[array.dtype], array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    if path.suffix == ".gz":
        # mtime=0 keeps the bytes (and so the checksum) reproducible.
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
            fh.write(header + array.tobytes())
    else:
        path.write_bytes(header + array.tobytes())
    return path
