"""Calling a stage's ``main(argv)`` from a test, and reading its one-line error."""

from __future__ import annotations

from typing import Any

import pytest


def cli(**flags: Any) -> list[str]:
    """``--flag value`` pairs (``metrics_dir`` -> ``--metrics-dir``)."""
    return [x for k, v in flags.items() for x in (f"--{k.replace('_', '-')}", str(v))]


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The stage's stderr, checked to be one ``error: ...`` line (no traceback)."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err
