from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_two_process_gloo_ddp_trains(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(REPO / "tests" / "common" / "train" / "ddp_worker.py"),
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for r in ranks:
        assert r["world_size"] == 2 and r["ddp"] == "DistributedDataParallel"
        # 128 samples, global batch 32 -> 16 per rank -> 4 steps per epoch on each rank.
        assert r["steps"] == 3 * 4
    # DDP keeps replicas identical; both ranks see the all-reduced metrics of the whole set.
    assert ranks[0]["weights_sum"] == ranks[1]["weights_sum"]
    assert ranks[0]["weights_sq"] == ranks[1]["weights_sq"]
    assert ranks[0]["history"][-1]["eval_error"] == ranks[1]["history"][-1]["eval_error"]
    hist = ranks[0]["history"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert (tmp_path / "ckpt" / "last.pt").is_file()  # written by rank 0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["tokens", "adversarial"])
def test_two_process_ddp_for_the_other_task_kinds(kind: str, tmp_path: Path) -> None:
    """Token batches and adversarial training (with R1 through DDP) keep the replicas equal."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(REPO / "tests" / "common" / "train" / "ddp_task_worker.py"),
            kind,
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 and r["ddp"] == "DistributedDataParallel" for r in ranks)
    assert ranks[0]["steps"] == ranks[1]["steps"] > 0
    assert ranks[0]["sum"] == ranks[1]["sum"] and ranks[0]["sq"] == ranks[1]["sq"]
    # Both ranks report the all-reduced epoch metrics of the whole set.
    last = [{k: v for k, v in r["history"][-1].items() if k != "epoch_seconds"} for r in ranks]
    assert last[0] == last[1]
