"""Resumable record logs: a stage that produces many independent results (sub-networks measured,
fuzz chunks checked, ...) appends one JSON line per result, so a killed run resumes where it
stopped instead of starting over.

The first line holds a fingerprint of everything the records depend on (config, code, inputs);
a log with another fingerprint is set aside (``<log>.stale``) and the run starts afresh, and a
last line cut by the interruption is dropped (that result is computed again).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["RecordLog"]


class RecordLog:
    """The records of ``path`` made under ``fingerprint``; :meth:`append` adds one, durably."""

    def __init__(self, path: str | Path, fingerprint: str) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.records: list[dict[str, Any]] = self._resume()
        if not self.records:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"fingerprint": fingerprint}) + "\n")

    def _resume(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        lines = self.path.read_text().splitlines()
        try:
            same = bool(lines) and json.loads(lines[0]).get("fingerprint") == self.fingerprint
        except (json.JSONDecodeError, AttributeError):
            same = False
        if not same:
            self.path.replace(self.path.with_name(self.path.name + ".stale"))
            print(
                f"{self.path} was made by another config, code or input; set aside, starting afresh"
            )
            return []
        records = []
        for line in lines[1:]:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by the interruption: that result is computed again
        if len(records) < len(lines) - 1:  # drop the cut line so appends start clean
            self.path.write_text("\n".join(lines[: len(records) + 1]) + "\n")
        return records

    def append(self, record: dict[str, Any]) -> None:
        """Add ``record`` (flushed before returning)."""
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
        self.records.append(record)
