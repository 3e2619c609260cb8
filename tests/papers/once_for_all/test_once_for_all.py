"""Once-for-All's stages: config validation, the MobileNetV3 baseline, the report's derived
numbers and page, and the training stage end to end on a tiny fake ImageFolder (the paper
profile's data path: ImageNet is an ImageFolder)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest

from common.config import ConfigError, from_dict
from common.data.fixtures import write_fake_imagefolder
from common.ofa.efficiency import arch_macs
from common.report.spec import ReportData
from papers.once_for_all import report, train
from papers.once_for_all.config import OFAProfile
from papers.once_for_all.mobilenetv3 import family_space, mbv3_arch
from papers.once_for_all.report import derive
from papers.once_for_all.stage import load_supernet
from tests.params import repo_profiles, write_params

REPO = Path(__file__).resolve().parents[3]


def _smoke() -> dict:
    return repo_profiles("once_for_all")["smoke"]


def _profile(data: dict) -> OFAProfile:
    return from_dict(OFAProfile, data, file="params.yaml", prefix="smoke")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["phases"].pop("depth1"), "missing"),
        (lambda d: d["phases"]["kernel"].update(init="nope"), "phases.kernel.init"),
        (lambda d: d["phases"]["kernel"].update(kernel_sizes=[3, 9]), "phases.kernel"),
        (lambda d: d["phases"]["full"].update(distill=True), "teacher"),
        (lambda d: d["space"].update(act="gelu"), "act"),
        (lambda d: d["search"]["targets"]["mcu"].update(metric="flops"), "metric"),
        (lambda d: d["search"]["targets"]["latency"].update(limit=1.5), "fraction"),
        (lambda d: d["ablation"].update(seeds=[0]), "ablation.seeds"),
        (lambda d: d["ablation"].update(trend_scales=[0]), "ablation.trend_scales"),
        (lambda d: d["phases"]["kernel"].update(subnets_per_step=2), "nops.subnets_per_step"),
        (lambda d: d["budget"].update(full=0), "budget.full"),
        (lambda d: d["budget"].update(proportions={"full": 1}), "no share for phase"),
    ],
)
def test_bad_profiles_name_the_key(change, message: str) -> None:
    data = _smoke()
    change(data)
    with pytest.raises(ConfigError, match=message):
        _profile(data)


@pytest.mark.parametrize("name", ["smoke", "default", "paper"])
def test_each_profiles_schedule_matches_its_budget(name: str) -> None:
    cfg = _profile(repo_profiles("once_for_all")[name])
    lengths = cfg.lengths()
    passes = {p: ph.subnets_per_step for p, ph in cfg.phases.items()}
    ps = ("kernel", "depth1", "depth2", "expand1", "expand2")
    assert lengths["nops"] * passes["nops"] == sum(lengths[p] * passes[p] for p in ps)
    b = cfg.budget
    assert lengths["full"] == b.full
    for p in ps:  # the paper's proportions (the kernel phase absorbs the rounding remainder)
        share = b.full * b.proportions[p] / b.proportions["full"]
        assert abs(lengths[p] - share) <= (passes["nops"] if p == "kernel" else 0.5)
    for p in cfg.phases:  # the length a phase trains is the budget's, in its unit
        train = cfg.phase_train(p)
        assert (train.steps if b.unit == "steps" else train.epochs) == lengths[p]
    # MobileNetV3 from scratch as long as the full network
    assert cfg.scratch_train == cfg.phase_train("full")
    doubled = cfg.lengths(2.0)
    assert doubled["full"] == 2 * b.full
    assert cfg.phase_train("kernel", seed=7).seed == 7


def test_ablation_summary_is_mean_and_standard_error_over_seeds() -> None:
    from common.stats import mean_se
    from papers.once_for_all.ablation import summarise

    cfg = _profile(_smoke())

    def rep(scale: float, seed: int, gain: float) -> dict:
        grid = [
            {"name": f"d{d}_w{w}_k{k}", "ps": 80.0 + gain, "nops": 80.0, "gain": gain}
            for d in (2, 4)
            for w in (3, 6)
            for k in (3, 7)
        ]
        return {
            "scale": scale,
            "seed": seed,
            "grid": grid,
            "mean_gain": gain,
            "reference_gain": gain,
            "ofa_minus_scratch": -gain,
            "ofa_mbv3": 1.0,
            "scratch_mbv3": 1.0 + gain,
        }

    records = [rep(1.0, 0, 1.0), rep(1.0, 1, 2.0), rep(1.0, 2, 6.0), rep(0.5, 0, -1.0)]
    m = summarise(records, cfg)
    mean, se = mean_se([1.0, 2.0, 6.0])
    assert mean == pytest.approx(3.0) and se == pytest.approx((7.0 / 3.0) ** 0.5)
    assert m["ablation/mean_gain"] == pytest.approx(3.0)  # the 0.5x replicate is not in it
    assert m["ablation/mean_gain_se"] == pytest.approx(se)
    assert m["ablation/d4_w3_k3/gain_se"] == pytest.approx(se)
    assert m["ablation/seeds"] == 3 and m["ablation/ps_better_count"] == 8
    assert m["trend/x0.5/mean_gain"] == -1.0 and "trend/x0.5/mean_gain_se" not in m
    assert m["trend/x1/mean_gain"] == pytest.approx(3.0)
    assert m["ablation/reference_nops_accuracy"] == 80.0


def test_mobilenetv3_pattern_is_in_the_space_and_widths_scale() -> None:
    cfg = _profile(repo_profiles("once_for_all")["default"])
    arch = mbv3_arch(cfg.space)
    assert arch["d"] == [2, 3, 4, 2, 3]
    assert set(arch["ks"]) <= set(cfg.space.kernel_sizes)
    assert set(arch["e"]) <= set(cfg.space.expand_ratios)
    macs = [arch_macs(family_space(cfg.space, w), arch) for w in (0.75, 1.0, 1.25)]
    assert macs == sorted(macs) and len(set(macs)) == 3


def test_report_derives_comparisons_and_costs() -> None:
    cfg = _profile(_smoke())
    search = {
        "targets": {
            "mbv3_w1": {
                "matches_family": 1.0,
                "ofa_accuracy": 80.0,
                "finetuned_accuracy": 81.0,
                "search_seconds": 2.0,
            },
            "latency": {
                "matches_family": None,
                "ofa_accuracy": 70.0,
                "finetuned_accuracy": 69.0,
                "search_seconds": 4.0,
            },
        }
    }
    scratch = {
        "networks": {
            "mbv3_w1": {"accuracy": 78.0, "train_seconds": 100.0},
            "searched_mbv3_w1": {"accuracy": 79.5, "train_seconds": 60.0},
        }
    }
    m = {
        f"{p}/train_seconds": 50.0
        for p in ("full", "kernel", "depth1", "depth2", "expand1", "expand2")
    }
    m |= {"measure/seconds": 40.0, "predictor/fit_seconds": 5.0, "latency/build_seconds": 5.0}
    m |= {"time/train_full": 60.0, "time/search": 7.0}
    files = {"search": search, "scratch": scratch}
    d = derive(m, _report_data(cfg, m, files=files))
    assert not set(d) & set(m)  # derived numbers only, never a stage metric again
    assert d["compare/mbv3_w1/ofa_minus_mbv3"] == pytest.approx(2.0)
    assert d["compare/mbv3_w1/ofa_minus_scratch"] == pytest.approx(0.5)
    assert d["compare/max_best_minus_mbv3"] == pytest.approx(3.0)  # fine-tuned 81 vs 78
    assert d["compare/mean_finetune_gain"] == pytest.approx(0.0)  # +1 and -1
    once = 6 * 50.0 + 40 + 5 + 5
    assert d["cost/ofa_once_seconds"] == pytest.approx(once)
    assert d["cost/ratio_n40"] == pytest.approx(40 * 80.0 / (once + 40 * 3.0))
    assert d["cost/supernet_train_seconds"] == pytest.approx(6 * 50.0)
    assert d["time/total_stage_seconds"] == pytest.approx(67.0)
    # the paper's definition: training + the predictor's measurements, once; MobileNetV3 per target
    assert d["cost/paper_ratio_n40"] == pytest.approx(40 * 100.0 / (6 * 50.0 + 40 + 5))
    assert d["space/log10_subnets"] == pytest.approx(19.34, abs=0.01)
    assert "imagenet/ablation/reference_ps_accuracy" not in d  # colour digits: not comparable


def _report_data(cfg: OFAProfile, metrics: dict, runs: Path = Path("none"), **kw) -> ReportData:
    args = argparse.Namespace(runs=runs)
    return ReportData("once_for_all", "smoke", cfg, metrics, [], [], args, runs / "figures", **kw)


def test_report_derives_from_metrics_alone_when_the_search_has_not_run(tmp_path: Path) -> None:
    m = {"ablation/reference_gain": 1.0, "ablation/mean_gain": 2.0, "ablation/mean_gain_se": 0.75}
    d = derive(m, _report_data(_profile(_smoke()), {}, tmp_path))
    assert not any(k.startswith(("compare/", "cost/", "imagenet/")) for k in d)
    assert d["ablation/mean_gain_lcb2"] == pytest.approx(0.5)  # mean minus two standard errors
    assert "ablation/reference_gain_lcb2" not in d  # no standard error, no bound
    assert d["space/log10_subnets"] > 19


def test_report_stage_writes_derived_numbers_and_says_what_did_not_run(tmp_path: Path) -> None:
    params = write_params(tmp_path / "params", profile="smoke")
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "train_full.json").write_text(
        json.dumps({"full/train_images": 256.0, "time/a": 30.0})
    )
    (metrics / "predictor.json").write_text(json.dumps({"predictor/valid_rmse": 0.5}))
    argv = ["--params", str(params), "--claims", str(REPO / "papers/once_for_all/claims.yaml")]
    argv += ["--runs", str(tmp_path / "runs"), "--metrics-dir", str(metrics)]
    assert report.main([*argv, "--out", str(tmp_path / "out")]) == 0
    derived = json.loads((metrics / "derived.json").read_text())
    assert derived["time/total_stage_seconds"] == 30.0 and "space/log10_subnets" in derived
    page = (tmp_path / "out" / "README.md").read_text()
    for title in ("Training", "Progressive shrinking against", "Cortex-M7", "The cost"):
        assert f"## {title}" in page
    assert "_The ablation stage has not run._" in page and "not built" in page
    assert "_Not all stages have run._" in page and "256 training images" in page
    claims = json.loads((tmp_path / "out" / "claims.json").read_text())
    rmse = next(c for c in claims["claims"] if c["id"] == "text.predictor_rmse")
    assert rmse["ours"] == 0.5 and rmse["kind"] == "result"


def _tiny_imagefolder_params(tmp: Path) -> Path:
    return _tiny_imagefolder_profile(tmp)[0]


def _tiny_imagefolder_profile(tmp: Path) -> tuple[Path, OFAProfile]:
    """params.yaml of a tiny ImageFolder run (smoke settings, the paper profile's data path)
    and its profile."""
    root = write_fake_imagefolder(tmp / "imagefolder", classes=3, per_class=6, size=28)
    data = _smoke()
    data["space"].update(num_classes=3, resolution_range=[16, 24], resolution_step=8)
    data["data"].update(
        dataset="imagefolder",
        root=str(root),
        train_images=None,
        holdout_images=4,
        calibration_images=4,
        calibration_batch=4,
        test_images=None,
        channels_last=False,
    )
    for ph in data["phases"].values():
        ph["train"].update(batch_size=4, eval_batch_size=8)
    params = write_params(
        tmp, {"once_for_all": "paper"}, sections={"once_for_all": {"paper": data}}
    )
    return params, _profile(data)


@pytest.mark.slow
def test_training_phases_on_a_fake_imagefolder_and_resume(tmp_path: Path, capsys) -> None:
    params = _tiny_imagefolder_params(tmp_path)
    runs = tmp_path / "runs"

    def phase(name: str, *extra: str) -> int:
        return train.main(
            [
                "--params",
                str(params),
                "--phase",
                name,
                "--data",
                str(tmp_path),
                "--out",
                str(runs / name),
                "--checkpoints",
                str(tmp_path / "ck" / name),
                "--metrics",
                str(tmp_path / f"{name}.json"),
                "--history",
                str(tmp_path / f"{name}.csv"),
                *extra,
            ]
        )

    assert phase("full") == 0
    net, meta = load_supernet(runs / "full")
    assert meta["phase"] == "full" and net.config.num_classes == 3
    metrics = json.loads((tmp_path / "full.json").read_text())
    assert 0.0 <= metrics["full/max/holdout_accuracy"] <= 100.0
    # One MLflow run per phase, named as before the foreach stage (its params: the phase config).
    from common.tracking import list_runs

    run = next(r for r in list_runs("once_for_all") if r["run_name"] == "once_for_all_train@full")
    assert run["status"] == "FINISHED" and run["params"]["subnets_per_step"] == "1"
    assert run["metrics"]["full/train_images"] == metrics["full/train_images"]
    # A phase the profile does not have: one line naming the file and the phases it has.
    assert phase("bogus") == 2
    err = capsys.readouterr().err
    assert "papers/once_for_all/params.yaml: paper.phases has no 'bogus'" in err and "kernel" in err
    # Rerunning a finished phase resumes from its checkpoint instead of training again.
    assert phase("full") == 0
    assert "resuming from" in capsys.readouterr().out
    # A later phase needs the previous phase and the teacher; without them: one clear error.
    assert phase("kernel") == 2
    assert "pass --init" in capsys.readouterr().err
    assert phase("kernel", "--init", str(runs / "full"), "--teacher", str(runs / "full")) == 0
    assert load_supernet(runs / "kernel")[1]["phase"] == "kernel"
    # Starting from the wrong phase is refused.
    assert phase("depth1", "--init", str(runs / "full"), "--teacher", str(runs / "full")) == 2
    assert "starts from" in capsys.readouterr().err


def test_mcu_minstr_targets_use_the_mcu_instruction_table() -> None:
    from common.ofa.efficiency import random_archs
    from common.ofa.mcu_cost import McuInstructionTable, arch_signatures
    from papers.once_for_all.search import efficiency_fn

    cfg = _profile(_smoke())
    assert cfg.search.targets["mcu_instructions"].metric == "mcu_minstr"
    archs = random_archs(cfg.space, 4, seed=0)
    entries = {
        sig: {"instructions": 2.0 * work, "work": work, "n": 1, "min": 0, "max": 0}
        for a in archs
        for sig, work in arch_signatures(cfg.space, a)
    }
    mcu = McuInstructionTable(cfg.space, entries, other=10.0)
    cost = efficiency_fn("mcu_minstr", cfg.space, None, mcu)
    for a in archs:
        expected = (10.0 + sum(2.0 * w for _, w in arch_signatures(cfg.space, a))) / 1e6
        assert cost(a) == pytest.approx(expected)
    with pytest.raises(ValueError, match="unknown metric"):
        efficiency_fn("flops", cfg.space, None, mcu)


def test_report_shows_the_mcu_table_validation_from_its_outputs() -> None:
    from common.ofa.mcu_cost import McuInstructionTable
    from papers.once_for_all.report import mcu_table_section

    arch = {"ks": [3] * 20, "e": [3] * 20, "d": [2, 3, 4, 2, 3], "r": 24}
    cfg = _profile(_smoke())
    meta = {
        "validation": {
            "rows": [
                {
                    "arch": arch,
                    "predicted": 4_321_000.0,
                    "measured": 4_300_000,
                    "rel_error": 0.488,
                    "missing_ops": 3,
                    "ops": 60,
                }
            ]
        },
        "measurements": {"build": [{}, {}]},
    }
    mt = McuInstructionTable(cfg.space, {}, clock_hz=216_000_000, meta=meta).to_dict()
    m = {
        "mcu_table/entries": 123.0,
        "mcu_table/validate_archs": 1.0,
        "mcu_table/mean_rel_error": 0.488,
        "mcu_table/max_rel_error": 0.488,
        "mcu_table/fallback_fraction": 0.05,
    }
    text = mcu_table_section(mt, m)
    assert "| 0 | 24 | 2-3-4-2-3 | 4.321 | 4.300 | 0.49 | 3 / 60 | 19.9 |" in text
    assert "built from 2 sub-networks" in text and "123 operator entries" in text
    assert "5% of their operators" in text and "*estimate*" in text
    assert "not built" in mcu_table_section(None, {})


def test_mcu_table_stage_without_the_toolchain_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from common.mcu import toolchain
    from papers.once_for_all import mcu_table

    monkeypatch.setattr(toolchain, "have", lambda tool: False)
    argv = ["--params", str(REPO / "params.yaml"), "--supernet", str(tmp_path / "none")]
    argv += ["--data", str(tmp_path), "--out", str(tmp_path / "t.json")]
    assert mcu_table.main([*argv, "--metrics", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert "missing microcontroller toolchain" in err and toolchain.INSTALL_COMMAND in err
    assert not (tmp_path / "t.json").exists()


@pytest.mark.parametrize("broken", ["latency", "mcu-table"])
@pytest.mark.parametrize("how", ["missing", "corrupt"])
def test_search_with_a_missing_or_corrupt_table_names_its_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], broken: str, how: str
) -> None:
    from common.ofa import OFAMobileNetV3Config
    from common.ofa.efficiency import LatencyTable
    from papers.once_for_all import search

    tables = {"latency": tmp_path / "latency.json", "mcu-table": tmp_path / "mcu.json"}
    LatencyTable(OFAMobileNetV3Config(), (24,), {}).save(tables["latency"])
    tables["mcu-table"].write_text(
        json.dumps({"config": OFAMobileNetV3Config().to_dict(), "entries": {}})
    )
    if how == "missing":
        tables[broken].unlink()
    else:
        tables[broken].write_text('{"config": {"wid')
    argv = ["--params", str(REPO / "params.yaml"), "--supernet", str(tmp_path / "none")]
    argv += ["--predictor", str(tmp_path / "none"), "--data", str(tmp_path / "none")]
    argv += ["--latency", str(tables["latency"]), "--mcu-table", str(tables["mcu-table"])]
    argv += ["--out", str(tmp_path / "out"), "--checkpoints", str(tmp_path / "ck")]
    assert search.main([*argv, "--metrics", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    stage = {"latency": "once_for_all_latency_table", "mcu-table": "once_for_all_mcu_table"}
    assert str(tables[broken]) in err and f"dvc repro {stage[broken]}" in err
    assert not (tmp_path / "out").exists()


def test_stage_seconds_count_resumed_work_at_its_recorded_time(monkeypatch) -> None:
    """A clean run reports its wall time; a resumed run adds the recorded seconds of the work it
    did not redo (never less than its own wall time)."""
    from papers.once_for_all import stage

    monkeypatch.setattr(stage.time, "perf_counter", lambda: 110.0)
    assert stage.stage_seconds(100.0, recorded=8.0, spent=8.0) == 10.0  # ran it all itself
    assert stage.stage_seconds(100.0, recorded=200.0, spent=5.0) == 205.0  # resumed 195 s
    assert stage.stage_seconds(100.0, recorded=3.0, spent=5.0) == 10.0  # recorded < spent


@pytest.mark.slow
def test_ablation_replicates_measure_the_mechanism_and_resume_after_a_kill(
    tmp_path: Path, capsys
) -> None:
    from common.config import to_dict
    from common.ofa import OFAMobileNetV3Config
    from common.ofa.supernet import build_static_subnet, subnet_spec
    from common.ofa.training import ResizeInput
    from common.train import evaluate_classifier
    from papers.once_for_all import ablation
    from papers.once_for_all.stage import load_splits, loader, save_subnet

    params, cfg = _tiny_imagefolder_profile(tmp_path)
    runs = tmp_path / "runs"
    chain = {
        "full": None,
        "kernel": "full",
        "depth1": "kernel",
        "depth2": "depth1",
        "expand1": "depth2",
        "expand2": "expand1",
        "nops": "full",
    }
    for name, init in chain.items():
        argv = ["--params", str(params), "--phase", name, "--data", str(tmp_path)]
        argv += ["--out", str(runs / name), "--checkpoints", str(tmp_path / "ck" / name)]
        argv += ["--metrics", str(tmp_path / f"{name}.json")]
        argv += ["--history", str(tmp_path / f"{name}.csv")]
        if init:
            argv += ["--init", str(runs / init), "--teacher", str(runs / "full")]
        assert train.main(argv) == 0
    out = tmp_path / "ablation.json"
    argv = ["--params", str(params), "--data", str(tmp_path), "--out", str(out)]
    for flag, name in (("full", "full"), ("kernel", "kernel"), ("supernet", "expand2")):
        argv += [f"--{flag}", str(runs / name)]
    argv += ["--nops", str(runs / "nops"), "--checkpoints", str(tmp_path / "ck" / "ablation")]
    argv += ["--metrics", str(tmp_path / "ablation_metrics.json")]
    # the scratch stage's MobileNetV3-pattern network (here: untrained) with the full network's
    # settings is the profile seed's from-scratch baseline: read, not trained again
    space = OFAMobileNetV3Config.from_dict({**cfg.space.to_dict(), "num_classes": 3})
    mb = mbv3_arch(space)
    scratch_net = build_static_subnet(subnet_spec(space, mb))
    save_subnet(
        scratch_net,
        tmp_path / "scratch" / "mbv3_w1",
        space,
        mb,
        trained="from scratch",
        train_config=to_dict(cfg.phase_train("full")),
    )
    test = loader(load_splits(cfg, tmp_path).test, 8)
    untrained = evaluate_classifier(ResizeInput(scratch_net.eval(), int(mb["r"])), test)
    argv += ["--scratch", str(tmp_path / "scratch")]
    assert ablation.main(argv) == 0
    first = json.loads(out.read_text())
    reps = {(r["scale"], r["seed"]): r for r in first["replicates"]}
    assert reps[(1.0, 0)]["scratch_mbv3"] == pytest.approx(untrained["accuracy"])
    assert not (tmp_path / "ck" / "ablation" / "x1_s0" / "scratch_mbv3").exists()
    assert (tmp_path / "ck" / "ablation" / "x1_s1" / "scratch_mbv3").is_dir()  # other seeds train
    assert set(reps) == {(1.0, 0), (1.0, 1), (0.5, 0)}  # smoke: seeds 0, 1 and a half budget
    assert "interference" in reps[(1.0, 1)] and "interference" not in reps[(0.5, 0)]
    kernel = reps[(1.0, 0)]["interference"]["kernel"]
    assert set(kernel) == {f"k{k}_{s}" for k in (3, 5, 7) for s in ("transform", "plain", "gain")}
    assert first["lengths"]["x0.5"]["full"] == 2 and first["lengths"]["x1"]["full"] == 4
    metrics = json.loads((tmp_path / "ablation_metrics.json").read_text())
    assert metrics["ablation/seeds"] == 2 and "ablation/mean_gain_se" in metrics
    assert "trend/x0.5/mean_gain" in metrics and "interference/alone" in metrics
    capsys.readouterr()
    # A rerun finds every replicate recorded: nothing is trained or measured again.
    assert ablation.main(argv) == 0
    assert "mean PS gain" not in capsys.readouterr().out
    # Killed after the first replicate was recorded: that one is kept as it was, the others are
    # redone from their phases' checkpoints (no phase trains again) and measure the same (the
    # BN-calibration images pass the evaluation transform: the same pixels in every process).
    log = tmp_path / "ck" / "ablation" / "replicates.jsonl"
    kept = json.loads(log.read_text().splitlines()[1])
    log.write_text("\n".join(log.read_text().splitlines()[:2]) + "\n")
    assert ablation.main(argv) == 0
    rerun = capsys.readouterr().out
    assert "resuming from" in rerun and "set aside" not in rerun
    again = {(r["scale"], r["seed"]): r for r in json.loads(out.read_text())["replicates"]}
    assert set(again) == set(reps) and again[(kept["scale"], kept["seed"])] == kept

    def measured(r: dict) -> dict:
        return {k: v for k, v in r.items() if k != "seconds"}

    assert {k: measured(r) for k, r in again.items()} == {k: measured(r) for k, r in reps.items()}


def test_predictor_size_curve_scores_every_size_on_the_main_fits_held_out_set() -> None:
    from common.ofa.efficiency import random_archs
    from common.ofa.predictor import ArchEncoder
    from papers.once_for_all.predictor import fit_records, size_curve

    cfg = _profile(_smoke())
    archs = random_archs(cfg.space, 60, seed=3)
    # a learnable accuracy: larger kernels and more blocks are better
    records = [{"arch": a, "accuracy": 50.0 + sum(a["ks"]) / 4 + 2.0 * sum(a["d"])} for a in archs]
    enc = ArchEncoder(cfg.space, cfg.space.resolution_choices())
    pc = dataclasses.replace(cfg.predictor, hidden=64, layers=2, epochs=150, weight_decay=0.0)
    curve = size_curve(enc, records, pc, seed=0)
    sizes = [c["n_train"] for c in curve]
    assert sizes == sorted(sizes) and len(sizes) >= 3
    _, main_fit = fit_records(enc, records, pc, valid_fraction=pc.valid_fraction, seed=0)
    # the largest size is the main fit itself (same held-out set, same training records)
    assert sizes[-1] == main_fit.n_train
    assert curve[-1]["valid_rmse"] == pytest.approx(main_fit.valid_rmse, rel=1e-5)
    assert curve[-1]["valid_rmse"] < curve[-1]["mean_baseline_rmse"]


def test_a_test_subset_is_fixed_by_its_seed_and_keeps_the_order() -> None:
    import torch

    from common.data import ArrayDataset
    from papers.once_for_all.stage import subset

    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 1, 2, 2).clone()
    ds = ArrayDataset(images, torch.arange(40) % 4, mean=[0.5], std=[0.5], num_classes=4)
    rows = [subset(ds, 10, seed).images[:, 0, 0, 0].tolist() for seed in (0, 0, 1)]
    assert rows[0] == rows[1] and rows[0] != rows[2]  # fixed by the seed
    assert len(rows[0]) == 10 and rows[0] == sorted(rows[0])  # a subset, in the original order
    assert subset(ds, None, 0) is ds and subset(ds, 40, 0) is ds
