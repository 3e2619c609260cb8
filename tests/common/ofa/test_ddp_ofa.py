from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_supernet_trains_under_two_process_ddp(tmp_path: Path) -> None:
    """Sub-networks that skip blocks leave parameters unused; with several passes per step and
    gradients synchronised once, both replicas must stay identical."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(REPO / "tests" / "common" / "ofa" / "ddp_ofa_worker.py"),
            str(tmp_path),
        ],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["sum"] == r1["sum"] and r0["sq"] == r1["sq"]
