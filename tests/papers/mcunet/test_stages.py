"""The MCUNet stages through their command lines: one tiny network trained, deployed, ablated and
reported on fake colour digits, and the one-line errors for bad names, missing inputs and a
missing toolchain."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from common.checkpoint import CheckpointError
from common.data.prepare import ColourDigitsConfig, prepare_colour_digits
from common.io import read_metrics
from common.mcu import toolchain
from common.mcu.toolchain import ToolchainMissingError
from common.report.claims import load_claims_file
from common.tinynas.search import HoldoutAccuracy
from common.tracking import list_runs
from papers.mcunet import (
    ablation,
    codesign,
    deploy,
    fuzz,
    patch,
    report,
    space,
    space_ablation,
    table2,
    table3,
    tinynas,
    train,
)
from tests.params import REPO, repo_profiles, write_params
from tests.stage_cli import cli, error_line

EMULATE = toolchain.have("arm-none-eabi-gcc") and toolchain.have("qemu-system-arm")

TINY = {
    "label": "Tiny MCUNet-style",
    "model": "mcunet_style",
    "model_kwargs": {"width": 0.25},
    "resolution": 32,
    "dataset": "colour_digits",
    "train": {
        "epochs": 1,
        "batch_size": 16,
        "eval_batch_size": 16,
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "schedule": {"name": "cosine"},
        "seed": 0,
        "device": "cpu",
    },
}


def tiny_params(directory: Path, *, emulate: bool = EMULATE, searched: bool = False) -> Path:
    """Params whose smoke profile has one tiny network, a quick deployment and a small patch row
    (MobileNetV2-w0.35 at 64 px); LeNet-5 stays in (trained by another paper's stage).
    ``searched``: also the TinyNAS-searched network, with a search sized for the fake digits."""
    smoke = repo_profiles("mcunet")["smoke"]
    models = {"tiny": TINY, "lenet5": smoke["models"]["lenet5"]}
    if searched:
        models["tinynas"] = {**smoke["models"]["tinynas"], "train_subset": 24, "test_subset": 16}
    smoke["models"] = models
    smoke["tinynas"]["search"].update(
        train_subset=24, holdout=16, test_subset=16, calibration_images=16, calibration_batch=8
    )
    smoke["tinynas"]["search"]["evolution"]["generations"] = 2  # a generation to resume from
    smoke["tinynas"]["table2"].update(train_subset=24, test_subset=16)
    smoke["tinynas"]["table2"]["train"].update(batch_size=8, eval_batch_size=16)
    smoke["deploy"].update(
        calibration_samples=8, eval_samples=8, check_samples=1, emulate=emulate, patches=[2]
    )
    smoke["patch"] = {"width": 0.35, "resolution": 64, "num_classes": 10, "patches": 2}
    smoke["fuzz"] = {"models": 2, "malformed": 2, "emulate_every": 2 if emulate else 0,
                     "inputs": 1, "chunk": 1, "seed": 0}  # fmt: skip
    return write_params(directory, "smoke", sections={"mcunet": {"smoke": smoke}})


@pytest.fixture
def colour_digits(tmp_path: Path, prepared_fake_mnist: Path) -> Path:
    out = tmp_path / "colour_digits"
    prepare_colour_digits(prepared_fake_mnist, out, ColourDigitsConfig(n_train=48, n_test=16))
    return out


def runs(name: str, status: str | None = "FINISHED") -> list[dict[str, Any]]:
    """A stage's runs with ``status`` (other tests of the session may leave failed ones)."""
    return [
        r for r in list_runs("mcunet") if r["run_name"] == name and status in (None, r["status"])
    ]


@pytest.mark.slow
@pytest.mark.timeout(2400)  # the whole chain: two TinyNAS searches, Tables 2 and 3 included
def test_tiny_network_through_every_stage(
    tmp_path: Path, colour_digits: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tiny_params(tmp_path / "params", searched=True)
    metrics, runs_dir = tmp_path / "metrics", tmp_path / "runs"
    common = {"params": params, "name": "tiny", "data": colour_digits}
    train_out = {"out": runs_dir / "train", "checkpoints": tmp_path / "ckpt"}
    history = metrics / "train_tiny_history.csv"
    argv = cli(**common, **train_out, metrics=metrics / "train_tiny.json", history=history)
    assert train.main(argv) == 0
    m = read_metrics(metrics / "train_tiny.json")
    assert m["tiny/float/train_samples"] == 48 and m["tiny/float/test_samples"] == 16
    assert 0 <= m["tiny/float/test_accuracy"] <= 100
    saved = json.loads((runs_dir / "train" / "config.json").read_text())
    assert saved["stage"] == "mcunet_train@tiny" and saved["profile"] == "smoke"
    assert (metrics / "train_tiny_history.csv").read_text().startswith("epoch")
    (run,) = runs("mcunet_train@tiny")
    assert run["status"] == "FINISHED" and run["params"]["resolution"] == "32"  # the model entry

    deployed = runs_dir / "tiny"  # the deploy stage's output, named after the network
    argv = cli(
        **common, model=runs_dir / "train", out=deployed, metrics=metrics / "deploy_tiny.json"
    )
    assert deploy.main(argv) == 0
    d = read_metrics(metrics / "deploy_tiny.json")
    assert d["tiny/resolution"] == 32 and d["tiny/eval_samples"] == 8
    assert 0 <= d["tiny/int8_accuracy"] <= 100 and 0 <= d["tiny/float_accuracy"] <= 100
    assert d["tiny/tinyengine/arena_bytes"] < d["tiny/tflm/arena_head_bytes"]
    (run,) = runs("mcunet_deploy@tiny")
    assert run["params"]["eval_samples"] == "8"  # the deploy section
    assert run["metrics"]["tiny/int8_accuracy"] == d["tiny/int8_accuracy"]

    if EMULATE:
        assert d["tiny/tinyengine/instructions"] < d["tiny/reference/instructions"]
        argv = cli(params=params, deployed=deployed, out=runs_dir / "ablation")
        assert ablation.main([*argv, *cli(metrics=metrics / "ablation.json")]) == 0
        a = read_metrics(metrics / "ablation.json")
        steps = json.loads((runs_dir / "ablation" / "steps.json").read_text())
        assert [s["key"] for s in steps["steps"]] == [k for k, _, _ in ablation.STEPS]
        first, last = steps["steps"][0], steps["steps"][-1]
        assert a["ablation/reference/instructions"] == first["instructions"]
        assert last["instructions"] < first["instructions"]

    assert patch.main(cli(params=params, metrics=metrics / "patch.json")) == 0
    p = read_metrics(metrics / "patch.json")
    assert p["patch_mbv2/resolution"] == 64 and p["patch_mbv2/patches"] == 2
    assert (
        p["patch_mbv2/reduction"]
        == p["patch_mbv2/per_layer_bytes"] / p["patch_mbv2/per_patch_bytes"]
    )

    # the fuzz campaign, one chunk per model, recorded as it goes: a second run reuses them
    fuzz_argv = cli(
        params=params, out=runs_dir / "fuzz", checkpoints=tmp_path / "fuzz_ckpt",
        metrics=metrics / "fuzz.json",
    )  # fmt: skip
    assert fuzz.main(fuzz_argv) == 0
    f = read_metrics(metrics / "fuzz.json")
    assert f["fuzz/models"] == 2 and f["fuzz/malformed"] == 2
    assert f["fuzz/bitexact_host"] == f["fuzz/accepted"] == 2 and f["fuzz/failed"] == 0
    assert f["fuzz/malformed_bad"] == 0 and f["fuzz/emulated"] == (1 if EMULATE else 0)
    assert f["fuzz/sram_models"] == 2
    records = (tmp_path / "fuzz_ckpt" / "chunks.jsonl").read_text().splitlines()
    assert len(records) == 3  # the fingerprint, then one line per chunk
    summary = (runs_dir / "fuzz" / "summary.txt").read_text()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fuzz, "run", lambda *a, **k: pytest.fail("a recorded chunk ran again"))
        assert fuzz.main(fuzz_argv) == 0
    assert (runs_dir / "fuzz" / "summary.txt").read_text() == summary
    # a recorded chunk that is not a campaign report is one line naming the file and the fix
    log = tmp_path / "fuzz_ckpt" / "chunks.jsonl"
    kept = log.read_text()
    log.write_text("\n".join([*kept.splitlines()[:2], '{"models": "two"}']) + "\n")
    capsys.readouterr()
    assert fuzz.main(fuzz_argv) == 2
    line = error_line(capsys)
    assert str(log) in line and "delete the file" in line
    log.write_text(kept)
    capsys.readouterr()

    space_out = runs_dir / "space"
    assert space.main(cli(params=params, out=space_out, metrics=metrics / "space.json")) == 0
    sm = read_metrics(metrics / "space.json")
    results = json.loads((space_out / "results.json").read_text())
    assert sm["space/networks"] == 4 * 4  # smoke: 2 x 2 spaces, 4 networks each
    assert set(results["budgets"]) == {"f746", "f412"}
    f746 = results["budgets"]["f746"]["engines"]
    assert set(f746) == {"ours", "tflm"}
    # the same networks under both plans: TF-Lite Micro's never needs less SRAM than ours
    for o, t in zip(f746["ours"]["spaces"], f746["tflm"]["spaces"], strict=True):
        assert o["name"] == t["name"] and o["sram_bytes"][0] <= t["sram_bytes"][0]

    # TinyNAS stage 2 in the space stage 1 chose for f746; then deployed like the others
    def chosen_in(engine: str) -> dict[str, Any]:
        e = f746[engine]
        return next(s for s in e["spaces"] if s["name"] == e["best"])

    chosen = chosen_in("ours")
    tn_out = runs_dir / "tinynas"
    tn_argv = cli(params=params, space=space_out, data=colour_digits, out=tn_out)
    tn_argv += cli(checkpoints=tmp_path / "tn_ckpt", metrics=metrics / "tinynas.json")
    assert tinynas.main(tn_argv) == 0
    t = read_metrics(metrics / "tinynas.json")
    found = json.loads((tn_out / "results.json").read_text())
    assert found["space"] == {
        "resolution": chosen["resolution"],
        "width_mult": chosen["width_mult"],
    }
    assert found["costs"]["sram_bytes"] <= found["limits"]["sram_bytes"]
    assert found["costs"]["flash_bytes"] <= found["limits"]["flash_bytes"]
    assert t["tinynas/search/sram_use"] <= 1 and t["tinynas/search/flash_use"] <= 1
    weights = (tn_out / "model.safetensors").read_bytes()
    # a rerun resumes every part from its checkpoints and writes the same network
    assert tinynas.main(tn_argv) == 0
    assert (tn_out / "model.safetensors").read_bytes() == weights
    # killed in the middle of the search, then rerun: the same network as without the kill
    killed_argv = cli(params=params, space=space_out, data=colour_digits, out=tmp_path / "tn2")
    killed_argv += cli(checkpoints=tmp_path / "tn2_ckpt", metrics=tmp_path / "tn2.json")

    class Killed(Exception):
        pass

    calls = {"n": 0}
    measure = HoldoutAccuracy.__call__

    def dies(self: HoldoutAccuracy, archs: list) -> list[float]:
        calls["n"] += 1
        if calls["n"] == 3:  # the initial population, generation 1 (saved), then killed
            raise Killed
        return measure(self, archs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(HoldoutAccuracy, "__call__", dies)
        with pytest.raises(Killed):
            tinynas.main(killed_argv)
    assert json.loads((tmp_path / "tn2_ckpt" / "search.json").read_text())["generation"] == 1
    assert tinynas.main(killed_argv) == 0
    assert (tmp_path / "tn2" / "model.safetensors").read_bytes() == weights
    # the searched network on the engine: the planned SRAM is the search's, bit-exact (the
    # deploy stage fails otherwise)
    tn_dep = cli(params=params, name="tinynas", model=tn_out, data=colour_digits)
    tn_dep += cli(out=runs_dir / "tinynas_deployed", metrics=metrics / "deploy_tinynas.json")
    assert deploy.main(tn_dep) == 0
    dt = read_metrics(metrics / "deploy_tinynas.json")
    assert dt["tinynas/resolution"] == chosen["resolution"]
    assert dt["tinynas/tinyengine/plan_bytes"] == found["costs"]["sram_bytes"]
    assert dt["tinynas/check_inputs"] >= 1

    # the same search under TF-Lite Micro's plan, in the space stage 1 chose for that plan
    tflm_out = runs_dir / "tinynas_tflm"
    tflm_argv = cli(params=params, space=space_out, engine="tflm", data=colour_digits)
    tflm_argv += cli(out=tflm_out, checkpoints=tmp_path / "tflm_ckpt")
    assert tinynas.main([*tflm_argv, *cli(metrics=metrics / "tinynas_tflm.json")]) == 0
    tt = read_metrics(metrics / "tinynas_tflm.json")
    found_tflm = json.loads((tflm_out / "results.json").read_text())
    assert found_tflm["engine"] == "tflm"
    assert found_tflm["space"]["resolution"] == chosen_in("tflm")["resolution"]
    assert found_tflm["space"]["width_mult"] == chosen_in("tflm")["width_mult"]
    assert found_tflm["costs"]["sram_bytes"] <= found_tflm["limits"]["sram_bytes"]
    assert tt["tinynas_tflm/search/sram_use"] <= 1 and tt["tinynas_tflm/search/flash_use"] <= 1
    assert not any(k.startswith("tinynas/") for k in tt)  # its own metrics, not ours overwritten

    # Table 2's memory half: each family's largest member within the budget, per engine
    cd_out = runs_dir / "codesign"
    cd_argv = cli(params=params, space=space_out, searched=tn_out, out=cd_out)
    assert codesign.main([*cd_argv, *cli(metrics=metrics / "codesign.json")]) == 0
    cd = json.loads((cd_out / "results.json").read_text())
    budget = cd["budget"]
    assert budget["sram_kb"] == results["budgets"]["f746"]["budget"]["sram_kb"]
    assert set(cd["families"]) == {"mobilenet_v2", "proxyless_mobile"}
    for e in cd["families"].values():
        for key in ("tflm", "ours"):
            members, best = e[key]["members"], e[key]["largest"]
            fitting = [
                m
                for m in members
                if m["sram_bytes"] <= budget["sram_kb"] * 1024
                and m["flash_bytes"] <= budget["flash_kb"] * 1024
            ]
            assert e[key]["fitting"] == len(fitting)
            assert (best is None) == (not fitting)
            if best is not None:
                assert best["macs"] == max(m["macs"] for m in fitting)
    assert cd["searched"]["ours"]["sram_bytes"] == found["costs"]["sram_bytes"]
    assert cd["searched"]["ours"]["fits"]
    assert cd["searched"]["tflm"]["sram_bytes"] == dt["tinynas/tflm/plan_bytes"]

    # Table 2's accuracy half: six cells, every seed, trained from scratch with one schedule
    t2_out = runs_dir / "table2"
    t2_argv = cli(params=params, codesign=cd_out, searched=tn_out, searched_tflm=tflm_out)
    t2_argv += cli(data=colour_digits, out=t2_out, checkpoints=tmp_path / "t2_ckpt")
    assert table2.main([*t2_argv, *cli(metrics=metrics / "table2.json")]) == 0
    t2 = json.loads((t2_out / "results.json").read_text())
    t2m = read_metrics(metrics / "table2.json")
    seeds = t2["seeds"]
    assert len(seeds) >= 2 and len(t2["cells"]) == 6
    for key, cell in t2["cells"].items():
        family, engine = key.split("/")
        if family == "tinynas":
            src = found if engine == "ours" else found_tflm
            assert cell["resolution"] == src["space"]["resolution"]
            assert cell["sram_bytes"] == src["costs"]["sram_bytes"]  # the search's own plan
        else:
            best = cd["families"][family][engine]["largest"]
            if best is None:
                assert cell["accuracies"] == [] and f"table2/{key}/accuracy" not in t2m
                continue
            assert (cell["resolution"], cell["macs"]) == (best["resolution"], best["macs"])
        assert cell["seeds"] == seeds and len(cell["accuracies"]) == len(seeds)
        assert t2m[f"table2/{key}/accuracy"] == pytest.approx(sum(cell["accuracies"]) / len(seeds))
    runs_ = [c["accuracies"] for c in t2["cells"].values() if c["accuracies"]]
    df = sum(len(a) - 1 for a in runs_)
    ss = sum(sum((x - sum(a) / len(a)) ** 2 for x in a) for a in runs_)
    assert t2["noise"]["df"] == df and t2["noise"]["seed_sd"] == pytest.approx((ss / df) ** 0.5)
    for name, g in t2["gains"].items():
        a, b = t2["cells"][g["a"]], t2["cells"][g["b"]]
        assert g["gain"] == pytest.approx(a["mean"] - b["mean"])
        assert t2m[f"table2/gain/{name}_lcb2"] == pytest.approx(g["gain"] - 2 * g["se"])
    if t2["cells"]["mobilenet_v2/tflm"]["accuracies"]:
        assert "table2/gain/total" in t2m
    # the TinyNAS cells' trainings lost, then killed after retraining one of them, then rerun:
    # the finished trainings are kept, and the accuracies are those of the uninterrupted run
    shutil.copytree(tmp_path / "t2_ckpt", tmp_path / "t2b_ckpt")
    for lost in ("tinynas_tflm", "tinynas_ours"):
        shutil.rmtree(tmp_path / "t2b_ckpt" / lost, ignore_errors=True)
    killed = cli(params=params, codesign=cd_out, searched=tn_out, searched_tflm=tflm_out)
    killed += cli(data=colour_digits, out=tmp_path / "t2b", checkpoints=tmp_path / "t2b_ckpt")
    killed += cli(metrics=tmp_path / "t2b.json")
    trained = table2.train_cell
    calls = {"n": 0}

    def dies_later(cell: table2.Cell, *args: Any, **kwargs: Any) -> dict[str, float]:
        calls["n"] += cell.family == "tinynas"  # the baseline cells' runs resume from disk
        if calls["n"] == 2:
            raise Killed
        return trained(cell, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(table2, "train_cell", dies_later)
        with pytest.raises(Killed):
            table2.main(killed)
    assert table2.main(killed) == 0
    again = json.loads((tmp_path / "t2b" / "results.json").read_text())
    assert {k: c["accuracies"] for k, c in again["cells"].items()} == {
        k: c["accuracies"] for k, c in t2["cells"].items()
    }

    # Table 6: the chosen space against random spaces, each space's largest fitting sample
    t6_out = runs_dir / "table6"
    t6_argv = cli(params=params, space=space_out, table2=t2_out, data=colour_digits)
    t6_argv += cli(out=t6_out, checkpoints=tmp_path / "t6_ckpt", metrics=metrics / "t6.json")
    assert space_ablation.main(t6_argv) == 0
    check_table6(t6_out, read_metrics(metrics / "t6.json"), results, t2)
    first = (t6_out / "results.json").read_text()
    assert space_ablation.main(t6_argv) == 0  # resumed from the finished trainings
    assert (t6_out / "results.json").read_text() == first

    # Table 3: the family and TinyNAS under latency limits, every count exact
    t3 = None
    if EMULATE:
        t3 = check_table3(params, cd_out, tn_out, t2_out, colour_digits, tmp_path, found, t2)

    out = tmp_path / "report"
    claims_yaml = REPO / "papers/mcunet/claims.yaml"
    argv = cli(params=params, claims=claims_yaml, metrics_dir=metrics, out=out)
    argv += cli(fuzz=runs_dir / "fuzz" / "summary.json", space=space_out / "results.json")
    argv += cli(tinynas=tn_out / "results.json", codesign=cd_out / "results.json")
    argv += cli(table2=t2_out / "results.json", table6=t6_out / "results.json")
    if t3 is not None:
        argv += cli(table3=tmp_path / "t3" / "results.json")
    assert report.main([*argv, *cli(ablation=runs_dir / "ablation" / "steps.json")]) == 0
    derived = read_metrics(metrics / "derived.json")
    assert derived["tiny/sram_reduction"] == (
        d["tiny/tflm/arena_head_bytes"] / d["tiny/tinyengine/arena_bytes"]
    )
    assert derived["patch_mbv2/per_layer_kb"] == p["patch_mbv2/per_layer_bytes"] / 1024
    assert not set(derived) & {**m, **d, **p}.keys()  # derived numbers only
    page = (out / "README.md").read_text()
    for title in (
        "The networks",
        "TinyEngine vs TF-Lite Micro",
        "Optimisation ablation",
        "Patch-based inference (MCUNetV2 Table 1)",
        "Patch-based inference in the generated C code",
        "Patch-based inference with the input streamed",
        "Fits / does not fit the STM32F746",
        "The engine on models it was not written for (fuzz campaign)",
        "TinyNAS stage 1: search-space optimisation (MCUNet Section 3.1, Fig. 3)",
        "TinyNAS stage 2: one-shot search under the engine's memory (MCUNet Section 3.1)",
        "Co-design, memory half: the largest member that fits each engine (MCUNet Table 2)",
        "The chosen space against random spaces (MCUNet Table 6)",
        "Benchmarks: goals of our own",
        "Run time",
        "Bit-exactness",
    ):
        assert f"## {title}" in page, title
    assert "| Tiny MCUNet-style | colour digits, 32x32 |" in page
    r = chosen["resolution"]
    assert f"| TinyNAS (searched) | colour digits, {r}x{r} |" in page
    assert f"| Space (stage 1's choice) | w{chosen['width_mult']:g}-r{r} |" in page
    assert "MobileNetV2-w0.35 @ 64 (MCUNetV2 Table 1 setting)" in page
    assert "![peak SRAM](figures/memory.png)" in page and (out / "figures/memory.png").is_file()
    assert ("![ablation](figures/ablation.png)" in page) == EMULATE
    assert "| bit-exact with TF-Lite Micro on the host, every engine | 2 / 2 |" in page
    assert (out / "figures/fuzz_memory.png").is_file()
    assert (out / "figures/space_cdf.png").is_file() and (out / "figures/space_grid.png").is_file()
    assert (out / "figures/codesign.png").is_file() and (out / "figures/table6.png").is_file()
    assert "| Scaled MobileNetV2 |" in page and "35.2 / 47.4 |" in page
    claims = json.loads((out / "claims.json").read_text())
    claims_file = load_claims_file(REPO / "papers/mcunet/claims.yaml")
    assert claims["schema_version"] == 2
    assert [c["id"] for c in claims["claims"]] == [c.id for c in claims_file.claims]
    assert all(c["kind"] in ("result", "setting", "architecture") for c in claims["claims"])
    assert not {t.id for t in claims_file.targets} & {c["id"] for c in claims["claims"]}
    (run,) = runs("mcunet_report")
    results = sum(c["kind"] == "result" for c in claims["claims"])
    assert run["metrics"]["claims/total"] == results


def check_table6(
    out: Path, m: dict[str, float], stage1: dict[str, Any], t2: dict[str, Any]
) -> None:
    """Table 6's spaces against stage 1's results: the chosen space is stage 1's choice, the
    random ones (when any other space has enough fitting networks) are such spaces, every
    network is one of a space's fitting networks and within the budget, and the gain is the
    means' difference (test_space_ablation.py checks the bound on a grid with random spaces)."""
    r = json.loads((out / "results.json").read_text())
    ours = stage1["budgets"]["f746"]["engines"]["ours"]
    budget = stage1["budgets"]["f746"]["budget"]
    assert r["chosen"] == ours["best"] and r["chosen"] not in r["random"]
    assert set(r["random"]) <= set(r["candidates"])
    assert bool(r["random"]) == bool(r["candidates"])
    assert list(r["spaces"]) == [r["chosen"], *r["random"]]
    for name, s in r["spaces"].items():
        assert s["macs"] in ours["fitting_macs"][name]  # stage 1's own measurement
        assert s["sram_bytes"] <= budget["sram_kb"] * 1024
        assert s["flash_bytes"] <= budget["flash_kb"] * 1024
        assert s["seeds"] == t2["seeds"] and len(s["accuracies"]) == len(t2["seeds"])
    chosen = r["spaces"][r["chosen"]]["mean"]
    assert m["table6/chosen/accuracy"] == pytest.approx(chosen)
    if r["random"]:
        means = [r["spaces"][n]["mean"] for n in r["random"]]
        assert m["table6/gain"] == pytest.approx(chosen - sum(means) / len(means))
    else:  # nothing to compare with: no gain, no claim
        assert r["gain"] is None and "table6/gain" not in m
    # Table 2's trainings pooled in: more degrees of freedom than its own
    assert r["noise"]["df"] == t2["noise"]["df"] + len(r["spaces"]) * (len(t2["seeds"]) - 1)


def check_table3(
    params: Path,
    cd_out: Path,
    tn_out: Path,
    t2_out: Path,
    data: Path,
    tmp_path: Path,
    found: dict[str, Any],
    t2: dict[str, Any],
) -> dict[str, Any]:
    """Run the Table 3 stage on the chain's outputs and check what it claims: every cell within
    its limit by exact count, no larger member left out, Table 2's cells as the no-limit column,
    the noise pooled over both tables' trainings; then a rerun from its records measures
    nothing again."""
    out, ckpt = tmp_path / "t3", tmp_path / "t3_ckpt"
    argv = cli(params=params, codesign=cd_out, searched=tn_out, table2=t2_out, data=data)
    argv += cli(out=out, checkpoints=ckpt, metrics=tmp_path / "metrics" / "table3.json")
    assert table3.main(argv) == 0
    r = json.loads((out / "results.json").read_text())
    m = read_metrics(tmp_path / "metrics" / "table3.json")
    cfg = repo_profiles("mcunet")["smoke"]["tinynas"]["table3"]
    assert r["columns"] == ["none", *cfg["limits"]]
    reference = r["reference"]["instructions"]
    assert r["cells"]["none"]["tinynas"]["instructions"] == reference
    assert r["cells"]["none"]["tinynas"]["accuracies"] == t2["cells"]["tinynas/ours"]["accuracies"]
    cd = json.loads((cd_out / "results.json").read_text())
    budget = cd["budget"]
    counts = {
        rec["key"]: rec["value"]
        for rec in map(json.loads, (ckpt / "measured.jsonl").read_text().splitlines()[1:])
    }
    for key, setting in cfg["limits"].items():
        limit = r["limits"][key]["instructions"]
        assert limit == pytest.approx(setting * reference)
        for engine in ("tflm", "ours"):
            cell = r["cells"][key][engine]
            fitting = [
                x
                for x in cd["families"]["mobilenet_v2"][engine]["members"]
                if x["sram_bytes"] <= budget["sram_kb"] * 1024
                and x["flash_bytes"] <= budget["flash_kb"] * 1024
            ]
            measured = {
                x["name"]: counts[f"mobilenet_v2/{engine}/{x['name']}"]
                for x in fitting
                if f"mobilenet_v2/{engine}/{x['name']}" in counts
            }
            # every member with more MACs than the cell's was measured over the limit or skipped
            floor = cell.get("macs", -1)
            for x in fitting:
                if x["macs"] > floor:
                    assert (
                        measured.get(x["name"], limit + 1) > limit or x["name"] in cell["skipped"]
                    )
            if "instructions" in cell:
                assert cell["instructions"] == measured[cell["name"]] <= limit
                assert m[f"table3/{key}/{engine}/latency_ms"] <= r["limits"][key]["latency_ms"]
        s = r["cells"][key]["tinynas"]
        if "instructions" in s:
            assert s["instructions"] <= limit
            assert s["attempts"][-1]["exact"] == s["instructions"]
            assert s["arch"]["r"] <= found["space"]["resolution"]
        for cell in r["cells"][key].values():
            if "instructions" in cell:
                assert len(cell["accuracies"]) == len(t2["seeds"])
    extra = [
        c["accuracies"]
        for k in cfg["limits"]
        for c in r["cells"][k].values()
        if c.get("trained") == "here" and c["accuracies"]
    ]
    df = t2["noise"]["df"] + sum(len(a) - 1 for a in extra)
    assert r["noise"]["df"] == df == m["table3/noise/df"]
    # a rerun takes every count from its records and every training from its checkpoint
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(table3, "measure_instructions", lambda *a, **k: pytest.fail("measured again"))
        mp.setattr(
            table3, "measure_subnet_instructions", lambda *a, **k: pytest.fail("measured again")
        )
        assert table3.main(argv) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["cells"] == r["cells"]
    return r


def test_claims_cite_the_paper_and_goals_are_targets() -> None:
    """Every claim's source is the paper or its repository; our own goals are targets."""
    f = load_claims_file(REPO / "papers/mcunet/claims.yaml")
    assert not [c.id for c in f.claims if "issue" in c.source or c.id.startswith("issue.")]
    assert {t.id.split(".")[1] for t in f.targets} == {
        "instruction_reduction",
        "sram_reduction_patch",
        "sram_reduction_stream",
    }
    assert all(t.goal in (10.0, 3.4) and t.check == "at_least" for t in f.targets)


def test_a_network_trained_elsewhere_is_refused_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tiny_params(tmp_path / "params")
    argv = cli(params=params, data=tmp_path, out=tmp_path / "o", checkpoints=tmp_path / "c")
    argv += cli(metrics=tmp_path / "m.json", history=tmp_path / "h.csv")
    assert train.main([*argv, "--name", "lenet5"]) == 2
    err = error_line(capsys)
    assert "papers/mcunet/params.yaml: smoke.models.lenet5 has no train section" in err
    assert not runs("mcunet_train@lenet5", status=None)  # checked before the MLflow run opens
    assert train.main([*argv, "--name", "resnet"]) == 2
    assert "smoke.models has no 'resnet'; it has tiny, lenet5" in error_line(capsys)


@pytest.mark.parametrize("have_toolchain", [True, False])
def test_missing_inputs_and_toolchain_are_one_line_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    have_toolchain: bool,
) -> None:
    def require(*args: Any, **kwargs: Any) -> None:
        if not have_toolchain:
            raise ToolchainMissingError("arm-none-eabi-gcc is not on PATH (install: apt-get ...)")

    monkeypatch.setattr(toolchain, "require", require)
    params = tiny_params(tmp_path / "params", emulate=True)
    outputs = cli(out=tmp_path / "o", metrics=tmp_path / "m.json")
    argv = cli(params=params, name="tiny", model=tmp_path / "none", data=tmp_path)
    assert deploy.main([*argv, *outputs]) == 2
    assert (
        "model.safetensors not found: run the training stage first"
        if have_toolchain
        else "arm-none-eabi-gcc is not on PATH"
    ) in error_line(capsys)
    assert ablation.main([*cli(params=params, deployed=tmp_path / "none"), *outputs]) == 2
    assert (
        "model.tflite not found: run mcunet_deploy@none first"
        if have_toolchain
        else "arm-none-eabi-gcc is not on PATH"
    ) in error_line(capsys)
    argv = cli(params=params, codesign=tmp_path / "none", searched=tmp_path / "none")
    argv += cli(table2=tmp_path / "none", data=tmp_path, checkpoints=tmp_path / "c")
    assert table3.main([*argv, *outputs]) == 2
    assert (
        "run the co-design stage first" if have_toolchain else "arm-none-eabi-gcc is not on PATH"
    ) in error_line(capsys)


def test_a_malformed_table3_record_is_one_line(tmp_path: Path) -> None:
    log = tmp_path / "measured.jsonl"
    table3.Measured(log, "fp").get("a", lambda: 7)
    assert table3.Measured(log, "fp").get("a", lambda: pytest.fail("measured again")) == 7
    log.write_text(log.read_text() + '{"models": "two"}\n')
    with pytest.raises(CheckpointError, match=r"is not a measurement .* delete the file"):
        table3.Measured(log, "fp")


def test_space_stage_without_its_params_block_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    smoke = repo_profiles("mcunet")["smoke"]
    del smoke["tinynas"]
    del smoke["models"]["tinynas"]  # the searched network needs the block too (checked below)
    params = write_params(tmp_path / "params", "smoke", sections={"mcunet": {"smoke": smoke}})
    argv = cli(params=params, out=tmp_path / "o", metrics=tmp_path / "m.json")
    assert space.main(argv) == 2
    assert "smoke.tinynas is missing" in error_line(capsys)
    smoke = repo_profiles("mcunet")["smoke"]
    smoke["tinynas"]["grid"]["width_mults"] = [0.0]
    params = write_params(tmp_path / "params2", "smoke", sections={"mcunet": {"smoke": smoke}})
    assert space.main(cli(params=params, out=tmp_path / "o", metrics=tmp_path / "m.json")) == 2
    assert "width_mults" in error_line(capsys)
    smoke = repo_profiles("mcunet")["smoke"]
    del smoke["tinynas"]["search"]
    params = write_params(tmp_path / "params3", "smoke", sections={"mcunet": {"smoke": smoke}})
    assert space.main(cli(params=params, out=tmp_path / "o", metrics=tmp_path / "m.json")) == 2
    assert "tinynas.table2 trains the cells that tinynas.search and tinynas.codesign" in (
        error_line(capsys)
    )
    del smoke["tinynas"]["table2"]
    params = write_params(tmp_path / "params6", "smoke", sections={"mcunet": {"smoke": smoke}})
    assert space.main(cli(params=params, out=tmp_path / "o", metrics=tmp_path / "m.json")) == 2
    assert "tinynas.space_ablation trains its networks as tinynas.table2" in error_line(capsys)
    del smoke["tinynas"]["space_ablation"]
    params = write_params(tmp_path / "params7", "smoke", sections={"mcunet": {"smoke": smoke}})
    assert space.main(cli(params=params, out=tmp_path / "o", metrics=tmp_path / "m.json")) == 2
    assert "tinynas.table3 trains its cells as tinynas.table2" in error_line(capsys)
    del smoke["tinynas"]["table3"]
    params = write_params(tmp_path / "params5", "smoke", sections={"mcunet": {"smoke": smoke}})
    assert space.main(cli(params=params, out=tmp_path / "o", metrics=tmp_path / "m.json")) == 2
    assert "models.tinynas is the TinyNAS-searched network, but tinynas.search is not set" in (
        error_line(capsys)
    )
    # Table 3's limits and family: each mistake is one line naming the setting
    for change, message in (
        ({"limits": {}}, "tinynas.table3.limits: give at least one limit"),
        ({"limits": {"5fps": 1.5}}, "tinynas.table3.limits.5fps: 1.5 is out of range"),
        ({"limits": {"5 FPS": 0.5}}, "tinynas.table3.limits: '5 FPS': use lower-case letters"),
        ({"limits": {"none": 0.5}}, "'none' is the no-limit column"),
        ({"family": "proxyless_mobile"}, "tinynas.table3.family: 'proxyless_mobile' is not one"),
    ):
        smoke = repo_profiles("mcunet")["smoke"]
        smoke["tinynas"]["codesign"]["families"] = ["mobilenet_v2"]
        smoke["tinynas"]["table3"].update(change)
        params = write_params(tmp_path / "p3", "smoke", sections={"mcunet": {"smoke": smoke}})
        assert space.main(cli(params=params, out=tmp_path / "o", metrics=tmp_path / "m.json")) == 2
        assert message in error_line(capsys), change
    smoke["models"]["tinynas"]["resolution"] = 64
    smoke["models"]["tinynas"]["model"] = "tinynas"
    params = write_params(tmp_path / "params4", "smoke", sections={"mcunet": {"smoke": smoke}})
    assert space.main(cli(params=params, out=tmp_path / "o", metrics=tmp_path / "m.json")) == 2
    assert "remove resolution, model_kwargs and train" in error_line(capsys)


def test_search_stage_inputs_are_one_line_errors(
    tmp_path: Path,
    colour_digits: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Table 3 checks the toolchain first; its inputs' errors are tested here, with or without it
    monkeypatch.setattr(toolchain, "require", lambda *a, **k: None)
    params = tiny_params(tmp_path / "params")
    argv = cli(params=params, space=tmp_path / "nospace", data=colour_digits, out=tmp_path / "o")
    argv += cli(checkpoints=tmp_path / "c", metrics=tmp_path / "m.json")
    assert tinynas.main(argv) == 2
    assert "results.json not found: run the search-space stage first" in error_line(capsys)
    (tmp_path / "nospace").mkdir()
    (tmp_path / "nospace" / "results.json").write_text('{"budgets": {"f412": {}}}')
    assert tinynas.main(argv) == 2
    assert "is not a search-space result with budget 'f746'" in error_line(capsys)
    smoke = repo_profiles("mcunet")["smoke"]
    smoke["tinynas"]["search"]["train_subset"] = 40  # + 64 held out > 48 fake images
    params = write_params(tmp_path / "p2", "smoke", sections={"mcunet": {"smoke": smoke}})
    space_out = tmp_path / "space"
    assert space.main(cli(params=params, out=space_out, metrics=tmp_path / "s.json")) == 0
    capsys.readouterr()  # its progress bar
    argv = cli(params=params, space=space_out, data=colour_digits, out=tmp_path / "o")
    argv += cli(checkpoints=tmp_path / "c", metrics=tmp_path / "m.json")
    assert tinynas.main(argv) == 2
    assert "train_subset (40) + holdout (64) exceed the 48 training images" in error_line(capsys)
    smoke["tinynas"]["search"]["budget"] = "f999"
    params = write_params(tmp_path / "p3", "smoke", sections={"mcunet": {"smoke": smoke}})
    assert (
        tinynas.main(
            cli(
                params=params,
                space=space_out,
                data=colour_digits,
                out=tmp_path / "o",
                checkpoints=tmp_path / "c",
                metrics=tmp_path / "m.json",
            )
        )
        == 2
    )
    assert "tinynas.search.budget: 'f999' is not one of the budgets" in error_line(capsys)
    # the co-design stage: missing search results, an unknown family, a non-MBConv family
    smoke["tinynas"]["search"]["budget"] = "f746"
    params = write_params(tmp_path / "p4", "smoke", sections={"mcunet": {"smoke": smoke}})
    cd_argv = cli(params=params, space=space_out, searched=tmp_path / "nosearch")
    cd_argv += cli(out=tmp_path / "cd", metrics=tmp_path / "cd.json")
    assert codesign.main(cd_argv) == 2
    assert "results.json not found: run the TinyNAS search stage first" in error_line(capsys)
    (tmp_path / "nosearch").mkdir()
    (tmp_path / "nosearch" / "results.json").write_text('{"spec": {"blocks": [')  # truncated
    assert codesign.main(cd_argv) == 2
    assert "is not a TinyNAS search result (JSONDecodeError)" in error_line(capsys)
    for family, message in (
        ("mobilenet_v9", "model: 'mobilenet_v9' is not a registered model"),
        ("lenet5", "model_kwargs.width: not an argument of model 'lenet5'"),
    ):
        smoke["tinynas"]["codesign"]["families"] = [family]
        params = write_params(tmp_path / "p5", "smoke", sections={"mcunet": {"smoke": smoke}})
        cd_argv[1] = str(params)
        assert codesign.main(cd_argv) == 2
        assert message in error_line(capsys)
    # the Table 2 stage: missing or truncated co-design results, then its block missing
    smoke["tinynas"]["codesign"]["families"] = ["mobilenet_v2"]
    params = write_params(tmp_path / "p7", "smoke", sections={"mcunet": {"smoke": smoke}})
    t2_argv = cli(params=params, codesign=tmp_path / "nocd", searched=tmp_path / "nosearch")
    t2_argv += cli(searched_tflm=tmp_path / "nosearch", data=colour_digits, out=tmp_path / "t2")
    t2_argv += cli(checkpoints=tmp_path / "t2c", metrics=tmp_path / "t2.json")
    assert table2.main(t2_argv) == 2
    assert "results.json not found: run the co-design stage first" in error_line(capsys)
    (tmp_path / "nocd").mkdir()
    (tmp_path / "nocd" / "results.json").write_text('{"families": {"mobilenet_v2": {"tfl')
    assert table2.main(t2_argv) == 2
    assert "is not a co-design result (JSONDecodeError)" in error_line(capsys)
    # the search under TF-Lite Micro's plan missing: the error names its own stage
    (tmp_path / "cd_ok").mkdir()
    (tmp_path / "cd_ok" / "results.json").write_text(
        json.dumps({"families": {"mobilenet_v2": {"tflm": {"largest": None},
                                                  "ours": {"largest": None}}}})
    )  # fmt: skip
    (tmp_path / "tn_ok").mkdir()
    spec = codesign.family_spec("mobilenet_v2", 10)(0.5).to_dict()
    (tmp_path / "tn_ok" / "results.json").write_text(
        json.dumps({"spec": spec, "space": {"resolution": 32}})
    )
    with pytest.raises(CheckpointError, match=r"dvc\.yaml:mcunet_tinynas_tflm`"):
        table2.cells(
            ["mobilenet_v2"], 10, tmp_path / "cd_ok",
            {"ours": tmp_path / "tn_ok", "tflm": tmp_path / "no_tflm"},
        )  # fmt: skip
    # the Table 3 stage: each missing input names the stage that writes it
    t3_argv = cli(params=params, codesign=tmp_path / "nocd3", searched=tmp_path / "ns3")
    t3_argv += cli(table2=tmp_path / "not2", data=colour_digits, out=tmp_path / "t3")
    t3_argv += cli(checkpoints=tmp_path / "t3c", metrics=tmp_path / "t3.json")
    assert table3.main(t3_argv) == 2
    assert "results.json not found: run the co-design stage first" in error_line(capsys)
    budget = {"sram_kb": 100, "flash_kb": 1000, "label": "x"}
    members = {"members": []}
    (tmp_path / "nocd3").mkdir()
    (tmp_path / "nocd3" / "results.json").write_text(
        json.dumps({"families": {"mobilenet_v2": {"tflm": members, "ours": members}},
                    "budget": budget})
    )  # fmt: skip
    assert table3.main(t3_argv) == 2
    assert "mcunet_tinynas`)" in error_line(capsys)
    (tmp_path / "ns3").mkdir()
    (tmp_path / "ns3" / "results.json").write_text(
        json.dumps({"arch": {}, "spec": {}, "space": {"resolution": 32}, "budget": budget})
    )
    assert table3.main(t3_argv) == 2
    assert "results.json not found: run the Table 2 stage first" in error_line(capsys)
    (tmp_path / "not2").mkdir()
    (tmp_path / "not2" / "results.json").write_text('{"cells": {"mobilenet_v2/tflm": {}}}')
    assert table3.main(t3_argv) == 2
    assert "is not a Table 2 result (KeyError)" in error_line(capsys)
    del smoke["tinynas"]["table3"]
    del smoke["tinynas"]["space_ablation"]
    del smoke["tinynas"]["table2"]
    params = write_params(tmp_path / "p8", "smoke", sections={"mcunet": {"smoke": smoke}})
    t2_argv[1] = str(params)
    assert table2.main(t2_argv) == 2
    assert "smoke.tinynas.table2 is missing: add the block" in error_line(capsys)
    t3_argv[1] = str(params)
    assert table3.main(t3_argv) == 2
    assert "smoke.tinynas.table3 is missing: add the block" in error_line(capsys)
    del smoke["tinynas"]["codesign"]
    params = write_params(tmp_path / "p6", "smoke", sections={"mcunet": {"smoke": smoke}})
    cd_argv[1] = str(params)
    assert codesign.main(cd_argv) == 2
    assert "smoke.tinynas.codesign is missing: add the block" in error_line(capsys)
