"""Shared fixtures. Every test runs against a temporary MLflow database, never the repo's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _isolated_tracking(tmp_path_factory: pytest.TempPathFactory) -> None:
    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{db}"
    # Temporary files of atomic writes: never in the checkout's .tmp (common/io.py).
    os.environ["EFFML_TMP_DIR"] = str(tmp_path_factory.mktemp("scratch"))
    # Stages record their MLflow run in-process here (one recorder process per stage run would
    # double the test suite's processes); tests/common/test_tracking.py covers the recorder.
    os.environ.setdefault("EFFML_TRACKING", "inline")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")


if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on a two-core machine: one thread each, no oversubscription.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


@pytest.fixture
def fake_mnist(tmp_path: Path) -> Path:
    from common.data.fixtures import write_fake_mnist

    return write_fake_mnist(tmp_path / "mnist", n_train=256, n_test=64)


@pytest.fixture
def prepared_fake_mnist(tmp_path: Path, fake_mnist: Path) -> Path:
    """A prepared-format directory built from the fake MNIST (as the prepare stage would)."""
    from common.data.arrays import save_prepared
    from common.data.mnist import read_mnist_raw

    splits = {
        s: (lambda a: (a[0][:, None], a[1]))(read_mnist_raw(fake_mnist, s))
        for s in ("train", "test")
    }
    out = tmp_path / "prepared_mnist"
    save_prepared(out, splits, name="mnist", num_classes=10)
    return out


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``gpu`` tests are skipped (with the reason shown) where no CUDA device is visible."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
