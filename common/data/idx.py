"""Reader and writer for the IDX format MNIST is distributed in (optionally gzip-compressed).

Format (big-endian): two zero bytes, a type code (0x08 = uint8), the number of dimensions, one
uint32 per dimension, then the data.

A file that is not gzip, not IDX, or whose size does not match its header raises a
:class:`~common.data.checksums.DataError` naming the file, what is wrong and the fix.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from common.data.checksums import DataError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}
DEFAULT_FIX = "replace it with an intact copy of the file"


def _open(path: Path, mode: str):
    return gzip.open(path, mode) if path.suffix == ".gz" else open(path, mode)


def _read_bytes(path: Path, fix: str) -> bytes:
    """The (decompressed) bytes of ``path``; a broken gzip stream is a :class:`DataError`."""
    try:
        with _open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise DataError(f"{path} is missing. Fix: {fix}") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path} is not a valid gzip file ({exc}), so it cannot be decompressed. Fix: {fix}"
        ) from None
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror or exc}). Fix: {fix}") from None


def read_idx(path: str | Path, *, fix: str = DEFAULT_FIX) -> np.ndarray:
    """Read an IDX(.gz) file into a numpy array.

    ``fix`` is the instruction a :class:`DataError` gives when the file is not a complete IDX
    file (bad gzip stream, bad magic number, truncated header, or a size that does not match the
    shape in the header).
    """
    path = Path(path)
    raw = _read_bytes(path, fix)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(
            f"{path} is not an IDX file: bad magic number {raw[:4].hex() or '(empty file)'} "
            f"(expected 0000 then a type code and the number of dimensions). Fix: {fix}"
        )
    ndim = raw[3]
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise DataError(
            f"{path} is truncated: its IDX header announces {ndim} dimensions but the file "
            f"ends after {len(raw)} bytes. Fix: {fix}"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:offset])
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise DataError(
            f"{path} does not match its IDX header: the header says shape {shape} of "
            f"{dtype.name} ({expected} bytes) but {len(raw) - offset} bytes follow it. Fix: {fix}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=offset)
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
