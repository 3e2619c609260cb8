"""SHA-256 verification of dataset files against a ``SHA256SUMS`` manifest.

Every failure here is a :class:`DataError` whose one-line message names the file, what is wrong
with it and the fix the caller passes in, so a stage reports it without a traceback.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from common.errors import InputError

SUMS_FILE = "SHA256SUMS"
# One line as `sha256sum` writes it: 64 hex digits, a space, then " " (text) or "*" (binary mode)
# and the file name. A single space is accepted too, as hand-written files often have it.
_SUMS_LINE = re.compile(r"^(?P<digest>\S+)\s[ *]?(?P<name>\S.*)$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class DataError(InputError, RuntimeError):
    """A dataset file is missing or corrupt, or a dataset is not where it was expected.

    The message always names the file and how to fix it.
    """


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The hex SHA-256 of the file at ``path``, read in ``chunk``-byte blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_text_file(path: str | Path, *, what: str, fix: str) -> str:
    """The UTF-8 text of ``path``, or a :class:`DataError` saying why it cannot be read.

    ``what`` describes the file in the message (``"a checksum list"``, ``"a JSON manifest"``).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} is missing. Fix: {fix}")
    if not path.is_file():
        raise DataError(f"{path} is not a file (expected {what}). Fix: {fix}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not UTF-8 text (byte {exc.start}), so it is not {what}. Fix: {fix}"
        ) from None
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror or exc}). Fix: {fix}") from None


def read_sums(path: str | Path, *, fix: str | None = None) -> dict[str, str]:
    """Parse ``sha256sum``-style lines (``<hex>  <name>``) into ``{name: hex}``.

    Blank lines and ``#`` comments are skipped. A line without both fields, a digest that is not
    64 hex digits, or a name listed twice with different digests raises :class:`DataError`
    naming the file, the line and ``fix`` (by default: rewrite the line with ``sha256sum``).
    """
    path = Path(path)
    if fix is None:
        fix = f"rewrite the line as `sha256sum` prints it (run `sha256sum <file>` in {path.parent})"
    sums: dict[str, str] = {}
    for number, raw_line in enumerate(
        read_text_file(path, what="a checksum list", fix=fix).splitlines(), start=1
    ):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path} line {number}"
        match = _SUMS_LINE.match(line)
        if match is None:
            raise DataError(
                f"{where} is malformed ({_clip(line)!r}): expected '<64 hex digits>  <file name>'. "
                f"Fix: {fix}"
            )
        digest, name = match["digest"], match["name"].strip().lstrip("*")
        if not _HEX64.match(digest):
            raise DataError(
                f"{where} has a malformed SHA-256 digest for {name}: {_clip(digest, 24)!r} is "
                f"not 64 hexadecimal digits. Fix: {fix}"
            )
        if name in sums and sums[name] != digest.lower():
            raise DataError(f"{where} lists {name} a second time with another digest. Fix: {fix}")
        sums[name] = digest.lower()
    return sums


def _clip(text: str, limit: int = 60) -> str:
    """``text`` shortened to ``limit`` characters for a one-line message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def verify_file(path: str | Path, expected: str, *, fix: str) -> None:
    """Raise :class:`DataError` naming ``path`` and ``fix`` unless its SHA-256 is ``expected``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} is missing. Fix: {fix}")
    if not path.is_file():
        raise DataError(f"{path} is not a file. Fix: {fix}")
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror or exc}). Fix: {fix}") from None
    if actual != expected:
        raise DataError(
            f"{path} is corrupt: its SHA-256 is {actual[:16]}..., expected {expected[:16]}.... "
            f"Fix: {fix}"
        )


def verify_directory(root: str | Path, names: list[str], *, fix: str) -> None:
    """Verify ``names`` inside ``root`` against ``root/SHA256SUMS``."""
    root = Path(root)
    sums_file = root / SUMS_FILE
    sums = read_sums(sums_file, fix=fix)
    for name in names:
        if name not in sums:
            raise DataError(f"{sums_file} has no checksum for {name}. Fix: {fix}")
        verify_file(root / name, sums[name], fix=fix)
