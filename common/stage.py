"""What every DVC stage entry point does the same way: parse flags, run, turn known failures
(bad params, missing or corrupt data, unreadable checkpoints, missing toolchains) into one clear
line on stderr and exit code 2 instead of a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from common.checkpoint import CheckpointError
from common.config import ConfigError
from common.data import DataError
from common.env import configure_environment

# Flags every paper's stages share; dvc.yaml passes every path through them. Papers extend this
# catalogue with their own (``{**STAGE_FLAGS, "baseline": {...}}``).
STAGE_FLAGS: dict[str, dict[str, Any]] = {
    "data": {"type": Path, "required": True, "help": "prepared dataset directory"},
    "out": {"type": Path, "required": True, "help": "output directory or file"},
    "checkpoints": {"type": Path, "required": True, "help": "resumable checkpoint directory"},
    "metrics": {"type": Path, "required": True, "help": "flat metrics JSON"},
    "history": {"type": Path, "required": True, "help": "per-epoch history CSV"},
}

KNOWN_ERRORS: tuple[type[BaseException], ...] = (ConfigError, DataError, CheckpointError)


def run_stage(
    description: str,
    flags: list[str] | Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], Any],
    argv: list[str] | None,
    *,
    catalogue: Mapping[str, dict[str, Any]] | None = None,
    errors: tuple[type[BaseException], ...] = (),
) -> int:
    """Parse ``--params`` plus ``flags`` (names looked up in ``catalogue``, or a function that adds
    arguments) and call ``run(args)``; :data:`KNOWN_ERRORS` and ``errors`` exit with code 2."""
    configure_environment()
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    if callable(flags):
        flags(parser)
    else:
        for flag in flags:
            parser.add_argument(f"--{flag}", **(catalogue or {})[flag])
    args = parser.parse_args(argv)
    if getattr(args, "checkpoints", None) is not None:
        args.checkpoints.mkdir(parents=True, exist_ok=True)  # a DVC output even when nothing trains
    try:
        run(args)
    except (*KNOWN_ERRORS, *errors) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
