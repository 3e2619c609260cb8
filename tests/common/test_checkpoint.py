from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from common.checkpoint import CheckpointError, atomic_save, load_model, safe_load, save_model
from common.models import create_model


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_atomic_save_keeps_previous_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1}, path)
    with pytest.raises(Exception):  # noqa: B017  (torch raises its own pickling error type)
        atomic_save({"epoch": 2, "bad": lambda: None}, path)
    assert safe_load(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp files left behind


def test_safe_load_refuses_pickled_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"x": _Evil()}, fh)
    with pytest.raises(CheckpointError, match=r"cannot load checkpoint .*evil\.pt safely"):
        safe_load(path)


def test_truncated_checkpoint_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    atomic_save({"w": torch.randn(100)}, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="delete it"):
        safe_load(path)


@pytest.mark.parametrize("name", ["lenet300", "lenet5"])
def test_model_round_trip(tmp_path: Path, name: str) -> None:
    model = create_model(name)
    save_model(
        model,
        tmp_path / "model.safetensors",
        arch={"name": name, "kwargs": {}},
        extra={"note": "x"},
    )
    loaded, meta = load_model(tmp_path / "model.safetensors")
    assert meta["note"] == "x"
    for (k, v), (k2, v2) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(v, v2)


def test_architecture_mismatch_is_reported(tmp_path: Path) -> None:
    save_model(
        create_model("lenet5"), tmp_path / "m.safetensors", arch={"name": "lenet300", "kwargs": {}}
    )
    with pytest.raises(CheckpointError, match="does not match architecture"):
        load_model(tmp_path / "m.safetensors")
