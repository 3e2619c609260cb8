from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.config import ConfigError
from common.report import (
    Claim,
    Section,
    evaluate_claims,
    load_claims,
    render_page,
    write_claims_json,
)
from common.report.claims import RECORD_FIELDS, evaluate_targets, is_reproduced, load_claims_file
from common.report.index import render_index
from common.report.verify import check_file


def _claim(**kw) -> Claim:
    base = {
        "id": "t1.err",
        "source": "Table 1",
        "description": "error",
        "metric": "m/error",
        "unit": "%",
        "paper": 1.64,
        "tolerance": 0.1,
        "check": "at_most",
        "kind": "result",
    }
    base.update(kw)
    return Claim(**base)


@pytest.mark.parametrize(
    ("check", "ours", "expected"),
    [
        ("at_most", 1.74, True),
        ("at_most", 1.75, False),
        ("at_most", 0.5, True),
        ("at_least", 1.54, True),
        ("at_least", 1.5, False),
        ("at_least", 9.0, True),
        ("within", 1.7, True),
        ("within", 1.5, False),
        ("within", 1.8, False),
    ],
)
def test_is_reproduced(check: str, ours: float, expected: bool) -> None:
    assert is_reproduced(check, 1.64, ours, 0.1) is expected


def test_missed_claim_renders_as_not_reproduced(tmp_path: Path) -> None:
    claims = [
        _claim(),
        _claim(id="t1.size", metric="m/size", unit="KB", paper=1070, tolerance=5, check="within"),
    ]
    results = evaluate_claims(
        claims, {"m/error": 1.90, "m/size": 1066.4}, scale=lambda c: f"scale of {c.id}"
    )
    assert [r.reproduced for r in results] == [False, True]
    assert "above its tolerance" in results[0].note
    page = render_page(
        title="T",
        stage="s",
        intro="i",
        profile="default",
        results=results,
        sections=[Section("S", "b")],
        scaled_down=["x"],
    )
    row = next(line for line in page.splitlines() if "`t1.err`" in line)
    assert "**not reproduced**" in row and "1.9" in row and "scale of t1.err" in row
    assert "**reproduced**" in next(line for line in page.splitlines() if "`t1.size`" in line)
    assert "1 of 2 results reproduced" in page

    path = write_claims_json(
        results, tmp_path / "claims.json", paper="p", profile="default", generated_by="s"
    )
    data = json.loads(path.read_text())
    assert [set(r) for r in data["claims"]] == [set(RECORD_FIELDS)] * 2
    assert data["claims"][0]["reproduced"] is False and data["claims"][0]["ours"] == 1.90
    assert check_file(path)[0] == []


def test_missing_metric_is_not_reproduced() -> None:
    (r,) = evaluate_claims([_claim()], {})
    assert r.ours is None and not r.reproduced and "not measured" in r.note


def test_claims_yaml_is_validated(tmp_path: Path) -> None:
    p = tmp_path / "claims.yaml"
    p.write_text(
        "claims:\n  - {id: a, source: T1, description: d, metric: m, unit: '%', paper: 1, tolerance: -1, kind: result}\n"
    )
    with pytest.raises(ConfigError, match=r"tolerance: -1\.0 is out of range"):
        load_claims(p)
    p.write_text(
        "claims:\n  - {id: a, source: T1, description: d, metric: m, unit: '%', paper: 1, tolerance: 1, kind: result, check: roughly}\n"
    )
    with pytest.raises(ConfigError, match="'roughly' is not allowed"):
        load_claims(p)


def test_index_lists_every_paper(tmp_path: Path) -> None:
    results = evaluate_claims([_claim()], {"m/error": 1.0})
    path = write_claims_json(
        results,
        tmp_path / "deep_compression" / "claims.json",
        paper="deep_compression",
        profile="smoke",
        generated_by="s",
    )
    page = render_index([path])
    assert "[Deep Compression](deep_compression/README.md)" in page and "1 / 1" in page
    assert page.count("not yet replicated") == 6


def test_only_results_count_in_the_headline_and_the_index(tmp_path: Path) -> None:
    """Settings copied from the paper and architecture checks are shown, never counted."""
    claims = [
        _claim(),
        _claim(id="t1.bits", kind="setting", metric="m/bits", paper=5, tolerance=0, check="within"),
        _claim(id="t1.w", kind="architecture", metric="m/w", paper=10, tolerance=0, check="within"),
    ]
    results = evaluate_claims(claims, {"m/error": 1.9, "m/bits": 5, "m/w": 10})
    page = render_page(
        title="T", stage="p_report", intro="i", profile="smoke", results=results, sections=[],
        scaled_down=["x"],
    )  # fmt: skip
    assert "**0 of 1 results reproduced**" in page
    assert "1 setting copied from the paper and 1 architecture check" in page
    assert "as set" in page and "| same |" in page
    path = write_claims_json(
        results, tmp_path / "p" / "claims.json", paper="p", profile="smoke", generated_by="s"
    )
    assert "| 0 / 1 |" in render_index([path])
    assert [r["kind"] for r in json.loads(path.read_text())["claims"]] == [
        "result",
        "setting",
        "architecture",
    ]


def test_targets_are_shown_but_never_claims(tmp_path: Path) -> None:
    p = tmp_path / "claims.yaml"
    p.write_text(
        "claims: []\n"
        "targets:\n  - {id: goal.x, description: d, metric: m/x, unit: x, goal: 10, check: at_least,"
        " paper: 20, paper_source: README}\n"
    )
    cf = load_claims_file(p)
    assert cf.claims == [] and cf.targets[0].goal == 10
    (met,) = evaluate_targets(cf.targets, {"m/x": 11.0})
    (missed,) = evaluate_targets(cf.targets, {"m/x": 9.0})
    assert met.met and not missed.met
