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
