"""MLflow tracking: one run per pipeline stage, in a SQLite database inside the repository.

* The store is ``sqlite:///<repo>/mlflow.db`` unless ``MLFLOW_TRACKING_URI`` is set (the tests point
  it at a temporary database). Artifacts go to ``mlartifacts/`` beside the database file, set
  explicitly on each experiment so that nothing lands in a stray ``./mlruns``.
* Each paper is an MLflow experiment; each stage run is named after its DVC stage and tagged with
  the profile and git commit. Params are the flattened resolved config; metrics are the same flat
  dict the stage writes for DVC (and every epoch's record, with the epoch as step).
* **The run is recorded by a companion process** (``mode="process"``, the default for stages):
  importing MLflow and opening its database take seconds, which every stage would otherwise pay
  before its first line of work. The stage starts ``python -m common.tracking record`` and sends
  it what to log, line by line; the recorder opens the run (with the stage's start time) while
  the stage works, on the other core, and the stage waits for it only when it ends. Artifacts are
  acknowledged one by one (the file must still exist when it is copied). If the stage dies, the
  recorder sees its input close and marks the run KILLED. ``EFFML_TRACKING=inline`` records in
  the stage's own process instead (the tests do), ``EFFML_TRACKING=off`` not at all.

Browse with ``make ui`` (binds to 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from common.config import flatten, to_dict
from common.env import pid_alive
from common.errors import InputError
from common.paths import repo_root

TRACKING_ENV = "MLFLOW_TRACKING_URI"
MODE_ENV = "EFFML_TRACKING"


class TrackingError(InputError, RuntimeError):
    """The MLflow run could not be recorded (e.g. a corrupt ``mlflow.db``)."""


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

    # Creating or upgrading the database is routine here, not news for a stage's console.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


def _param_value(v: Any) -> str:
    s = str(v)
    return s if len(s) <= 6000 else s[:5997] + "..."


def _metric_key(key: str) -> str:
    # MLflow allows alphanumerics, _ - . space / (and : in params); anything else becomes "_".
    return "".join(c if c.isalnum() or c in "_-. /" else "_" for c in key)


def _clean_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {
        _metric_key(k): float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


# ---------------------------------------------------------------------- the recorder (MLflow)
class Recorder:
    """Writes one run through the MLflow client API (in whichever process holds it)."""

    def __init__(self, header: Mapping[str, Any]) -> None:
        mlflow = _mlflow()
        from mlflow.entities import Param

        uri = header.get("uri") or tracking_uri()
        self.client = mlflow.MlflowClient(uri)
        experiment = header["experiment"]
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            location = artifact_root(uri) / experiment
            location.mkdir(parents=True, exist_ok=True)
            exp_id = self.client.create_experiment(experiment, artifact_location=location.as_uri())
        else:
            exp_id = exp.experiment_id
            self._close_orphans(exp_id, header)
        run = self.client.create_run(
            exp_id,
            start_time=int(header["start_ms"]),
            tags=dict(header["tags"]),
            run_name=header["stage"],
        )
        self.run_id: str = run.info.run_id
        items = [Param(_metric_key(k), _param_value(v)) for k, v in header["params"].items()]
        for start in range(0, len(items), 100):  # MLflow caps a batch at 100 params
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def _close_orphans(self, exp_id: str, header: Mapping[str, Any]) -> None:
        """Mark KILLED the earlier runs of this stage still RUNNING whose process is gone (killed
        together with its recorder, e.g. the whole process group, or the machine rebooted)."""
        tags = header["tags"]
        runs = self.client.search_runs(
            [exp_id],
            filter_string=f"tags.stage = '{tags['stage']}' and attributes.status = 'RUNNING'",
        )
        for run in runs:
            pid, host = run.data.tags.get("pid", ""), run.data.tags.get("host")
            if host != tags.get("host") or not pid.isdigit() or pid_alive(int(pid)):
                continue  # another machine's run, or one still going
            self.client.set_terminated(run.info.run_id, "KILLED", end_time=int(header["start_ms"]))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None, ms: int) -> None:
        from mlflow.entities import Metric

        clean = [Metric(k, v, ms, step or 0) for k, v in _clean_metrics(metrics).items()]
        for start in range(0, len(clean), 1000):
            self.client.log_batch(self.run_id, metrics=clean[start : start + 1000])

    def log_artifact(self, path: str, artifact_path: str | None) -> None:
        p = Path(path)
        if p.is_dir():
            self.client.log_artifacts(self.run_id, str(p), artifact_path=artifact_path)
        elif p.is_file():
            self.client.log_artifact(self.run_id, str(p), artifact_path=artifact_path)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, v)

    def close(self, status: str, ms: int) -> None:
        self.client.set_terminated(self.run_id, status, end_time=ms)

    def apply(self, msg: Mapping[str, Any]) -> None:
        op = msg["op"]
        if op == "metrics":
            self.log_metrics(msg["metrics"], msg.get("step"), msg["ms"])
        elif op == "artifact":
            self.log_artifact(msg["path"], msg.get("artifact_path"))
        elif op == "tags":
            self.set_tags(msg["tags"])
        else:  # pragma: no cover - the stage side writes only these
            raise ValueError(f"unknown op {op!r}")


def record(stdin: IO[str], stdout: IO[str]) -> int:
    """The recorder process: a header line, then one JSON request per line until ``close`` (or
    the end of input: the stage died, the run is marked KILLED). Artifacts are acknowledged."""
    header = json.loads(stdin.readline())
    try:
        recorder = Recorder(header)
    except Exception as exc:  # a corrupt or locked database, a full disk: one line, not a traceback
        print(
            f"error: MLflow could not record the run in {header.get('uri')}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            file=sys.stderr,
        )
        return 1
    for line in stdin:
        msg = json.loads(line)
        if msg["op"] == "close":
            recorder.close(msg["status"], msg["ms"])
            return 0
        recorder.apply(msg)
        if msg["op"] == "artifact":
            stdout.write("ok\n")
            stdout.flush()
    recorder.close("KILLED", int(time.time() * 1000))
    return 0


# ---------------------------------------------------------------------- the stage's handle
class StageRun:
    """Handle to a stage's MLflow run: ``log_metrics``, ``log_artifact``, ``set_tags``."""

    def __init__(self, header: dict[str, Any], mode: str) -> None:
        self.mode = mode
        self._proc: subprocess.Popen[str] | None = None
        self._recorder: Recorder | None = None
        if mode == "process":
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "common.tracking", "record"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=repo_root(),
                env={
                    **os.environ,
                    "PYTHONPATH": os.pathsep.join(
                        p for p in (str(repo_root()), os.environ.get("PYTHONPATH")) if p
                    ),
                },
            )
            self._send(header)
        else:
            self._recorder = Recorder(header)

    def _send(self, msg: Mapping[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(msg) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise TrackingError(self._failure()) from None

    def _failure(self) -> str:
        code = self._proc.wait() if self._proc is not None else None
        return (
            f"the MLflow recorder stopped (exit code {code}); its error is printed above. "
            f"Check {tracking_uri()} (delete a corrupt mlflow.db to start a new one)"
        )

    def _request(self, msg: dict[str, Any]) -> None:
        if self._recorder is not None:
            self._recorder.apply(msg)
            return
        self._send(msg)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        clean = _clean_metrics(metrics)
        if clean:
            self._request(
                {"op": "metrics", "metrics": clean, "step": step, "ms": int(time.time() * 1000)}
            )

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        msg = {"op": "artifact", "path": str(Path(path).resolve()), "artifact_path": artifact_path}
        self._request(msg)
        if self._proc is not None:
            assert self._proc.stdout is not None
            if self._proc.stdout.readline().strip() != "ok":
                raise TrackingError(self._failure())

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._request({"op": "tags", "tags": dict(tags)})

    def close(self, status: str) -> None:
        ms = int(time.time() * 1000)
        if self._recorder is not None:
            self._recorder.close(status, ms)
            return
        assert self._proc is not None and self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._send({"op": "close", "status": status, "ms": ms})
            self._proc.stdin.close()
        if self._proc.wait() != 0 and status == "FINISHED":
            raise TrackingError(self._failure())


def tracking_mode() -> str:
    mode = os.environ.get(MODE_ENV, "process")
    if mode not in ("process", "inline", "off"):
        raise TrackingError(f"{MODE_ENV}={mode!r}: use process, inline or off")
    return mode


@contextlib.contextmanager
def stage_run(
    *,
    experiment: str,
    stage: str,
    config: Any = None,
    profile: str | None = None,
    tags: Mapping[str, str] | None = None,
    enabled: bool = True,
    start_time: float | None = None,
    mode: str | None = None,
) -> Iterator[StageRun | None]:
    """One MLflow run for a pipeline stage.

    Args:
        experiment: the paper slug (or ``"data"``); one MLflow experiment each.
        stage: the DVC stage name, used as the run name.
        config: the resolved config (a dataclass or mapping); logged flattened as params.
        profile: the profile the stage ran with (tag).
        tags: extra tags.
        enabled: ``False`` yields ``None`` and records nothing (non-zero DDP ranks).
        start_time: when the stage started (``time.time()``), the run's start.
        mode: ``process`` (a companion recorder), ``inline`` or ``off``; default
            ``$EFFML_TRACKING`` or ``process``.

    The run is marked FAILED if the stage raises, KILLED if it is interrupted.
    """
    mode = mode or tracking_mode()
    if not enabled or mode == "off":
        yield None
        return
    all_tags = {
        "stage": stage,
        "git_commit": _git_commit(),
        "pid": str(os.getpid()),  # a later run of the stage closes this one if it was killed
        "host": socket.gethostname(),
        **(tags or {}),
    }
    if profile:
        all_tags["profile"] = profile
    header = {
        "uri": tracking_uri(),
        "experiment": experiment,
        "stage": stage,
        "start_ms": int(1000 * (start_time if start_time is not None else time.time())),
        "tags": all_tags,
        "params": {k: _param_value(v) for k, v in flatten(to_dict(config or {})).items()},
    }
    run = StageRun(header, mode)
    try:
        yield run
    except KeyboardInterrupt:
        run.close("KILLED")
        raise
    except BaseException:
        run.close("FAILED")
        raise
    run.close("FINISHED")


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
            "start_time": r.info.start_time,
            "end_time": r.info.end_time,
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["record"]:
        print(
            "usage: python -m common.tracking record  (started by the stage harness)",
            file=sys.stderr,
        )
        return 2
    return record(sys.stdin, sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
