"""The paper-profile ImageNet stage, run on a tiny fake ImageFolder with a random AlexNet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.data.fixtures import write_fake_imagefolder
from papers.deep_compression import imagenet
from tests.params import repo_profiles, write_params


@pytest.mark.slow
def test_alexnet_row_runs_end_to_end_on_a_fake_imagefolder(tmp_path: Path) -> None:
    paper = repo_profiles("deep_compression")["paper"]
    cfg = paper["imagenet"]["alexnet"]
    tiny_train = {
        "epochs": 1,
        "batch_size": 4,
        "optimizer": {"name": "sgd", "lr": 0.001, "momentum": 0.9},
        "device": "cpu",
    }
    cfg.update(
        weights=None,  # nothing to download: a random AlexNet exercises the same code
        resolution=64,
        steps=1,
        retrain=tiny_train,
        finetune=tiny_train,
        quantization={"conv_bits": 8, "fc_bits": 5, "max_iter": 2},
    )
    params = write_params(
        tmp_path / "params",
        profile={"deep_compression": "paper"},
        sections={"deep_compression": {"paper": paper}},
    )
    root = write_fake_imagefolder(tmp_path / "imagenet", classes=3, per_class=4, size=72)
    out = tmp_path / "out"
    rc = imagenet.main(
        [
            "--params",
            str(params),
            "--name",
            "alexnet",
            "--data",
            str(root),
            "--out",
            str(out),
            "--checkpoints",
            str(tmp_path / "ckpt"),
            "--metrics",
            str(tmp_path / "m.json"),
        ]
    )
    assert rc == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["alexnet/imagenet/original_mb"] == pytest.approx(4 * 61_100_840 / 1e6, rel=1e-3)
    assert metrics["alexnet/imagenet/size_mb"] == pytest.approx(
        (out / "model.dcmp").stat().st_size / 1e6
    )
    assert metrics["alexnet/imagenet/rate"] > 20  # 9% of weights kept at 5-8 bits
    storage = json.loads((out / "storage.json").read_text())
    kept = {r["layer"]: r["kept_pct"] for r in storage["rows"]}
    assert kept["features.0"] == pytest.approx(84, abs=0.5) and kept[
        "classifier.1"
    ] == pytest.approx(9, abs=0.5)
