from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from common.checkpoint import load_model
from common.data import build_dataset
from common.train import evaluate_dataset
from papers.deep_compression import train_baseline
from tests.papers.deep_compression.conftest import REPO, section_params, write_params


def _stage_args(params: Path, data: Path, out: Path, name: str) -> list[str]:
    return [
        "--params",
        str(params),
        "--name",
        name,
        "--data",
        str(data),
        "--out",
        str(out / "runs" / name),
        "--checkpoints",
        str(out / "ckpt" / name),
        "--metrics",
        str(out / "metrics" / f"baseline_{name}.json"),
        "--history",
        str(out / "metrics" / f"baseline_{name}_history.csv"),
    ]


def test_stage_trains_saves_and_reports(
    tmp_path: Path, dc_params: Path, prepared_fake_mnist: Path
) -> None:
    for name in ("lenet300", "lenet5"):
        assert train_baseline.main(_stage_args(dc_params, prepared_fake_mnist, tmp_path, name)) == 0
    metrics = json.loads((tmp_path / "metrics" / "baseline_lenet5.json").read_text())
    assert metrics["lenet5/baseline/params"] == 431080
    assert metrics["lenet5/baseline/size_kb"] == pytest.approx(1724.32)
    assert metrics["lenet5/baseline/macs"] == 2293000
    assert metrics["lenet5/baseline/train_samples"] == 256
    # The saved model reproduces the reported test error.
    model, meta = load_model(tmp_path / "runs" / "lenet5" / "model.safetensors")
    assert meta["profile"] == "smoke"
    test = build_dataset("mnist", "test", root=prepared_fake_mnist)
    assert evaluate_dataset(model, test)["error"] == pytest.approx(
        metrics["lenet5/baseline/test_error"]
    )
    assert (
        json.loads((tmp_path / "runs" / "lenet5" / "config.json").read_text())["profile"] == "smoke"
    )


def test_bad_params_fail_before_any_work(
    tmp_path: Path, prepared_fake_mnist: Path, capsys: pytest.CaptureFixture
) -> None:
    params = write_params(tmp_path / "params")
    profiles = section_params(params)
    profiles.write_text(profiles.read_text().replace("weight_decay: 0.0005", "weight_decay: -1"))
    rc = train_baseline.main(_stage_args(params, prepared_fake_mnist, tmp_path, "lenet5"))
    assert rc == 2
    err = capsys.readouterr().err
    assert "weight_decay: -1.0 is out of range; allowed: >= 0" in err and str(profiles) in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "metrics").exists()
    # Nothing was trained: at most the (empty) checkpoint directory exists.
    assert not [p for p in (tmp_path / "ckpt").rglob("*") if p.is_file()]


def test_missing_data_names_the_fix(
    tmp_path: Path, dc_params: Path, capsys: pytest.CaptureFixture
) -> None:
    rc = train_baseline.main(_stage_args(dc_params, tmp_path / "nothing", tmp_path, "lenet5"))
    assert rc == 2
    assert "Fix:" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, why",
    [
        (b"not a checkpoint", "truncated, not a PyTorch checkpoint"),
        (None, "holds a Python object (pathlib.PosixPath)"),
    ],
)
def test_a_bad_checkpoint_is_one_line_and_exit_2(
    tmp_path: Path, dc_params: Path, prepared_fake_mnist: Path, content: bytes | None, why: str
) -> None:
    """A corrupt or code-carrying ``last.pt`` in the stage's checkpoint folder: the real stage
    process prints one line naming the file and the fix (never ``weights_only=False``)."""
    ckpt = tmp_path / "ckpt" / "lenet5" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    if content is None:
        torch.save({"fingerprint": "x", "hook": Path("evil")}, ckpt)  # a pickled object
    else:
        ckpt.write_bytes(content)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "papers.deep_compression.train_baseline",
            *_stage_args(dc_params, prepared_fake_mnist, tmp_path, "lenet5"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(ckpt) in lines[0] and why in lines[0] and "delete it" in lines[0]
    assert "weights_only" not in proc.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_killed_stage_resumes_to_the_same_weights(
    tmp_path: Path, prepared_fake_mnist: Path
) -> None:
    """SIGKILL the real stage process mid-run; re-running it loses no finished epoch and ends
    with exactly the weights of an uninterrupted run."""
    from common.data.fixtures import write_fake_mnist
    from common.data.prepare import prepare_mnist

    # A larger fake set so an epoch lasts long enough to be interrupted.
    raw = write_fake_mnist(tmp_path / "raw", n_train=2000, n_test=200)
    data = tmp_path / "prepared"
    from common.data.arrays import save_prepared
    from common.data.mnist import read_mnist_raw

    save_prepared(
        data,
        {
            s: (read_mnist_raw(raw, s)[0][:, None], read_mnist_raw(raw, s)[1])
            for s in ("train", "test")
        },
        name="mnist",
        num_classes=10,
    )
    del prepare_mnist
    # lr 0.01: at the smoke profile's 0.05 with batch 32 the fake data drives the weights to NaN,
    # and NaN weights can never compare equal.
    params = write_params(tmp_path / "params", epochs=3, lr=0.01)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "papers.deep_compression.train_baseline"]

    reference = subprocess.run(
        cmd + _stage_args(params, data, tmp_path / "ref", "lenet5"),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert reference.returncode == 0, reference.stderr[-2000:]

    run_args = _stage_args(params, data, tmp_path / "run", "lenet5")
    proc = subprocess.Popen(
        cmd + run_args,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    for line in proc.stdout:  # type: ignore[union-attr]
        seen.append(line)
        if line.startswith("epoch 1/3"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    assert not (tmp_path / "run" / "runs" / "lenet5" / "model.safetensors").exists()

    resumed = subprocess.run(
        cmd + run_args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stdout
    assert "epoch 1/3" not in resumed.stdout  # finished epochs are not redone
    a = load_file(tmp_path / "ref" / "runs" / "lenet5" / "model.safetensors")
    b = load_file(tmp_path / "run" / "runs" / "lenet5" / "model.safetensors")
    assert all(torch.isfinite(a[k]).all() for k in a)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
