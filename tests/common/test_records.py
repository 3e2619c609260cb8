"""Resumable record logs: records survive a restart under the same fingerprint, a log of another
fingerprint is set aside, and a line cut by a kill is dropped and written again."""

from __future__ import annotations

import json
from pathlib import Path

from common.records import RecordLog


def test_records_resume_under_the_same_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "log.jsonl"
    log = RecordLog(path, "abc")
    assert log.records == []
    log.append({"k": 1})
    log.append({"k": 2})
    again = RecordLog(path, "abc")
    assert again.records == [{"k": 1}, {"k": 2}]
    again.append({"k": 3})
    assert [r["k"] for r in RecordLog(path, "abc").records] == [1, 2, 3]


def test_another_fingerprint_sets_the_log_aside(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    RecordLog(path, "old").append({"k": 1})
    log = RecordLog(path, "new")
    assert log.records == []
    assert json.loads(path.read_text().splitlines()[0]) == {"fingerprint": "new"}
    stale = path.with_name("log.jsonl.stale").read_text().splitlines()
    assert json.loads(stale[1]) == {"k": 1}


def test_a_cut_last_line_is_dropped_and_appends_stay_readable(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = RecordLog(path, "fp")
    log.append({"k": 1})
    with path.open("a") as fh:
        fh.write('{"k": 2, "trunc')  # killed mid-write
    log = RecordLog(path, "fp")
    assert log.records == [{"k": 1}]
    log.append({"k": 2})
    assert RecordLog(path, "fp").records == [{"k": 1}, {"k": 2}]
