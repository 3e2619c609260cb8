"""The ``paper`` profile's machinery on a tiny fake FFHQ: a nested folder of PNG images,
Inception-v3 features from a weights file (random weights: the real ones cannot be downloaded
here), the three-stage chain with distillation through Inception's activations, the evaluation
and the report, and one phase under a two-process ``torchrun``. Only the sizes are shrunk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from papers.anycost_gan import evaluate, prepare_data, report, train, train_features
from tests.params import REPO, repo_profiles, write_params
from tests.stage_cli import cli


def _profile(images: Path, weights: Path) -> dict:
    paper = json.loads(json.dumps(repo_profiles("anycost_gan")["paper"]))
    paper["data"].update(root=str(images), eval_images=8)
    paper["generator"].update(size=16, multiplier=0.01)  # config-F's table, tiny widths
    paper["features"]["weights"] = str(weights)
    for phase in paper["phases"].values():
        phase["train"].update(steps=2, batch_size=4, checkpoint_every=0)
        phase["adversarial"]["latent_dim"] = 512
        if phase["anycost"]["n_res"] > 1:
            phase["anycost"]["n_res"] = 2
    paper["evaluate"].update(
        samples=8, batch=4, kid_subsets=2, kid_subset_size=4, device="cpu", ratios=[0.25, 1.0]
    )
    paper["latency"].update(config_f=[], repeats=1, warmup=0)
    paper["search"].update(samples=2, population=4, generations=2, budgets=[0.5])
    paper["projection"].update(images=2, steps=2)
    return paper


@pytest.fixture(scope="module")
def paper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image
    from torchvision.models import inception_v3

    root = tmp_path_factory.mktemp("anycost_paper")
    rng = np.random.default_rng(0)
    for i in range(10):  # FFHQ's layout: images1024x1024/00000/00000.png, ...
        folder = root / "ffhq" / f"{i // 5:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(
            folder / f"{i:05d}.png"
        )
    torch.manual_seed(0)
    torch.save(inception_v3(weights=None, aux_logits=False, init_weights=True).state_dict(),
               root / "inception.pth")  # fmt: skip
    write_params(root, {"anycost_gan": "paper"},
                 sections={"anycost_gan": {"paper": _profile(root / "ffhq", root / "inception.pth")}})  # fmt: skip
    return root


def _train_args(root: Path, phase: str, **extra: Path) -> list[str]:
    return cli(params=root / "params.yaml", data=root / "unused", phase=phase, **extra,
               features=root / "runs" / "features", out=root / "runs" / phase,
               checkpoints=root / "ck" / phase, metrics=root / "metrics" / f"train_{phase}.json",
               history=root / "metrics" / f"train_{phase}_history.csv")  # fmt: skip


def test_the_paper_chain_runs_on_a_fake_image_folder(paper_dir: Path) -> None:
    root, runs, metrics = paper_dir, paper_dir / "runs", paper_dir / "metrics"
    # the data stage has nothing to generate for an image folder: it records the folder
    assert prepare_data.main(cli(params=root / "params.yaml", data=root / "unused",
                                 out=runs / "data", metrics=metrics / "data.json")) == 0  # fmt: skip
    assert json.loads((runs / "data" / "config.json").read_text())["config"]["dataset"] == "folder"
    assert train_features.main(cli(params=root / "params.yaml", data=root / "unused",
                                   out=runs / "features", checkpoints=root / "ck" / "f",
                                   metrics=metrics / "features.json",
                                   history=metrics / "features_history.csv")) == 0  # fmt: skip
    assert train.main(_train_args(root, "single")) == 0
    assert train.main(_train_args(root, "multires", init=runs / "single")) == 0
    assert (
        train.main(_train_args(root, "anycost", init=runs / "multires", teacher=runs / "multires"))
        == 0
    )
    assert evaluate.main(cli(params=root / "params.yaml", data=root / "unused", phase="anycost",
                             run=runs / "anycost", features=runs / "features",
                             out=runs / "eval" / "anycost", metrics=metrics / "eval_anycost.json")) == 0  # fmt: skip
    values = json.loads((metrics / "eval_anycost.json").read_text())
    assert {"anycost/fid@1x16", "anycost/fid@0.25x8", "anycost/kid@0.25x16"} <= set(values)
    out = root / "report"
    claims = Path(train.__file__).with_name("claims.yaml")
    assert report.main(cli(params=root / "params.yaml", claims=claims, metrics_dir=metrics,
                           runs=runs, out=out)) == 0  # fmt: skip
    assert json.loads((out / "claims.json").read_text())["paper"] == "anycost_gan"
    assert "Quality, consistency and cost" in (out / "README.md").read_text()


def test_a_corrupt_image_or_weights_file_is_one_line(
    paper_dir: Path, tmp_path: Path, capsys
) -> None:
    bad = tmp_path / "weights.pth"
    bad.write_bytes(b"not a checkpoint")
    params = json.loads(json.dumps(_profile(paper_dir / "ffhq", bad)))
    write_params(tmp_path, {"anycost_gan": "paper"}, sections={"anycost_gan": {"paper": params}})
    rc = train_features.main(cli(params=tmp_path / "params.yaml", data=tmp_path, out=tmp_path / "o",
                                 checkpoints=tmp_path / "c", metrics=tmp_path / "m.json",
                                 history=tmp_path / "h.csv"))  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "weights.pth" in err


def test_a_phase_trains_under_two_process_torchrun(paper_dir: Path) -> None:
    root = paper_dir
    if not (root / "runs" / "features").is_dir():
        assert train_features.main(cli(params=root / "params.yaml", data=root / "unused",
                                       out=root / "runs" / "features", checkpoints=root / "ck" / "f",
                                       metrics=root / "metrics" / "features.json",
                                       history=root / "metrics" / "features_history.csv")) == 0  # fmt: skip
    args = _train_args(root, "single")
    args = [a.replace(str(root / "runs" / "single"), str(root / "ddp")) for a in args]
    args[args.index("--metrics") + 1] = str(root / "ddp.json")
    args[args.index("--checkpoints") + 1] = str(root / "ck" / "ddp")
    proc = subprocess.run(
        [sys.executable, "-m", "common.launch", "--nproc", "2", "papers.anycost_gan.train", *args],
        cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (root / "ddp" / "ema.safetensors").is_file()
    assert json.loads((root / "ddp.json").read_text())["single/steps"] == 2
