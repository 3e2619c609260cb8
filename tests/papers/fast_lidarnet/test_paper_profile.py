"""The ``paper`` profile's machinery on a tiny recorded sequence: three short drives written in
the documented format (recorded.py), converted by the data stage, the design and a network trained
in one process and under a two-process ``torchrun``; the closed-loop stage skips recorded drives
with one line. Only the sizes are shrunk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.driving import LidarConfig, MapConfig, VehicleConfig, WorldConfig, build_world, record
from papers.fast_lidarnet import design, drive, recorded, simulate, train
from tests.params import REPO, repo_profiles, write_params
from tests.stage_cli import cli, error_line


def _profile(root: Path) -> dict:
    paper = json.loads(json.dumps(repo_profiles("fast_lidarnet")["paper"]))
    paper["data"].update(root=str(root))
    paper["data"]["lidar"].update(beams=16, azimuth_res_deg=2.0)
    for m in paper["models"].values():
        m.update(width=4, voxel_size=0.5, blocks=[1, 1])
        m["train"].update(epochs=1, batch_size=8, eval_batch_size=16, device="cpu")
    paper["design"].update(voxel_sizes=[0.5], widths=[4], frames=1, repeats=1)
    return paper


@pytest.fixture(scope="module")
def drives(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three recorded drives (one per split) made with the simulator, in the recorded format."""
    root = tmp_path_factory.mktemp("drives")
    lidar, vehicle = LidarConfig(beams=16, azimuth_res_deg=2.0), VehicleConfig()
    for i, name in enumerate(("a", "b", "c")):
        world = build_world(WorldConfig(route_length_m=40.0), seed=10 + i)
        rec = record(world, lidar=lidar, map_config=MapConfig(), vehicle=vehicle, horizon=5,
                     seed=i, lookahead_m=8.0, perturb_sigma=0.02)  # fmt: skip
        recorded.write_drive(root / name, rec, vehicle.dt, world.route[::10])
    (root / "splits.yaml").write_text("train: [a]\nval: [b]\ntest: [c]\n")
    return root


def test_recorded_drives_train_and_skip_the_closed_loop(drives: Path, tmp_path: Path) -> None:
    params = write_params(tmp_path, {"fast_lidarnet": "paper"},
                          sections={"fast_lidarnet": {"paper": _profile(drives)}})  # fmt: skip
    data, runs = tmp_path / "prepared", tmp_path / "runs"
    assert simulate.main(cli(params=params, out=data, checkpoints=tmp_path / "ck",
                             metrics=tmp_path / "data.json")) == 0  # fmt: skip
    arrays = np.load(data / "train.npz")
    log_rows = len((drives / "a" / "log.csv").read_text().splitlines()) - 1
    assert len(arrays["labels"]) == log_rows - 5  # the last `horizon` scans have no future labels
    # the labels are the logged commands, now and the next five
    logged = np.loadtxt(drives / "a" / "log.csv", delimiter=",", skiprows=1, usecols=5)
    np.testing.assert_allclose(arrays["labels"][3], logged[3:9], atol=1e-6)
    assert design.main(cli(params=params, data=data, out=runs / "design",
                           metrics=tmp_path / "design.json")) == 0  # fmt: skip
    assert train.main(cli(params=params, name="sparse3d", design=runs / "design", data=data,
                          out=runs / "sparse3d", checkpoints=tmp_path / "ck1",
                          metrics=tmp_path / "m.json", history=tmp_path / "h.csv")) == 0  # fmt: skip
    out = json.loads((tmp_path / "m.json").read_text())
    assert out["sparse3d/mae_now"] >= 0
    # two processes (gloo on CPU): the same stage under torchrun
    args = cli(
        params=params,
        name="resnet2d",
        data=data,
        out=runs / "resnet2d",
        checkpoints=tmp_path / "ck2",
        metrics=tmp_path / "m2.json",
        history=tmp_path / "h2.csv",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "common.launch", "--nproc", "2", "papers.fast_lidarnet.train", *args],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "m2.json").read_text())["resnet2d/mae_now"] >= 0
    assert drive.main(cli(params=params, models=runs, data=data, out=runs / "drive",
                          checkpoints=tmp_path / "ck3", metrics=tmp_path / "d.json")) == 0  # fmt: skip
    assert json.loads((tmp_path / "d.json").read_text())["drive/skipped"] == 1.0


def test_a_drive_without_its_log_is_one_clear_line(drives: Path, tmp_path: Path, capsys) -> None:
    broken = tmp_path / "drives"
    (broken / "a").mkdir(parents=True)
    (broken / "splits.yaml").write_text("train: [a]\nval: [a]\ntest: [a]\n")
    params = write_params(tmp_path, {"fast_lidarnet": "paper"},
                          sections={"fast_lidarnet": {"paper": _profile(broken)}})  # fmt: skip
    rc = simulate.main(cli(params=params, out=tmp_path / "o", checkpoints=tmp_path / "ck",
                           metrics=tmp_path / "m.json"))  # fmt: skip
    assert rc == 2
    assert "log.csv not found" in error_line(capsys)
