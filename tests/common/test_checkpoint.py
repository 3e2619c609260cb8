from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
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
    with pytest.raises(
        CheckpointError,
        match=r"cannot load checkpoint .*evil\.pt: it is truncated, not a PyTorch checkpoint, or pickled",
    ) as e:
        safe_load(path)
    message = str(e.value)
    assert "weights_only" not in message  # never the unsafe advice
    assert "\n" not in message and "delete it" in message


def test_truncated_checkpoint_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    atomic_save({"w": torch.randn(100)}, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="truncated or not a PyTorch checkpoint") as e:
        safe_load(path)
    assert "\n" not in str(e.value) and "delete it" in str(e.value)


KILLED_SAVE = """
import os, signal, sys
import torch
import common.checkpoint as ck

def dying_save_file(state, path, metadata=None):
    with open(path, "wb") as fh:  # half a file, then a real kill
        fh.write(b"x" * 4096)
        fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)

ck.save_file = dying_save_file
ck.save_model(torch.nn.Linear(4, 2), sys.argv[1], arch={"name": "linear"})
"""


def test_kill_during_save_model_leaves_no_file_in_the_output_folder(tmp_path: Path) -> None:
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    env = {**os.environ, "EFFML_TMP_DIR": str(scratch)}
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_SAVE, str(out / "model.safetensors")], env=env, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL
    assert list(out.iterdir()) == []  # the output folder (a DVC output) has no leftover
    assert len(list(scratch.glob(".*.tmp"))) == 1  # the killed writer's file, outside it
    os.environ["EFFML_TMP_DIR"], previous = str(scratch), os.environ["EFFML_TMP_DIR"]
    try:  # the next write removes what the dead writer left
        save_model(torch.nn.Linear(4, 2), out / "model.safetensors", arch={"name": "linear"})
    finally:
        os.environ["EFFML_TMP_DIR"] = previous
    assert list(scratch.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors", "model.safetensors.json"]


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
