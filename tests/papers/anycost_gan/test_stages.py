"""Anycost GAN's stages end to end at the smoke profile on a tiny fake colour-digit set, in a
temporary folder: features, every training phase (from nothing, fine-tuned, distilled), the
evaluation grid, latency and previews, the search, the projection and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from papers.anycost_gan import (
    evaluate,
    latency,
    prepare_data,
    preview,
    project,
    report,
    search,
    train,
    train_features,
)
from tests.params import write_params
from tests.stage_cli import cli, error_line

INIT = {"single_ft": "single", "multires": "single", "allres": "single", "nodistill": "multires",
        "anycost": "multires", "nocond": "multires"}  # fmt: skip
TEACHER = {"anycost": "multires", "nocond": "multires"}
# one phase of each kind (from nothing, fine-tuned, distilled, fine-tuned without a teacher); CI's
# smoke reproduction runs every phase through dvc.yaml
RUN = ("single", "multires", "anycost", "nodistill")


@pytest.fixture
def colour_digits(tmp_path: Path, prepared_fake_mnist: Path) -> Path:
    """The data stage's colour digits (MNIST-M's recipe) from the fake MNIST."""
    out = tmp_path / "colour_digits"
    params = write_params(tmp_path, profile="smoke")
    rc = prepare_data.main(cli(params=params, data=prepared_fake_mnist, out=out,
                               metrics=tmp_path / "data.json"))  # fmt: skip
    assert rc == 0
    assert (out / "samples.png").is_file()
    return out


def test_every_stage_and_the_report_at_the_smoke_profile(
    tmp_path: Path, colour_digits: Path
) -> None:
    params = write_params(tmp_path, profile="smoke")
    runs, metrics = tmp_path / "runs", tmp_path / "metrics"
    common = {"params": params, "data": colour_digits}
    assert train_features.main(cli(**common, out=runs / "features", checkpoints=tmp_path / "ck" / "f",
                                   metrics=metrics / "features.json",
                                   history=metrics / "features_history.csv")) == 0  # fmt: skip
    for phase in RUN:
        extra = {}
        if phase in INIT:
            extra["init"] = runs / INIT[phase]
        if phase in TEACHER:
            extra["teacher"] = runs / TEACHER[phase]
        rc = train.main(cli(**common, phase=phase, **extra, features=runs / "features",
                            out=runs / phase, checkpoints=tmp_path / "ck" / phase,
                            metrics=metrics / f"train_{phase}.json",
                            history=metrics / f"train_{phase}_history.csv"))  # fmt: skip
        assert rc == 0, phase
        assert (runs / phase / "ema.safetensors").is_file()
        rc = evaluate.main(cli(**common, phase=phase, run=runs / phase, features=runs / "features",
                               out=runs / "eval" / phase, metrics=metrics / f"eval_{phase}.json"))  # fmt: skip
        assert rc == 0, phase
    values = json.loads((metrics / "eval_anycost.json").read_text())
    # the adaptive-channel phase is evaluated at every ratio and resolution
    assert {"anycost/fid@0.25x8", "anycost/fid@1x32", "anycost/class_agree@0.5x16"} <= set(values)
    assert all(v >= 0 for k, v in values.items() if "/fid@" in k)
    single = json.loads((metrics / "eval_single.json").read_text())
    assert "single/fid@0.5x32" not in single  # no adaptive channels: the full generator only
    assert latency.main(cli(params=params, run=runs / "anycost", out=runs / "latency",
                            metrics=metrics / "latency.json")) == 0  # fmt: skip
    lat = json.loads((metrics / "latency.json").read_text())
    assert lat["latency/macs@1x32"] > lat["latency/macs@0.5x32"] > lat["latency/macs@0.25x8"]
    assert (runs / "latency" / "preview_seed0.png").is_file()
    assert search.main(cli(params=params, run=runs / "anycost", features=runs / "features",
                           out=runs / "search", metrics=metrics / "search.json")) == 0  # fmt: skip
    found = json.loads((runs / "search" / "search.json").read_text())["searched"][0]
    assert found["macs"] <= found["limit_macs"]
    assert project.main(cli(**common, run=runs / "anycost", features=runs / "features",
                            out=runs / "projection", metrics=metrics / "projection.json")) == 0  # fmt: skip
    out = tmp_path / "report"
    claims = Path(train.__file__).with_name("claims.yaml")
    assert (
        report.main(cli(params=params, claims=claims, metrics_dir=metrics, runs=runs, out=out)) == 0
    )
    page = (out / "README.md").read_text()
    assert "Ablations" in page and "Budgeted search" in page
    assert (out / "figures" / "samples_anycost.png").is_file()
    records = {c["id"]: c for c in json.loads((out / "claims.json").read_text())["claims"]}
    assert records["macs.full"]["ours"] == pytest.approx(143.0, abs=0.1)
    assert records["ffhq.fid256"]["ours"] is None  # the paper profile's


def test_a_phase_needs_the_init_its_params_name(
    tmp_path: Path, colour_digits: Path, capsys
) -> None:
    params = write_params(tmp_path, profile="smoke")
    rc = train.main(cli(params=params, data=colour_digits, phase="multires", features=tmp_path,
                        out=tmp_path / "o", checkpoints=tmp_path / "c", metrics=tmp_path / "m.json",
                        history=tmp_path / "h.csv"))  # fmt: skip
    assert rc == 2
    assert "--init" in error_line(capsys)


def test_preview_without_a_generator_is_one_line(tmp_path: Path, capsys) -> None:
    assert preview.main(["--generator", str(tmp_path / "none.safetensors")]) == 2
    assert "not found" in error_line(capsys)


def test_the_digit_feature_network_without_its_folder_names_the_flag() -> None:
    from common.errors import InputError
    from papers.anycost_gan.config import FeaturesConfig
    from papers.anycost_gan.features import feature_network

    with pytest.raises(InputError, match="--features runs/anycost_gan/features"):
        feature_network(FeaturesConfig(kind="digits"), None)


def test_asking_for_more_images_than_the_data_stage_generates_is_one_line(
    tmp_path: Path, prepared_fake_mnist: Path, capsys
) -> None:
    from tests.params import repo_profiles

    smoke = repo_profiles("anycost_gan")["smoke"]
    smoke["data"]["train_images"] = smoke["data"]["digits"]["n_train"] + 1
    params = write_params(tmp_path, sections={"anycost_gan": {"smoke": smoke}},
                          profile="smoke")  # fmt: skip
    rc = prepare_data.main(cli(params=params, data=prepared_fake_mnist, out=tmp_path / "d",
                               metrics=tmp_path / "m.json"))  # fmt: skip
    assert rc == 2
    assert "data.digits.n_train" in error_line(capsys)


def test_effective_classes_is_ten_for_every_digit_and_one_for_a_collapse() -> None:
    import torch

    every = torch.eye(10).repeat(5, 1)  # every digit five times
    assert evaluate.effective_classes(every) == pytest.approx(10.0)
    assert evaluate.effective_classes(every[:1].repeat(50, 1)) == pytest.approx(1.0)
    two = torch.cat([every[:1].repeat(30, 1), every[1:2].repeat(10, 1)])
    assert 1.0 < evaluate.effective_classes(two) < 2.0


def test_the_search_space_holds_every_uniform_sub_generator() -> None:
    """The search starts from the uniform sub-generators (config-F's cap rule), so what it finds
    is never further from the full output than the best uniform one within the budget."""
    from papers.anycost_gan import channels as ch

    kw = {"multiplier": 0.0625, "cap": 64}
    space = search.FlexibleSpace(32, [32, 16], **kw)
    got = {(tuple(space.widths(c)), c[1]) for c in space.uniform()}
    want = {(tuple(ch.uniform(32, q, **kw)), r) for q in ch.RATIOS for r in (32, 16)}
    assert got == want
