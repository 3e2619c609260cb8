"""MLflow tracking: one run per pipeline stage, in a SQLite database inside the repository.

* The store is ``sqlite:///<repo>/mlflow.db`` unless ``MLFLOW_TRACKING_URI`` is set (the tests point
  it at a temporary database). Artifacts go to ``mlartifacts/`` beside the database file, set
  explicitly on each experiment so that nothing lands in a stray ``./mlruns``.
* Each paper is an MLflow experiment; each stage run is named after its DVC stage and tagged with
  the profile and git commit. Params are the flattened resolved config; metrics are the same flat
  dict the stage writes for DVC.
* ``mlflow`` is imported lazily (it costs seconds) and telemetry is switched off.

Browse with ``make ui`` (binds to 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from common.config import flatten, to_dict
from common.paths import repo_root

TRACKING_ENV = "MLFLOW_TRACKING_URI"


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else the repository's ``mlflow.db``."""
    return os.environ.get(TRACKING_ENV) or f"sqlite:///{repo_root() / 'mlflow.db'}"


def artifact_root(uri: str | None = None) -> Path:
    """Artifacts live in ``mlartifacts/`` next to a SQLite database (or the repo root otherwise)."""
    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :]).resolve().parent / "mlartifacts"
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path).resolve() / "mlartifacts"
    return repo_root() / "mlartifacts"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _mlflow():
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    import mlflow

    return mlflow


def _param_value(v: Any) -> str:
    s = str(v)
    return s if len(s) <= 6000 else s[:5997] + "..."


class StageRun:
    """Handle to the active MLflow run of a stage."""

    def __init__(self, mlflow: Any, run: Any) -> None:
        self._mlflow = mlflow
        self.run = run
        self.run_id: str = run.info.run_id

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        clean = {
            _metric_key(k): float(v)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        if clean:
            self._mlflow.log_metrics(clean, step=step)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self._mlflow.log_artifacts(str(path), artifact_path=artifact_path)
        elif path.is_file():
            self._mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._mlflow.set_tags(dict(tags))


def _metric_key(key: str) -> str:
    # MLflow allows alphanumerics, _ - . space / (and : in params); anything else becomes "_".
    return "".join(c if c.isalnum() or c in "_-. /" else "_" for c in key)


@contextlib.contextmanager
def stage_run(
    *,
    experiment: str,
    stage: str,
    config: Any = None,
    profile: str | None = None,
    tags: Mapping[str, str] | None = None,
    enabled: bool = True,
) -> Iterator[StageRun | None]:
    """Open one MLflow run for a pipeline stage.

    Args:
        experiment: the paper slug (or ``"data"``); one MLflow experiment each.
        stage: the DVC stage name, used as the run name.
        config: the resolved config (a dataclass or mapping); logged flattened as params.
        profile: the profile the stage ran with (tag).
        tags: extra tags.
        enabled: ``False`` yields ``None`` and records nothing (non-zero DDP ranks).

    The run is marked FAILED if the stage raises.
    """
    if not enabled:
        yield None
        return
    mlflow = _mlflow()
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        location = artifact_root(uri) / experiment
        location.mkdir(parents=True, exist_ok=True)
        exp_id = client.create_experiment(experiment, artifact_location=location.as_uri())
    else:
        exp_id = exp.experiment_id
    all_tags = {"stage": stage, "git_commit": _git_commit(), **(tags or {})}
    if profile:
        all_tags["profile"] = profile
    with mlflow.start_run(experiment_id=exp_id, run_name=stage, tags=all_tags) as run:
        handle = StageRun(mlflow, run)
        if config is not None:
            params = flatten(to_dict(config))
            items = list(params.items())
            for start in range(0, len(items), 100):  # MLflow caps a batch at 100 params
                mlflow.log_params(
                    {_metric_key(k): _param_value(v) for k, v in items[start : start + 100]}
                )
        yield handle


def list_runs(experiment: str) -> list[dict[str, Any]]:
    """Runs of an experiment as ``{"run_name", "status", "metrics", "params", "tags"}`` dicts."""
    mlflow = _mlflow()
    client = mlflow.MlflowClient(tracking_uri())
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], max_results=10000)
    return [
        {
            "run_name": r.info.run_name,
            "status": r.info.status,
            "metrics": dict(r.data.metrics),
            "params": dict(r.data.params),
            "tags": dict(r.data.tags),
            "artifact_uri": r.info.artifact_uri,
        }
        for r in runs
    ]


class EpochLogger:
    """A training hook (see :class:`common.train.TrainHook`; it implements only
    ``on_epoch_end``) that logs every epoch's record to an MLflow run, with the epoch as step."""

    def __init__(self, run: StageRun | None) -> None:
        self.run = run

    def on_epoch_end(self, trainer: Any, record: Mapping[str, float]) -> None:
        if self.run is not None:
            self.run.log_metrics(
                {f"epoch/{k}": v for k, v in record.items() if k != "epoch"},
                step=int(record["epoch"]),
            )


def epoch_logger(run: StageRun | None) -> EpochLogger:
    """A hook logging every epoch's record to ``run`` (``None``: a no-op)."""
    return EpochLogger(run)
