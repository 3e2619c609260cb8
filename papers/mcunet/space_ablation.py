"""Stage ``mcunet_space_ablation``: MCUNet Table 6, the space TinyNAS stage 1 chose against
random spaces.

The paper (ImageNet-100, 320 kB / 1 MB) searches a network in the space its stage 1 chose
(78.7% top-1) and in random spaces (74.7 +/- 1.9%): the space, not only the search inside it,
decides the accuracy. Here:

1. The spaces: the one ``mcunet_space`` chose for ``tinynas.search.budget`` under our engine's
   memory (``--space``), and ``tinynas.space_ablation.random_spaces`` spaces drawn at random
   (``seed``) among the grid's other spaces where at least ``candidates`` of stage 1's random
   networks fit (a space where nothing fits has nothing to search).
2. The search in each space, the same for all and cheap: the network with the most MACs among
   the space's first ``candidates`` fitting networks of stage 1's random draw (the same number
   of candidates in every space; stage 1's premise: more computation within the memory, more
   accuracy), the space's fitting networks checked against stage 1's. The paper runs its
   one-shot search in every space; a supernet per space (stage 2) costs about 20 minutes here,
   so this is the stated scale-down.
3. Each space's network trained from scratch as Table 2's cells (its schedule, seeds and images;
   :func:`papers.mcunet.table2.train_cell`), float accuracy on the same test images.

The claim is the chosen space's mean accuracy minus the random spaces' mean, with a standard
error from both the random spaces' spread (their seed-mean accuracies' SD, over ``sqrt(K)``)
and the seed noise of the chosen space's mean (Table 2's pooled seed SD with this stage's
seeds pooled in, over ``sqrt(seeds)``): reproduced when the lower end of its 95% interval (a t
quantile, Welch-Satterthwaite degrees of freedom: the spread of K spaces has K - 1) is above
zero. Every training resumes from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
import time
from pathlib import Path
from typing import Any

import scipy.stats
from tqdm.auto import tqdm

from common.checkpoint import CheckpointError
from common.io import write_json
from common.ofa.efficiency import shapes_graph
from common.ofa.supernet import subnet_spec
from common.stage import StageContext
from common.tinynas.space import MemoryBudget, sample_choices, space_config, space_stats
from papers.mcunet.config import SpaceAblationConfig, TinyNASConfig
from papers.mcunet.stage import mcunet_stage, stage_result, tinynas_block
from papers.mcunet.table2 import Cell, pooled_sd, table2_data, train_cell
from papers.mcunet.tinynas import chosen_space

ENGINE = "ours"  # the ablation searches under our engine's memory, as the paper's TinyEngine


def ablation_config(ctx: StageContext) -> tuple[TinyNASConfig, SpaceAblationConfig]:
    return tinynas_block(ctx, "space_ablation")


def read_space(directory: Path, budget: str) -> dict[str, Any]:
    """Stage 1's result for ``budget`` under our engine: the budget it used, the chosen space's
    name and every space's summary and fitting networks' MACs (ascending)."""
    chosen_space(directory, budget, ENGINE)  # no space fits: one line naming the fix
    detail = f" with budget {budget!r} for engine {ENGINE!r}"
    with stage_result(directory, "mcunet_space", "search-space", detail) as r:
        b = r["budgets"][budget]
        e = b["engines"][ENGINE]
        spaces = {
            s["name"]: {
                "resolution": int(s["resolution"]),
                "width_mult": float(s["width_mult"]),
                "fitting": int(s["fitting"]),
                "samples": int(s["samples"]),
                "mean_macs": s["mean_macs"],
                "fitting_macs": [int(m) for m in e["fitting_macs"][s["name"]]],
            }
            for s in e["spaces"]
        }
        return {"budget": MemoryBudget(**b["budget"]), "best": e["best"], "spaces": spaces}


def draw_spaces(
    spaces: dict[str, dict[str, Any]], best: str, a: SpaceAblationConfig
) -> tuple[list[str], list[str]]:
    """The random spaces (grid order) and the candidates they were drawn from: every space
    but ``best`` with at least ``a.candidates`` fitting networks."""
    candidates = [n for n, s in spaces.items() if n != best and s["fitting"] >= a.candidates]
    drawn = set(random.Random(a.seed).sample(candidates, min(a.random_spaces, len(candidates))))
    return [n for n in spaces if n in drawn], candidates


def space_gain(
    best: list[float], randoms: list[float], seed_sd: float | None, seed_df: int
) -> dict[str, Any]:
    """The chosen space's mean accuracy (its seeds ``best``) minus the mean of the random
    spaces' seed-mean accuracies ``randoms``, its standard error
    ``sqrt(sd_between^2 / K + seed_sd^2 / len(best))`` and the lower end of its two-sided 95%
    interval, ``gain - t * SE`` with Welch-Satterthwaite degrees of freedom (the spread between
    K spaces has only K - 1: two SE would be far too lenient). No bound (``None``) without a
    spread: fewer than two random spaces, or no seed SD."""
    gain = statistics.fmean(best) - statistics.fmean(randoms)
    between = statistics.stdev(randoms) if len(randoms) > 1 else None
    out: dict[str, Any] = {"gain": gain, "between_sd": between, "se": None, "df": None}
    out.update(t=None, lcb95=None)
    if between is None or seed_sd is None or math.isnan(seed_sd) or seed_df < 1:
        return out
    var_b, var_s = between**2 / len(randoms), seed_sd**2 / len(best)
    se = math.sqrt(var_b + var_s)
    df = (var_b + var_s) ** 2 / (var_b**2 / (len(randoms) - 1) + var_s**2 / seed_df)
    t = float(scipy.stats.t.ppf(0.975, df))
    out.update(se=se, df=df, t=t, lcb95=gain - t * se)
    return out


@mcunet_stage(
    name="mcunet_space_ablation",
    flags=["space", "table2", "data", "out", "checkpoints", "metrics"],
    track=lambda ctx: ablation_config(ctx)[1],
)
def main(ctx: StageContext) -> None:
    args = ctx.args
    cfg, a = ablation_config(ctx)
    t2, s = cfg.table2, cfg.search
    assert t2 is not None and s is not None
    t0 = time.perf_counter()
    stage1 = read_space(args.space, s.budget)
    with stage_result(args.table2, "mcunet_table2", "Table 2") as r:
        noise2 = (r["noise"]["seed_sd"], int(r["noise"]["df"]))
    budget: MemoryBudget = stage1["budget"]
    randoms, candidates = draw_spaces(stage1["spaces"], stage1["best"], a)
    # stage 1's random networks, as it drew them (same space, grid samples and seed): each
    # space's network chosen and checked against stage 1's measurements before any training
    choices = sample_choices(cfg.space, cfg.grid.samples, cfg.grid.seed)
    model = cfg.memory_models()[ENGINE]
    names = [stage1["best"], *randoms]
    picked: dict[str, int] = {}
    for name in names:
        sp = stage1["spaces"][name]
        stats = space_stats(cfg.space, sp["resolution"], sp["width_mult"], choices, model)
        if stats.fitting_macs(budget) != sp["fitting_macs"]:
            raise CheckpointError(
                f"{args.space / 'results.json'}: space {name}'s fitting networks there differ "
                "from those of this profile's tinynas.space/grid/code settings: rerun the "
                "search-space stage (`dvc repro papers/mcunet/dvc.yaml:mcunet_space`)"
            )
        i = stats.largest_fitting(budget, first=a.candidates)
        assert i is not None  # every space here has fitting networks
        picked[name] = i
    train, test = table2_data(t2, args.data)
    base = dataclasses.replace(cfg.space, num_classes=train.num_classes)
    bar = tqdm(total=len(names) * len(t2.seeds), desc="Table 6 spaces x seeds", leave=False)
    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        sp = stage1["spaces"][name]
        res, width = sp["resolution"], sp["width_mult"]
        arch = {**choices[picked[name]], "r": res}
        spec = subnet_spec(space_config(base, res, width), arch)
        sram, flash = model.measure_spec(spec, res)  # the trained network (the data's head)
        row: dict[str, Any] = {
            "role": "chosen" if name == stage1["best"] else "random",
            "resolution": res,
            "width_mult": width,
            "fitting": sp["fitting"],
            "samples": sp["samples"],
            "space_mean_macs": sp["mean_macs"],
            "sample": picked[name],
            "arch": arch,
            "macs": shapes_graph(spec, res).macs(),
            "sram_bytes": sram,
            "flash_bytes": flash,
            "accuracies": [],
            "seeds": [],
            "train_seconds": 0.0,
        }
        cell = Cell(f"space_{name}", ENGINE, spec, res, name)
        for seed in t2.seeds:
            bar.set_postfix_str(f"{name} seed {seed}")
            out = train_cell(cell, seed, t2, train, test, args.checkpoints)
            row["accuracies"].append(out["accuracy"])
            row["seeds"].append(seed)
            row["train_seconds"] += out["seconds"]
            bar.update(1)
        row["mean"] = statistics.fmean(row["accuracies"])
        rows[name] = row
    bar.close()
    sd, df = pooled_sd([r["accuracies"] for r in rows.values()], prior=noise2)
    chosen = rows[stage1["best"]]
    g = (
        space_gain(chosen["accuracies"], [rows[n]["mean"] for n in randoms], sd, df)
        if randoms
        else None
    )
    metrics: dict[str, float] = {
        "table6/chosen/accuracy": chosen["mean"],
        "table6/chosen/mmacs": chosen["macs"] / 1e6,
        "table6/random/spaces": float(len(randoms)),
        "table6/random/candidates": float(len(candidates)),
        "table6/noise/df": float(df),
    }
    if df:
        metrics["table6/noise/seed_sd"] = sd
    if randoms:
        metrics["table6/random/accuracy"] = statistics.fmean(rows[n]["mean"] for n in randoms)
        metrics["table6/random/mmacs"] = statistics.fmean(rows[n]["macs"] for n in randoms) / 1e6
    if g is not None:
        metrics["table6/gain"] = g["gain"]
        if g["between_sd"] is not None:
            metrics["table6/random/accuracy_sd"] = g["between_sd"]
        if g["lcb95"] is not None:
            metrics["table6/gain_lcb95"] = g["lcb95"]
            metrics["table6/gain_se"] = g["se"]
    metrics["time/table6"] = time.perf_counter() - t0
    results = {
        "engine": ENGINE,
        "budget_key": s.budget,
        "budget": dataclasses.asdict(budget),
        "chosen": stage1["best"],
        "random": randoms,
        "candidates": candidates,
        "seeds": list(t2.seeds),
        "spaces": rows,
        "noise": {"seed_sd": sd if df else None, "df": df},
        "gain": g,
    }
    write_json(results, args.out / "results.json")
    ctx.save_config(a, args.out / "config.json")
    shown = ", ".join(f"{n} {rows[n]['mean']:.1f}%" for n in randoms) or "none"
    gain = "" if g is None else f" (gain {g['gain']:+.1f} points)"
    ctx.finish(
        metrics,
        summary=(
            f"Table 6 ({len(t2.seeds)} seeds): chosen space {stage1['best']} "
            f"{chosen['mean']:.1f}%, random spaces {shown}{gain} -> {args.out}"
        ),
    )


if __name__ == "__main__":
    raise SystemExit(main())
