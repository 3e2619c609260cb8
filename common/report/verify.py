"""Check ``claims.json`` files: schema, internal consistency, and (``--strict``) verdicts.

``python -m common.report.verify [reports/<paper>/claims.json ...] [--strict]`` (no files: the
report of every paper in the registry, ``papers/registry.yaml``)

Exit status 1 when a file does not follow the schema, when a record's ``reproduced`` or
``difference`` does not follow from its own ``paper``/``ours``/``tolerance``/``check`` (a hand
edit), or, with ``--strict``, when any claim is not reproduced.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from common.report.claims import KINDS, RECORD_FIELDS, SCHEMA_VERSION, is_reproduced

_NUMBER = (int, float)


def check_file(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Return ``(problems, records)`` for one claims.json."""
    problems: list[str] = []
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return [f"{path}: unreadable ({exc})"], []
    for key in ("schema_version", "paper", "profile", "claims"):
        if key not in data:
            problems.append(f"{path}: missing top-level key {key!r}")
    if problems:
        return problems, []
    if data["schema_version"] != SCHEMA_VERSION:
        problems.append(f"{path}: schema_version {data['schema_version']} != {SCHEMA_VERSION}")
    records = data["claims"]
    for i, rec in enumerate(records):
        where = f"{path}: claim {rec.get('id', i)!r}"
        if set(rec) != set(RECORD_FIELDS):
            problems.append(
                f"{where}: fields {sorted(set(rec) ^ set(RECORD_FIELDS))} differ from the schema"
            )
            continue
        if rec["kind"] not in KINDS:
            problems.append(f"{where}: kind {rec['kind']!r} is not one of {', '.join(KINDS)}")
            continue
        if not isinstance(rec["paper"], _NUMBER) or not isinstance(rec["tolerance"], _NUMBER):
            problems.append(f"{where}: paper and tolerance must be numbers")
            continue
        if not isinstance(rec["reproduced"], bool):
            problems.append(f"{where}: reproduced must be true or false")
            continue
        if rec["ours"] is None:
            if rec["reproduced"]:
                problems.append(f"{where}: marked reproduced without a measured value")
            continue
        expected = is_reproduced(rec["check"], rec["paper"], rec["ours"], rec["tolerance"])
        if expected != rec["reproduced"]:
            problems.append(
                f"{where}: reproduced={rec['reproduced']} but paper/ours/tolerance say {expected}"
            )
        if rec["difference"] is None or abs(
            rec["difference"] - (rec["ours"] - rec["paper"])
        ) > 1e-9 * max(1, abs(rec["paper"])):
            problems.append(f"{where}: difference {rec['difference']} != ours - paper")
    return problems, records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common.report.verify", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "files", nargs="*", type=Path, help="claims.json files (default: every registered paper's)"
    )
    parser.add_argument(
        "--strict", action="store_true", help="also fail when a claim is not reproduced"
    )
    args = parser.parse_args(argv)
    if not args.files:
        from common.papers import papers

        args.files = [Path("reports") / p.slug / "claims.json" for p in papers()]
    all_problems: list[str] = []
    failed_claims = 0
    for path in args.files:
        problems, records = check_file(path)
        all_problems += problems
        results = [r for r in records if r.get("kind") == "result"]
        ok = sum(bool(r.get("reproduced")) for r in results)
        failed_claims += sum(not r.get("reproduced") for r in records)
        print(
            f"{path}: {ok}/{len(results)} results reproduced "
            f"({len(records) - len(results)} settings and architecture checks besides)"
        )
        for r in records:
            if not r.get("reproduced"):
                print(
                    f"  not reproduced ({r.get('kind')}): {r.get('id')}: paper {r.get('paper')} ours {r.get('ours')} {r.get('unit', '')} ({r.get('note', '')})"
                )
    for p in all_problems:
        print(f"error: {p}", file=sys.stderr)
    if all_problems:
        return 1
    if args.strict and failed_claims:
        print(f"{failed_claims} claim(s) not reproduced (--strict)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
