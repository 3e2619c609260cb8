"""``python -m common.report.verify``: a ``claims.json`` passes only when it is what the report
stage computes from ``claims.yaml`` and the metrics; every hand edit fails with one line naming
the paper and the claim, never a traceback.

The tampering tests run on a small paper written in ``tmp_path`` (registry, claims.yaml, stage
metrics, derived.json, and a claims.json made by the report's own functions); the last tests run
the verifier on the committed reports, which the report stages generated.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.papers import papers
from common.paths import repo_root
from common.report.claims import evaluate_claims, load_claims, load_claims_file, write_claims_json
from common.report.verify import main as verify_main
from common.report.verify import report_metrics

SLUG = "toy"
CLAIMS_YAML = """\
claims:
- {id: t1.err, source: Table 1, description: error, metric: net/test_error, unit: '%',
   paper: 1.64, tolerance: 0.13, check: at_most, kind: result, note: one binomial sd}
- {id: t1.size, source: Table 1, description: size, metric: net/size_kb, unit: KB,
   paper: 1070, tolerance: 5, check: within, kind: architecture, scale: float32}
- {id: t1.rate, source: Table 2, description: rate, metric: net/derived/rate, unit: x,
   paper: 40, tolerance: 1, check: at_least, kind: result}
- {id: t1.bits, source: Table 2, description: bits, metric: net/bits, unit: bits,
   paper: 5, tolerance: 0, check: within, kind: setting}
- {id: t1.absent, source: Table 3, description: not run here, metric: net/absent, unit: '%',
   paper: 10, tolerance: 1, check: within, kind: result}
targets:
- {id: goal.speed, description: speed, metric: net/speed, unit: x, goal: 2}
"""
STAGE_METRICS = {"net/test_error": 1.9, "net/size_kb": 1066.44, "net/bits": 5, "net/speed": 3.0}
DERIVED = {"net/derived/rate": 39.5}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A repository with one paper whose claims.json the report's functions wrote."""
    (tmp_path / "papers" / SLUG).mkdir(parents=True)
    (tmp_path / "papers" / "registry.yaml").write_text(
        f"papers:\n  - {{slug: {SLUG}, title: Toy, citation: nobody}}\n"
    )
    claims_yaml = tmp_path / "papers" / SLUG / "claims.yaml"
    claims_yaml.write_text(CLAIMS_YAML)
    metrics = tmp_path / "metrics" / SLUG
    metrics.mkdir(parents=True)
    (metrics / "train.json").write_text(json.dumps(STAGE_METRICS))
    (metrics / "train_config.json").write_text(json.dumps({"optimizer": "sgd"}))  # not metrics
    (metrics / "derived.json").write_text(json.dumps(DERIVED))
    results = evaluate_claims(
        load_claims_file(claims_yaml).claims,
        report_metrics(metrics),
        scale=lambda c: f"default profile; {c.scale}",
    )
    write_claims_json(
        results,
        tmp_path / "reports" / SLUG / "claims.json",
        paper=SLUG,
        profile="default",
        generated_by=f"{SLUG}_report",
    )
    return tmp_path


def _claims_json(root: Path) -> Path:
    return root / "reports" / SLUG / "claims.json"


def _edit(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to the parsed claims.json and write it back (NaN and inf allowed)."""
    path = _claims_json(root)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def _record(data: dict[str, Any], claim_id: str) -> dict[str, Any]:
    return next(r for r in data["claims"] if r["id"] == claim_id)


def _set(claim_id: str, **values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda data: _record(data, claim_id).update(values)


def _verify(root: Path, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, list[str]]:
    """Exit status and the ``error:`` lines of one verifier run under ``root``."""
    rc = verify_main(["--root", str(root), *args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, [line for line in err.splitlines() if line.startswith("error: ")]


def _delete(claim_id: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["claims"] = [r for r in data["claims"] if r["id"] != claim_id]

    return change


def _duplicate(claim_id: str) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["claims"].append(dict(_record(data, claim_id)))


def _extra(data: dict[str, Any]) -> None:
    data["claims"].append({**_record(data, "t1.size"), "id": "t1.invented"})


def test_untouched_claims_json_passes(root: Path, capsys: pytest.CaptureFixture) -> None:
    assert _verify(root, capsys) == (0, [])
    # --strict keeps failing on claims not reproduced (t1.err misses, t1.absent did not run)
    rc, lines = _verify(root, capsys, "--strict")
    assert rc == 1 and lines == []


def test_explicit_file_is_checked_against_its_paper(
    root: Path, capsys: pytest.CaptureFixture
) -> None:
    assert _verify(root, capsys, str(_claims_json(root))) == (0, [])
    _edit(root, _set("t1.err", reproduced=True))
    rc, lines = _verify(root, capsys, str(_claims_json(root)))
    assert rc == 1 and any("claim 't1.err'" in line for line in lines)


@pytest.mark.parametrize(
    ("change", "claim_id", "expected"),
    [
        pytest.param(
            _set("t1.err", ours=1.64, difference=0.0, reproduced=True),
            "t1.err",
            "ours 1.64 but metrics/toy/ has 1.9 for metric 'net/test_error'",
            id="ours-equals-paper-difference-0-reproduced",
        ),
        pytest.param(
            _set("t1.err", tolerance=1e9, reproduced=True),
            "t1.err",
            "tolerance 1000000000.0 differs from claims.yaml's 0.13",
            id="tolerance-1e9",
        ),
        pytest.param(
            _delete("t1.size"),
            "t1.size",
            "missing from claims.json",
            id="deleted-claim",
        ),
        pytest.param(
            _duplicate("t1.size"),
            "t1.size",
            "appears 2 times in claims.json",
            id="duplicated-claim",
        ),
        pytest.param(_extra, "t1.invented", "not a claim of", id="extra-claim"),
        pytest.param(
            _set("t1.size", ours=float("nan")), "t1.size", "ours nan is not finite", id="nan-ours"
        ),
        pytest.param(
            _set("t1.size", tolerance=float("inf")),
            "t1.size",
            "tolerance inf is not finite",
            id="inf-tolerance",
        ),
        pytest.param(
            _set("t1.size", paper=float("-inf")),
            "t1.size",
            "paper -inf is not finite",
            id="inf-paper",
        ),
        pytest.param(
            _set("t1.size", ours="1066.44"),
            "t1.size",
            "ours '1066.44' is not a number",
            id="string-ours",
        ),
        pytest.param(
            _set("t1.size", ours=True), "t1.size", "ours True is not a number", id="bool-ours"
        ),
        pytest.param(
            _set("t1.err", check="roughly"),
            "t1.err",
            "unknown check 'roughly'",
            id="unknown-check",
        ),
        pytest.param(
            _set("t1.bits", kind="result"),
            "t1.bits",
            "kind 'result' differs from claims.yaml's 'setting'",
            id="setting-counted-as-result",
        ),
        pytest.param(
            _set("t1.bits", kind="headline"),
            "t1.bits",
            "unknown kind 'headline'",
            id="unknown-kind",
        ),
        pytest.param(
            _set("t1.err", reproduced=True),
            "t1.err",
            "reproduced True but the recomputed verdict is False",
            id="changed-verdict",
        ),
        pytest.param(
            _set("t1.rate", reproduced="yes"),
            "t1.rate",
            "reproduced 'yes' is not true or false",
            id="string-verdict",
        ),
        pytest.param(
            _set("t1.err", paper=1.9),
            "t1.err",
            "paper 1.9 differs from claims.yaml's 1.64",
            id="paper-value-moved",
        ),
        pytest.param(
            _set("t1.rate", difference=0.0),
            "t1.rate",
            "difference 0.0 but ours - paper recomputed is -0.5",
            id="difference",
        ),
        pytest.param(
            _set("t1.absent", ours=10.0, difference=0.0, reproduced=True),
            "t1.absent",
            "ours 10.0 but metrics/toy/ has no metric 'net/absent'",
            id="value-for-a-metric-never-measured",
        ),
        pytest.param(
            _set("t1.rate", note="checked by hand"),
            "t1.rate",
            "note 'checked by hand' differs from the recomputed ''",
            id="note",
        ),
        pytest.param(
            _set("t1.rate", comment="x"),
            "t1.rate",
            "field 'comment' is not in the schema",
            id="extra-field",
        ),
    ],
)
def test_tampered_claim_fails_naming_it(
    root: Path,
    capsys: pytest.CaptureFixture,
    change: Callable[[dict[str, Any]], None],
    claim_id: str,
    expected: str,
) -> None:
    _edit(root, change)
    rc, lines = _verify(root, capsys)
    assert rc == 1
    assert f"error: {SLUG}: claim {claim_id!r}: {expected}" in "\n".join(lines), lines


def test_each_problem_is_one_line(root: Path, capsys: pytest.CaptureFixture) -> None:
    """Copying the paper's value over ours is three problems (ours, difference, verdict): one
    line each, nothing else."""
    _edit(root, _set("t1.err", ours=1.64, difference=0.0, reproduced=True))
    rc, lines = _verify(root, capsys)
    assert rc == 1
    assert len(lines) == 3 and all(
        line.startswith("error: toy: claim 't1.err': ") for line in lines
    )
    assert [line.split(": ")[3].split()[0] for line in lines] == [
        "ours",
        "difference",
        "reproduced",
    ]


@pytest.mark.parametrize(
    ("file", "values", "claim_id", "expected"),
    [
        ("train.json", {**STAGE_METRICS, "net/size_kb": 1080.0}, "t1.size", "has 1080.0 for"),
        ("derived.json", {"net/derived/rate": 41.0}, "t1.rate", "has 41.0 for"),
    ],
    ids=["stage-metric", "derived"],
)
def test_metrics_changed_after_the_report_fail(
    root: Path,
    capsys: pytest.CaptureFixture,
    file: str,
    values: dict[str, float],
    claim_id: str,
    expected: str,
) -> None:
    (root / "metrics" / SLUG / file).write_text(json.dumps(values))
    rc, lines = _verify(root, capsys)
    assert rc == 1 and any(f"claim {claim_id!r}: ours" in x and expected in x for x in lines)


def test_claims_yaml_changed_after_the_report_fails(
    root: Path, capsys: pytest.CaptureFixture
) -> None:
    path = root / "papers" / SLUG / "claims.yaml"
    path.write_text(path.read_text().replace("tolerance: 0.13", "tolerance: 0.5"))
    rc, lines = _verify(root, capsys)
    assert rc == 1
    assert "error: toy: claim 't1.err': tolerance 0.13 differs from claims.yaml's 0.5" in lines


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda r: (r / "metrics" / SLUG / "derived.json").unlink(), "cannot recompute"),
        (
            lambda r: (r / "metrics" / SLUG / "derived.json").write_text('{"net/bits": 5}'),
            "derived metric 'net/bits' is also a stage metric",
        ),
        (
            lambda r: (r / "papers" / SLUG / "claims.yaml").write_text("claims: 3\n"),
            "cannot recompute",
        ),
        (lambda r: _claims_json(r).write_text("{not json"), "unreadable"),
        (lambda r: _claims_json(r).write_text("[]"), "expected a JSON object"),
        (lambda r: _edit(r, lambda d: d.update(claims={})), "claims must be a list"),
        (lambda r: _edit(r, lambda d: d["claims"].append(3)), "record 5 is not an object"),
        (lambda r: _edit(r, lambda d: d.update(paper="other")), "paper 'other' is not 'toy'"),
        (lambda r: _edit(r, lambda d: d.pop("profile")), "missing top-level key 'profile'"),
        (lambda r: _edit(r, lambda d: d.update(schema_version=1)), "schema_version 1 != 2"),
        (lambda r: _claims_json(r).unlink(), "does not exist: run the report stage"),
    ],
    ids=[
        "no-derived",
        "derived-clash",
        "bad-claims-yaml",
        "not-json",
        "not-an-object",
        "claims-not-a-list",
        "record-not-an-object",
        "other-paper",
        "no-profile",
        "old-schema",
        "no-claims-json",
    ],
)
def test_broken_files_fail_with_a_line_naming_the_paper(
    root: Path, capsys: pytest.CaptureFixture, break_it: Callable[[Path], Any], expected: str
) -> None:
    break_it(root)
    rc, lines = _verify(root, capsys)
    assert rc == 1 and any(x.startswith(f"error: {SLUG}: ") and expected in x for x in lines)


def test_unregistered_file_fails(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    stray = tmp_path / "elsewhere" / "claims.json"
    stray.parent.mkdir()
    stray.write_text(_claims_json(root).read_text().replace('"toy"', '"unknown"'))
    rc, lines = _verify(root, capsys, str(stray))
    assert rc == 1 and "names no paper" in lines[0]


def _real_paper(tmp_path: Path, slug: str) -> Path:
    """A root with ``slug``'s claims.yaml, its committed metrics (in git, unlike the generated
    ``reports/``) and the claims.json the report's own functions compute from them."""
    src = repo_root()
    (tmp_path / "papers" / slug).mkdir(parents=True)
    shutil.copy(src / "papers" / slug / "claims.yaml", tmp_path / "papers" / slug)
    shutil.copytree(src / "metrics" / slug, tmp_path / "metrics" / slug)
    with (tmp_path / "papers" / "registry.yaml").open("a") as fh:
        fh.write(f"  - {{slug: {slug}, title: t, citation: c}}\n")
    results = evaluate_claims(
        load_claims(tmp_path / "papers" / slug / "claims.yaml"),
        report_metrics(tmp_path / "metrics" / slug),
    )
    write_claims_json(
        results,
        tmp_path / "reports" / slug / "claims.json",
        paper=slug,
        profile="default",
        generated_by=f"{slug}_report",
    )
    return tmp_path


def test_every_registered_paper_passes_on_its_committed_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Verify agrees with the report's claim evaluation on every paper's real metrics."""
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "registry.yaml").write_text("papers:\n")
    for paper in papers(repo_root()):
        _real_paper(tmp_path, paper.slug)
    assert _verify(tmp_path, capsys) == (0, [])


def test_a_real_report_with_one_verdict_flipped_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    slug = "deep_compression"
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "registry.yaml").write_text("papers:\n")
    _real_paper(tmp_path, slug)
    assert _verify(tmp_path, capsys) == (0, [])
    path = tmp_path / "reports" / slug / "claims.json"
    data = json.loads(path.read_text())
    first = data["claims"][0]
    first["reproduced"] = not first["reproduced"]
    path.write_text(json.dumps(data))
    rc, lines = _verify(tmp_path, capsys)
    assert rc == 1 and len(lines) == 1
    assert lines[0].startswith(f"error: {slug}: claim {first['id']!r}: reproduced")


def test_record_without_its_metric_field_is_one_line(
    root: Path, capsys: pytest.CaptureFixture
) -> None:
    _edit(root, lambda d: [_record(d, "t1.size").pop(f) for f in ("metric", "ours")])
    rc, lines = _verify(root, capsys)
    assert rc == 1
    assert lines == [
        "error: toy: claim 't1.size': field 'metric' is missing",
        "error: toy: claim 't1.size': field 'ours' is missing",
    ]


def test_non_finite_claims_yaml_fails(root: Path, capsys: pytest.CaptureFixture) -> None:
    path = root / "papers" / SLUG / "claims.yaml"
    path.write_text(path.read_text().replace("tolerance: 0.13", "tolerance: .inf"))
    rc, lines = _verify(root, capsys)
    assert rc == 1 and len(lines) == 1
    assert "cannot recompute the claims" in lines[0] and "tolerance" in lines[0]
