"""Fast-LiDARNet's stages end to end at the smoke profile, in a temporary folder: the simulated
dataset, the hardware-aware design, the kernel benchmark, the three networks, efficiency, the
closed-loop drives and the report; and the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from papers.fast_lidarnet import design, drive, efficiency, kernels, report, simulate, train
from tests.params import write_params
from tests.stage_cli import cli, error_line

MODELS = ("sparse3d", "resnet2d", "dense3d")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fast_lidarnet")
    params = write_params(root, profile="smoke")
    runs, metrics, ck = root / "runs", root / "metrics", root / "ck"
    data = runs / "data"
    assert simulate.main(cli(params=params, out=data, checkpoints=ck / "data",
                             metrics=metrics / "data.json")) == 0  # fmt: skip
    assert design.main(cli(params=params, data=data, out=runs / "design",
                           metrics=metrics / "design.json")) == 0  # fmt: skip
    assert kernels.main(cli(params=params, data=data, metrics=metrics / "kernels.json")) == 0
    for name in MODELS:
        extra = {"design": runs / "design"} if name == "sparse3d" else {}
        assert train.main(cli(params=params, name=name, **extra, data=data,
                              out=runs / "train" / name, checkpoints=ck / name,
                              metrics=metrics / f"train_{name}.json",
                              history=metrics / f"train_{name}_history.csv")) == 0  # fmt: skip
    assert efficiency.main(cli(params=params, models=runs / "train", data=data,
                               metrics=metrics / "efficiency.json")) == 0  # fmt: skip
    assert drive.main(cli(params=params, models=runs / "train", data=data, out=runs / "drive",
                          checkpoints=ck / "drive", metrics=metrics / "drive.json")) == 0  # fmt: skip
    assert report.main(cli(params=params, claims=Path(report.__file__).with_name("claims.yaml"),
                           metrics_dir=metrics, runs=runs, out=root / "report")) == 0  # fmt: skip
    return root


def test_every_stage_and_the_report_at_the_smoke_profile(smoke_run: Path) -> None:
    m = {}
    for f in (smoke_run / "metrics").glob("*.json"):
        m.update(json.loads(f.read_text()))
    meta = json.loads((smoke_run / "runs" / "data" / "meta.json").read_text())
    assert all(meta["frames"][s] > 0 for s in ("train", "val", "test"))
    for name in MODELS:
        assert m[f"{name}/gmacs"] > 0 and m[f"{name}/latency_ms"] > 0
        assert m[f"{name}/mae_now"] >= 0
    assert m["ratio/latency_naive_kernels"] > 0
    for fusion in ("none", "average", "evidential"):
        assert m[f"drive/sparse3d/blackout/{fusion}/km"] > 0
    page = (smoke_run / "report" / "README.md").read_text()
    assert "Closed loop" in page and "What is reconstructed" in page
    claims = json.loads((smoke_run / "report" / "claims.json").read_text())
    assert claims["paper"] == "fast_lidarnet"
    assert (smoke_run / "report" / "figures" / "scene.png").is_file()


def test_the_drive_stage_resumes_from_its_finished_runs(smoke_run: Path) -> None:
    # Every run of the first drive was kept: a second start reads them instead of driving again.
    params = smoke_run / "params.yaml"
    runs, ck = smoke_run / "runs", smoke_run / "ck"
    before = sorted(p.name for p in (ck / "drive").glob("*.json"))
    assert before
    out = smoke_run / "drive2.json"
    assert drive.main(cli(params=params, models=runs / "train", data=runs / "data",
                          out=smoke_run / "drive2", checkpoints=ck / "drive", metrics=out)) == 0  # fmt: skip
    first = json.loads((smoke_run / "metrics" / "drive.json").read_text())
    again = json.loads(out.read_text())
    assert {k: v for k, v in again.items() if not k.startswith("time/")} == {
        k: v for k, v in first.items() if not k.startswith("time/")
    }
    assert sorted(p.name for p in (ck / "drive").glob("*.json")) == before


def test_missing_data_is_one_clear_line(tmp_path: Path, capsys) -> None:
    params = write_params(tmp_path, profile="smoke")
    rc = train.main(cli(params=params, name="resnet2d", data=tmp_path / "nothing",
                        out=tmp_path / "o", checkpoints=tmp_path / "c", metrics=tmp_path / "m.json",
                        history=tmp_path / "h.csv"))  # fmt: skip
    assert rc == 2
    assert "fast_lidarnet_data" in error_line(capsys)


def test_an_unknown_model_is_one_clear_line(tmp_path: Path, capsys) -> None:
    params = write_params(tmp_path, profile="smoke")
    rc = train.main(cli(params=params, name="nope", data=tmp_path, out=tmp_path / "o",
                        checkpoints=tmp_path / "c", metrics=tmp_path / "m.json",
                        history=tmp_path / "h.csv"))  # fmt: skip
    assert rc == 2
    assert "has no 'nope'" in error_line(capsys)


def test_a_corrupt_split_is_one_clear_line(tmp_path: Path, capsys) -> None:
    params = write_params(tmp_path, profile="smoke")
    data = tmp_path / "prepared"
    data.mkdir()
    (data / "train.npz").write_bytes(b"not a zip")
    rc = train.main(cli(params=params, name="resnet2d", data=data, out=tmp_path / "o",
                        checkpoints=tmp_path / "c", metrics=tmp_path / "m.json",
                        history=tmp_path / "h.csv"))  # fmt: skip
    assert rc == 2
    assert "rerun the data stage" in error_line(capsys)


def test_a_profile_without_a_model_family_is_one_clear_line(tmp_path: Path, capsys) -> None:
    from tests.params import repo_profiles

    profiles = repo_profiles("fast_lidarnet")
    smoke = profiles["smoke"]
    smoke["models"] = {k: v for k, v in smoke["models"].items() if k != "dense3d"}
    params = write_params(tmp_path, profile="smoke", sections={"fast_lidarnet": profiles})
    rc = design.main(cli(params=params, data=tmp_path, out=tmp_path / "o",
                         metrics=tmp_path / "m.json"))  # fmt: skip
    assert rc == 2
    line = error_line(capsys)
    assert "missing dense3d" in line and "Fix:" in line
