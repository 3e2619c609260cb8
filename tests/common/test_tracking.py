from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.tracking import TrackingError, artifact_root, list_runs, stage_run, tracking_uri
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


def test_the_recorder_process_records_the_run_and_its_artifacts(tmp_path: Path) -> None:
    """The default for stages: a companion process opens and writes the run while the stage works."""
    artifact = tmp_path / "table.md"
    artifact.write_text("| a |\n")
    start = time.time() - 5
    with stage_run(
        experiment="test_tracking_process",
        stage="proc@x",
        config={"a": 1},
        start_time=start,
        mode="process",
    ) as run:
        run.log_metrics({"epoch/loss": 0.5}, step=1)
        run.log_metrics({"x/error": 2.0})
        run.log_artifact(artifact)
    (r,) = list_runs("test_tracking_process")
    assert r["status"] == "FINISHED" and r["metrics"]["x/error"] == 2.0
    assert r["params"]["a"] == "1"
    assert abs(r["start_time"] / 1000 - start) < 1  # the stage's start, not the recorder's
    assert list((artifact_root() / "test_tracking_process").rglob("table.md"))


def test_a_killed_stage_leaves_a_killed_run(tmp_path: Path) -> None:
    """If the stage process dies, the recorder sees its input close and marks the run KILLED."""
    script = (
        "import os, signal\n"
        "from common.tracking import stage_run\n"
        "with stage_run(experiment='test_tracking_killed', stage='k', mode='process') as run:\n"
        "    run.log_metrics({'m': 1.0})\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2], timeout=120)
    assert out.returncode == -9
    for _ in range(300):  # the recorder finishes on its own after the stage died
        runs = list_runs("test_tracking_killed")
        if runs and runs[0]["status"] != "RUNNING":
            break
        time.sleep(0.1)
    assert [r["status"] for r in runs] == ["KILLED"]
    assert runs[0]["metrics"]["m"] == 1.0


def test_a_run_killed_with_its_recorder_is_closed_by_the_next_start(tmp_path: Path) -> None:
    """A stage killed together with its recorder (the whole process group) leaves a RUNNING run;
    the stage's next start marks it KILLED, and leaves a live one alone."""
    script = (
        "import os, signal\n"
        "from common.tracking import stage_run\n"
        "with stage_run(experiment='test_tracking_orphan', stage='o', mode='inline') as run:\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2], timeout=120)
    assert out.returncode == -9
    assert [r["status"] for r in list_runs("test_tracking_orphan")] == ["RUNNING"]
    with stage_run(experiment="test_tracking_orphan", stage="o", mode="inline"):
        with stage_run(experiment="test_tracking_orphan", stage="o", mode="inline"):
            pass  # this process's own run is alive: not touched
        statuses = sorted(r["status"] for r in list_runs("test_tracking_orphan"))
        assert statuses == ["FINISHED", "KILLED", "RUNNING"]
    statuses = sorted(r["status"] for r in list_runs("test_tracking_orphan"))
    assert statuses == ["FINISHED", "FINISHED", "KILLED"]


def test_a_broken_database_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    bad = tmp_path / "mlflow.db"
    bad.write_bytes(b"this is not a database")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{bad}")
    with pytest.raises(TrackingError, match="MLflow recorder stopped"):  # noqa: SIM117
        with stage_run(experiment="e", stage="s", mode="process") as run:
            run.log_artifact(bad)
