"""Stage ``mcunet_table2``: MCUNet Table 2's accuracy half, the co-design table's six cells
trained with one schedule.

The cells are {each baseline family of ``tinynas.codesign.families``, TinyNAS} x {TF-Lite Micro's
memory plan with the reference kernels, our engine}, all under the same MCU budget:

* a family's cell is its largest member that fits that engine's memory (``--codesign``, the
  stage ``mcunet_codesign``);
* TinyNAS's cell is the network the search found under that engine's memory (``--searched``:
  our engine, ``--searched-tflm``: TF-Lite Micro's plan).

Every cell is trained **from scratch** with ``tinynas.table2.train`` on the same training images
at its own input resolution and tested on the same test images, once per seed of
``tinynas.table2.seeds`` (a cell whose engine fits no member is reported as such, not trained;
two cells with the same network, e.g. when both engines fit the same member, share one training:
it is deterministic, so a second one would repeat it exactly).
The seed-to-seed spread, pooled over the cells, is the noise estimate: each difference of two
cells (the engine's gain per family, TinyNAS's gain per engine, the total) gets a standard error
from it, and the claims compare the difference minus two standard errors (``_lcb2``) with zero.
Accuracies are the float networks' (no int8 conversion here; the deployment stages measure int8
on the table networks). Every training resumes from its checkpoint after an interruption.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from common.checkpoint import CheckpointError
from common.data import build_dataset
from common.data.transforms import resize
from common.io import write_json
from common.models.mbconv import MBConvNetSpec, build_mbconv_net
from common.ofa.efficiency import shapes_graph
from common.ofa.supernet import zero_init_residual_
from common.seed import seed_everything
from common.stage import StageContext
from common.train import Trainer
from papers.mcunet.codesign import family_spec, searched_spec
from papers.mcunet.config import ENGINES, Table2Config, TinyNASConfig
from papers.mcunet.stage import mcunet_stage, stage_result, tinynas_block

SEARCHED_FAMILY = "tinynas"
ENGINE_ORDER = tuple(ENGINES)  # the table's column order: TF-Lite Micro, then ours
# the stage that searches under each engine's memory (named in a missing-input error)
SEARCH_STAGES = {"ours": "mcunet_tinynas", "tflm": "mcunet_tinynas_tflm"}


def table2_config(ctx: StageContext) -> tuple[TinyNASConfig, Table2Config]:
    return tinynas_block(ctx, "table2")


@dataclasses.dataclass
class Cell:
    """One cell of the table: a network (or none that fits) under one engine's memory."""

    family: str
    engine: str
    spec: MBConvNetSpec | None
    resolution: int | None
    name: str

    @property
    def key(self) -> str:
        return f"{self.family}/{self.engine}"


def codesign_members(directory: Path) -> dict[str, Any]:
    """The co-design stage's largest member per family and engine."""
    with stage_result(directory, "mcunet_codesign", "co-design") as r:
        families = r["families"]
        return {f: {e: families[f][e]["largest"] for e in ENGINE_ORDER} for f in families}


def cells(
    families: list[str], num_classes: int, codesign: Path, searched: dict[str, Path]
) -> list[Cell]:
    """The table's cells in its order: each family under each engine, then TinyNAS."""
    members = codesign_members(codesign)
    out = []
    for family in families:
        if family not in members:
            raise CheckpointError(
                f"{Path(codesign) / 'results.json'} has no family {family!r}: rerun the "
                "co-design stage (`dvc repro papers/mcunet/dvc.yaml:mcunet_codesign`)"
            )
        spec_of = family_spec(family, num_classes)
        for engine in ENGINE_ORDER:
            m = members[family][engine]
            if m is None:
                out.append(Cell(family, engine, None, None, "none fits"))
            else:
                spec = spec_of(float(m["width_mult"]))
                out.append(Cell(family, engine, spec, int(m["resolution"]), m["name"]))
    for engine in ENGINE_ORDER:
        spec, r = searched_spec(searched[engine], SEARCH_STAGES[engine])
        out.append(Cell(SEARCHED_FAMILY, engine, spec, r, f"searched-r{r}"))
    return out


def table2_data(t: Table2Config, data: Path) -> tuple[Any, Any]:
    """The training and test images every cell of Tables 2, 3 and 6 trains and tests on."""
    train = build_dataset(
        "colour_digits", "train", root=data, subset=t.train_subset, seed=t.data_seed
    )
    test = build_dataset("colour_digits", "test", root=data, subset=t.test_subset, seed=t.data_seed)
    return train, test


def train_cell(
    cell: Cell,
    seed: int,
    t: Table2Config,
    train: Any,
    test: Any,
    checkpoints: Path,
) -> dict[str, float]:
    """Train ``cell``'s network from scratch with seed ``seed``; its test accuracy and seconds."""
    assert cell.spec is not None and cell.resolution is not None
    train.transform = test.transform = resize(cell.resolution)
    seed_everything(seed)
    # every cell starts alike, residual blocks as the identity (the supernet's initialisation,
    # and Once-for-All's scratch baselines'): without it the deep narrow members barely move
    # in a short schedule, and the seed, not the network, decides the accuracy
    model = zero_init_residual_(build_mbconv_net(cell.spec)).to(memory_format=torch.channels_last)
    result = Trainer(
        model,
        dataclasses.replace(t.train, seed=seed),
        train_data=train,
        eval_data=test,
        checkpoint_dir=checkpoints / f"{cell.family}_{cell.engine}" / f"seed{seed}",
        fingerprint_extra={
            "spec": cell.spec.to_dict(),
            "resolution": cell.resolution,
            "data": [t.train_subset, t.test_subset, t.data_seed],
        },
    ).fit()
    return {
        "accuracy": 100.0 - result.final["eval_error"],
        "seconds": sum(h["epoch_seconds"] for h in result.history),
    }


def pooled_sd(
    accuracies: list[list[float]], prior: tuple[float | None, int] = (None, 0)
) -> tuple[float, int]:
    """The seed-to-seed standard deviation pooled over cells (each cell's runs differ only in
    the seed), and its degrees of freedom; ``prior`` is an SD already pooled elsewhere with the
    same schedule and its degrees of freedom, pooled in too. ``(nan, 0)`` without two seeds."""
    sd0, df = prior
    ss = (sd0 or 0.0) ** 2 * df
    ss += sum(statistics.variance(a) * (len(a) - 1) for a in accuracies if len(a) > 1)
    df += sum(len(a) - 1 for a in accuracies if len(a) > 1)
    return (math.sqrt(ss / df) if df else float("nan")), df


def gains(
    table: dict[str, dict[str, Any]], families: list[str], sd: float
) -> dict[str, dict[str, Any]]:
    """The differences Table 2 is about, each ``a - b`` of two cells' mean accuracies with its
    standard error ``sd * sqrt(1/n_a + 1/n_b)`` and the lower bound ``gain - 2 SE``: the engine's
    gain per network (ours - TF-Lite Micro), TinyNAS's gain over each family per engine, and the
    total (TinyNAS with our engine over the first family with TF-Lite Micro)."""
    pairs: dict[str, tuple[str, str]] = {}
    for family in [*families, SEARCHED_FAMILY]:
        pairs[f"engine/{family}"] = (f"{family}/ours", f"{family}/tflm")
    for engine in ENGINE_ORDER:
        for family in families:
            pairs[f"search/{engine}/{family}"] = (
                f"{SEARCHED_FAMILY}/{engine}",
                f"{family}/{engine}",
            )
    pairs["total"] = (f"{SEARCHED_FAMILY}/ours", f"{families[0]}/tflm")
    out = {}
    for name, (a, b) in pairs.items():
        ca, cb = table[a], table[b]
        if not ca["accuracies"] or not cb["accuracies"]:
            continue  # a cell where nothing fits: no difference to measure
        gain = ca["mean"] - cb["mean"]
        if math.isnan(sd):  # one seed: no noise estimate (null in the JSON, not NaN)
            out[name] = {"a": a, "b": b, "gain": gain, "se": None, "lcb2": None}
            continue
        se = sd * math.sqrt(1 / len(ca["accuracies"]) + 1 / len(cb["accuracies"]))
        out[name] = {"a": a, "b": b, "gain": gain, "se": se, "lcb2": gain - 2 * se}
    return out


@mcunet_stage(
    name="mcunet_table2",
    flags=["codesign", "searched", "searched-tflm", "data", "out", "checkpoints", "metrics"],
    track=lambda ctx: table2_config(ctx)[1],
)
def main(ctx: StageContext) -> None:
    args = ctx.args
    cfg, t = table2_config(ctx)
    assert cfg.codesign is not None
    t0 = time.perf_counter()
    train, test = table2_data(t, args.data)
    searched = {"ours": args.searched, "tflm": args.searched_tflm}
    table_cells = cells(cfg.codesign.families, train.num_classes, args.codesign, searched)
    models = cfg.memory_models()
    todo = [(c, s) for c in table_cells if c.spec is not None for s in t.seeds]
    bar = tqdm(total=len(todo), desc="Table 2 cells x seeds", leave=False)
    table: dict[str, dict[str, Any]] = {}
    trained: dict[tuple[str, int], dict[str, float]] = {}
    metrics: dict[str, float] = {}
    for c in table_cells:
        row: dict[str, Any] = {
            "family": c.family,
            "engine": c.engine,
            "name": c.name,
            "resolution": c.resolution,
            "accuracies": [],
            "seeds": [],
            "train_seconds": 0.0,
        }
        if c.spec is not None and c.resolution is not None:
            sram, flash = models[c.engine].measure_spec(c.spec, c.resolution)
            row.update(
                macs=shapes_graph(c.spec, c.resolution).macs(), sram_bytes=sram, flash_bytes=flash
            )
            same = json.dumps([c.spec.to_dict(), c.resolution], sort_keys=True)
            for seed in t.seeds:
                bar.set_postfix_str(f"{c.key} seed {seed}")
                if (same, seed) not in trained:  # two cells with one network: trained once
                    trained[same, seed] = train_cell(c, seed, t, train, test, args.checkpoints)
                r = trained[same, seed]
                row["accuracies"].append(r["accuracy"])
                row["seeds"].append(seed)
                row["train_seconds"] += r["seconds"]
                bar.update(1)
        row["mean"] = statistics.fmean(row["accuracies"]) if row["accuracies"] else None
        table[c.key] = row
        p = f"table2/{c.key}"
        if row["mean"] is not None:
            metrics[f"{p}/accuracy"] = row["mean"]
            metrics[f"{p}/mmacs"] = row["macs"] / 1e6
            metrics[f"{p}/sram_kb"] = row["sram_bytes"] / 1024
            metrics[f"{p}/train_seconds"] = row["train_seconds"]
    bar.close()
    sd, df = pooled_sd([r["accuracies"] for r in table.values()])
    diffs = gains(table, cfg.codesign.families, sd)
    for name, g in diffs.items():
        metrics[f"table2/gain/{name}"] = g["gain"]
        if df:
            metrics[f"table2/gain/{name}_lcb2"] = g["lcb2"]
    if df:
        metrics["table2/noise/seed_sd"] = sd
    metrics["table2/noise/df"] = float(df)
    metrics["time/table2"] = time.perf_counter() - t0
    results = {
        "engines": ENGINES,
        "seeds": list(t.seeds),
        "train_images": len(train),
        "test_images": len(test),
        "cells": table,
        "noise": {"seed_sd": sd if df else None, "df": df},
        "gains": diffs,
    }
    write_json(results, args.out / "results.json")
    ctx.save_config(t, args.out / "config.json")
    shown = "; ".join(
        f"{k} {r['mean']:.1f}%" if r["mean"] is not None else f"{k} none fits"
        for k, r in table.items()
    )
    ctx.finish(metrics, summary=f"Table 2 ({len(t.seeds)} seeds): {shown} -> {args.out}")


if __name__ == "__main__":
    raise SystemExit(main())
