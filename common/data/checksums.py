"""SHA-256 verification of dataset files against a ``SHA256SUMS`` manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path

from common.errors import InputError


class DataError(InputError, RuntimeError):
    """A dataset file is missing or corrupt, or a dataset is not where it was expected.

    The message always names the file and how to fix it.
    """


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_sums(path: str | Path) -> dict[str, str]:
    """Parse ``sha256sum``-style lines (``<hex>  <name>``) into ``{name: hex}``."""
    sums: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, name = line.split(maxsplit=1)
        sums[name.lstrip("*")] = digest.lower()
    return sums


def verify_file(path: str | Path, expected: str, *, fix: str) -> None:
    """Raise :class:`DataError` naming ``path`` and ``fix`` unless its SHA-256 is ``expected``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing. Fix: {fix}")
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(
            f"{path} is corrupt: its SHA-256 is {actual[:16]}..., expected {expected[:16]}.... "
            f"Fix: {fix}"
        )


def verify_directory(root: str | Path, names: list[str], *, fix: str) -> None:
    """Verify ``names`` inside ``root`` against ``root/SHA256SUMS``."""
    root = Path(root)
    sums_file = root / "SHA256SUMS"
    if not sums_file.is_file():
        raise DataError(f"{sums_file} is missing. Fix: {fix}")
    sums = read_sums(sums_file)
    for name in names:
        if name not in sums:
            raise DataError(f"{sums_file} has no checksum for {name}. Fix: {fix}")
        verify_file(root / name, sums[name], fix=fix)
