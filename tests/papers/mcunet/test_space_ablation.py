"""MCUNet Table 6 (stage ``mcunet_space_ablation``): which spaces are compared, the network each
space gets, the gain's standard error, and the one-line errors for missing or stale inputs."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
import scipy.stats

from common.data.prepare import ColourDigitsConfig, prepare_colour_digits
from common.io import read_metrics
from common.tinynas.space import MemoryBudget, SpaceStats
from papers.mcunet import space, space_ablation
from papers.mcunet.config import SpaceAblationConfig
from tests.params import repo_profiles, write_params
from tests.stage_cli import cli, error_line


def spaces(fitting: dict[str, int]) -> dict[str, dict]:
    return {n: {"fitting": f, "resolution": 32, "width_mult": 0.5} for n, f in fitting.items()}


def test_random_spaces_are_other_spaces_with_enough_fitting_networks() -> None:
    grid = spaces({"a": 0, "b": 5, "c": 50, "best": 90, "d": 10, "e": 9, "f": 30})
    a = SpaceAblationConfig(random_spaces=2, candidates=10, seed=0)
    drawn, candidates = space_ablation.draw_spaces(grid, "best", a)
    assert candidates == ["c", "d", "f"]  # grid order, the chosen one and the thin ones out
    assert len(drawn) == 2 and set(drawn) <= set(candidates)
    assert drawn == [n for n in grid if n in drawn]  # grid order
    # the same seed draws the same spaces; some other seed draws others
    assert space_ablation.draw_spaces(grid, "best", a)[0] == drawn
    others = {tuple(space_ablation.draw_spaces(grid, "best", SpaceAblationConfig(2, 10, s))[0])
              for s in range(20)}  # fmt: skip
    assert len(others) > 1
    # more wanted than there are: all of them
    everything = space_ablation.draw_spaces(grid, "best", SpaceAblationConfig(5, 10, 0))[0]
    assert everything == candidates


def test_largest_fitting_network_is_the_most_macs_within_both_resources() -> None:
    stats = SpaceStats(32, 0.5, macs=[5, 9, 7, 9, 3], sram_bytes=[10, 10, 10, 10, 30],
                       flash_bytes=[10, 50, 10, 10, 10])  # fmt: skip
    budget = MemoryBudget(sram_kb=20 / 1024, flash_kb=20 / 1024)
    # network 1 has the most MACs but too much flash; 3 ties it and fits
    assert stats.largest_fitting(budget) == 3
    assert stats.largest_fitting(MemoryBudget(sram_kb=1 / 1024, flash_kb=1 / 1024)) is None
    ties = SpaceStats(32, 0.5, macs=[4, 4], sram_bytes=[1, 1], flash_bytes=[1, 1])
    assert ties.largest_fitting(budget) == 0  # the first of equals
    # among the first two fitting networks only (0 and 2): the same effort in every space
    assert stats.largest_fitting(budget, first=2) == 2
    assert stats.largest_fitting(budget, first=1) == 0


def test_gain_bound_has_both_noise_sources_and_their_degrees_of_freedom() -> None:
    g = space_ablation.space_gain([80.0, 82.0], [70.0, 74.0, 72.0], seed_sd=1.5, seed_df=6)
    assert g["gain"] == pytest.approx(81.0 - 72.0)
    between = statistics.stdev([70.0, 74.0, 72.0])
    var_b, var_s = between**2 / 3, 1.5**2 / 2
    assert g["between_sd"] == pytest.approx(between)
    assert g["se"] == pytest.approx(math.sqrt(var_b + var_s))
    df = (var_b + var_s) ** 2 / (var_b**2 / 2 + var_s**2 / 6)
    assert g["df"] == pytest.approx(df) and 2 < df < 8  # between the two sources' own
    assert g["t"] == pytest.approx(scipy.stats.t.ppf(0.975, df)) and g["t"] > 2
    assert g["lcb95"] == pytest.approx(g["gain"] - g["t"] * g["se"])
    # one random space: no spread between spaces, so no bound is claimed
    one = space_ablation.space_gain([80.0, 82.0], [70.0], seed_sd=1.5, seed_df=6)
    assert one["gain"] == pytest.approx(11.0) and one["se"] is None and one["lcb95"] is None
    nan = space_ablation.space_gain([80.0], [70.0, 71.0], seed_sd=float("nan"), seed_df=0)
    assert nan["lcb95"] is None


def test_spaces_trained_and_compared_end_to_end(
    tmp_path: Path, prepared_fake_mnist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "colour_digits"
    prepare_colour_digits(prepared_fake_mnist, data, ColourDigitsConfig(n_train=48, n_test=16))
    smoke = repo_profiles("mcunet")["smoke"]
    # small spaces, several of which fit: the chosen one and two random ones to compare
    smoke["tinynas"]["grid"].update(resolutions=[32, 40, 96], width_mults=[0.2, 0.3, 1.0])
    smoke["tinynas"]["table2"].update(train_subset=24, test_subset=16)
    smoke["tinynas"]["table2"]["train"].update(batch_size=8, eval_batch_size=16)
    smoke["tinynas"]["space_ablation"].update(random_spaces=2, candidates=2)
    params = write_params(tmp_path / "params", "smoke", sections={"mcunet": {"smoke": smoke}})
    space_out = tmp_path / "space"
    assert space.main(cli(params=params, out=space_out, metrics=tmp_path / "s.json")) == 0
    stage1 = json.loads((space_out / "results.json").read_text())["budgets"]["f746"]
    t2 = tmp_path / "t2"
    t2.mkdir()
    (t2 / "results.json").write_text(json.dumps({"noise": {"seed_sd": 2.0, "df": 4}}))
    out = tmp_path / "t6"
    argv = cli(params=params, space=space_out, table2=t2, data=data, out=out)
    argv += cli(checkpoints=tmp_path / "c", metrics=tmp_path / "m.json")
    assert space_ablation.main(argv) == 0
    r = json.loads((out / "results.json").read_text())
    m = read_metrics(tmp_path / "m.json")
    ours = stage1["engines"]["ours"]
    assert r["chosen"] == ours["best"] and len(r["random"]) == 2
    fitting = {s["name"]: s["fitting"] for s in ours["spaces"]}
    assert all(fitting[n] >= 2 for n in r["random"]) and r["chosen"] not in r["random"]
    for name, s in r["spaces"].items():
        assert s["macs"] in ours["fitting_macs"][name]
        assert s["sram_bytes"] <= stage1["budget"]["sram_kb"] * 1024
        assert s["flash_bytes"] <= stage1["budget"]["flash_kb"] * 1024
        assert len(s["accuracies"]) == len(smoke["tinynas"]["table2"]["seeds"])
    chosen = r["spaces"][r["chosen"]]
    means = [r["spaces"][n]["mean"] for n in r["random"]]
    assert m["table6/gain"] == pytest.approx(chosen["mean"] - statistics.fmean(means))
    assert m["table6/gain_lcb95"] == pytest.approx(r["gain"]["lcb95"])
    assert r["noise"]["df"] == 4 + 3 * (len(chosen["accuracies"]) - 1)  # Table 2's pooled in
    # rerun: every training resumes from its finished checkpoint, the same results
    first = (out / "results.json").read_text()
    assert space_ablation.main(argv) == 0
    assert (out / "results.json").read_text() == first


def test_missing_and_stale_inputs_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    smoke = repo_profiles("mcunet")["smoke"]
    params = write_params(tmp_path / "params", "smoke", sections={"mcunet": {"smoke": smoke}})
    outputs = cli(out=tmp_path / "o", checkpoints=tmp_path / "c", metrics=tmp_path / "m.json")
    argv = cli(params=params, space=tmp_path / "none", table2=tmp_path / "none", data=tmp_path)
    assert space_ablation.main([*argv, *outputs]) == 2
    assert "run the search-space stage first" in error_line(capsys)
    space_out = tmp_path / "space"
    assert space.main(cli(params=params, out=space_out, metrics=tmp_path / "s.json")) == 0
    capsys.readouterr()  # the space stage's progress
    argv = cli(params=params, space=space_out, table2=tmp_path / "none", data=tmp_path)
    assert space_ablation.main([*argv, *outputs]) == 2
    assert "mcunet_table2" in error_line(capsys)
    # stage 1's result from other settings: the fitting counts differ, one line names the fix
    t2 = tmp_path / "t2"
    t2.mkdir()
    (t2 / "results.json").write_text(json.dumps({"noise": {"seed_sd": 1.0, "df": 2}}))
    results = json.loads((space_out / "results.json").read_text())
    ours = results["budgets"]["f746"]["engines"]["ours"]
    ours["fitting_macs"][ours["best"]][0] += 1
    (space_out / "results.json").write_text(json.dumps(results))
    argv = cli(params=params, space=space_out, table2=t2, data=tmp_path)
    assert space_ablation.main([*argv, *outputs]) == 2
    line = error_line(capsys)
    assert "fitting networks there differ" in line and "mcunet_space" in line
    # no block at this profile: one line naming it
    del smoke["tinynas"]["space_ablation"]
    params = write_params(tmp_path / "p2", "smoke", sections={"mcunet": {"smoke": smoke}})
    argv = cli(params=params, space=space_out, table2=t2, data=tmp_path)
    assert space_ablation.main([*argv, *outputs]) == 2
    assert "smoke.tinynas.space_ablation is missing" in error_line(capsys)
