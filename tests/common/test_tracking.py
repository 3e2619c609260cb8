from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.tracking import artifact_root, list_runs, stage_run, tracking_uri
from common.train import TrainConfig


def test_tests_never_touch_the_repository_database() -> None:
    assert tracking_uri() == os.environ["MLFLOW_TRACKING_URI"]
    assert "pytest" in tracking_uri() or "tmp" in tracking_uri()


def test_one_run_per_stage_with_params_metrics_and_artifacts(tmp_path: Path) -> None:
    artifact = tmp_path / "table.md"
    artifact.write_text("| a |\n")
    with stage_run(
        experiment="test_tracking", stage="demo@x", config=TrainConfig(epochs=3), profile="smoke"
    ) as run:
        run.log_metrics({"x/test_error": 1.5, "ignored": "text"})
        run.log_metrics({"epoch/train_loss": 0.3}, step=1)
        run.log_artifact(artifact)
    runs = list_runs("test_tracking")
    assert len(runs) == 1
    r = runs[0]
    assert r["run_name"] == "demo@x" and r["status"] == "FINISHED"
    assert r["params"]["epochs"] == "3" and r["params"]["optimizer.name"] == "sgd"
    assert r["metrics"]["x/test_error"] == 1.5
    assert r["tags"]["profile"] == "smoke" and r["tags"]["stage"] == "demo@x"
    # Artifacts live beside the (temporary) database, never in a stray ./mlruns.
    root = artifact_root()
    assert (root / "test_tracking").is_dir()
    assert list((root / "test_tracking").rglob("table.md"))
    assert not (Path.cwd() / "mlruns").exists()


def test_failed_stage_is_marked_failed() -> None:
    with pytest.raises(RuntimeError), stage_run(experiment="test_tracking_fail", stage="boom"):
        raise RuntimeError("stage crashed")
    assert [r["status"] for r in list_runs("test_tracking_fail")] == ["FAILED"]


def test_disabled_run_records_nothing() -> None:
    with stage_run(experiment="test_tracking_off", stage="rank1", enabled=False) as run:
        assert run is None
    assert list_runs("test_tracking_off") == []
