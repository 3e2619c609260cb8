"""SpAtten: the training stage and the report at the smoke profile, in a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

from papers.spatten import report, train
from tests.params import write_params


def test_train_and_report_at_the_smoke_profile(tmp_path: Path, prepared_fake_mnist: Path) -> None:
    params = write_params(tmp_path, profile="smoke")
    metrics = tmp_path / "metrics"
    rc = train.main(
        [
            "--params", str(params), "--name", "lenet5", "--data", str(prepared_fake_mnist),
            "--out", str(tmp_path / "runs" / "lenet5"), "--checkpoints", str(tmp_path / "ck"),
            "--metrics", str(metrics / "train_lenet5.json"),
            "--history", str(metrics / "train_lenet5_history.csv"),
        ]
    )  # fmt: skip
    assert rc == 0
    values = json.loads((metrics / "train_lenet5.json").read_text())
    assert 0 <= values["lenet5/test_error"] <= 100
    out = tmp_path / "report"
    rc = report.main(
        [
            "--params", str(params), "--claims", str(Path(train.__file__).with_name("claims.yaml")),
            "--metrics-dir", str(metrics), "--out", str(out),
        ]
    )  # fmt: skip
    assert rc == 0
    assert "lenet5" in (out / "README.md").read_text()
    assert json.loads((out / "claims.json").read_text())["paper"] == "spatten"


def test_a_bad_model_name_is_one_clear_line(tmp_path: Path, capsys) -> None:
    params = write_params(tmp_path, profile="smoke")
    rc = train.main(
        [
            "--params", str(params), "--name", "nope", "--data", str(tmp_path),
            "--out", str(tmp_path / "o"), "--checkpoints", str(tmp_path / "c"),
            "--metrics", str(tmp_path / "m.json"), "--history", str(tmp_path / "h.csv"),
        ]
    )  # fmt: skip
    assert rc == 2
    assert "has no 'nope'; it has lenet5" in capsys.readouterr().err
