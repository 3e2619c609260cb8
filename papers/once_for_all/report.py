"""Stage ``once_for_all_report``: render ``reports/once_for_all/`` from the stages' outputs.

Writes ``README.md`` (training schedule, PS ablation, predictor and latency table, the
Cortex-M7 instruction table checked on held-out sub-networks, every deployment target, OFA
against MobileNetV3 and against training from scratch, the cost of "train once", the paper's
numbers beside ours), ``claims.json`` and ``figures/*.png``. Differences and ratios are derived
by :func:`derive` from the measured metrics (``metrics/once_for_all/derived.json``); nothing is
typed by hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.ofa.mcu_cost import McuInstructionTable
from common.report import fmt, table
from common.report.spec import (
    Col,
    Figure,
    Group,
    MetricTable,
    ReportData,
    ReportSpec,
    Text,
    When,
    report_main,
)
from papers.once_for_all import figures
from papers.once_for_all.config import PS_PHASES, OFAProfile

INTRO = """
Once-for-All trains one weight-sharing supernet with *progressive shrinking* and specialises it
for many deployment targets without retraining: an accuracy predictor and an evolutionary search
pick the best sub-network under each target's constraint
([arXiv:1908.09791](https://arxiv.org/abs/1908.09791)). Here the whole pipeline runs end to end:
the full network, the five shrinking phases, the no-PS ablation, the predictor's dataset and
training, a latency table measured on this machine, the search for every target, fine-tuning,
and the networks trained from scratch that OFA is compared with.
Code: [`common/ofa/`](../../common/ofa/) (elastic layers, supernet, sampling, predictor, search),
[`papers/once_for_all/`](../../papers/once_for_all/) (stages).
"""

N_PAPER = 40  # deployment scenarios of the paper's cost comparison (Table 1)
# Stages whose seconds make up OFA's one-time cost (the no-PS supernet is the ablation, not OFA).
ONCE_PHASES = ("full", *PS_PHASES)
# The stages' JSON outputs the report reads, under --runs.
RUN_FILES = {
    "search": "search/results.json",
    "scratch": "scratch/results.json",
    "ablation": "ablation.json",
    "predictor": "predictor/validation.json",
    "mcu": "mcu_table.json",
}


def run_file(r: ReportData, name: str) -> Any:
    """A stage's JSON output (:data:`RUN_FILES`), read once; ``None`` when it did not run."""
    if name not in r.files:
        r.files[name] = r.json(Path(r.args.runs) / RUN_FILES[name])
    return r.files[name]


def _targets(r: ReportData) -> dict[str, Any]:
    return (run_file(r, "search") or {}).get("targets", {})


def _log10_subnets(cfg: OFAProfile) -> float:
    s = cfg.space
    per_block = len(s.kernel_sizes) * len(s.expand_ratios)
    per_stage = sum(per_block**d for d in s.depths)
    return s.num_stages * math.log10(per_stage)


def derive(metrics: dict[str, float], r: ReportData) -> dict[str, float]:
    """Differences and ratios the claims compare, from the measured metrics and the search and
    from-scratch results."""
    cfg: OFAProfile = r.config
    g = metrics.get
    d = {"space/log10_subnets": _log10_subnets(cfg)}
    targets = _targets(r)
    nets = (run_file(r, "scratch") or {}).get("networks", {})
    ofa_vs_mbv3, ofa_vs_scratch, ft_gains, best_vs_mbv3 = [], [], [], []
    for name, row in targets.items():
        if row.get("finetuned_accuracy") is not None:
            gain = row["finetuned_accuracy"] - row["ofa_accuracy"]
            d[f"compare/{name}/finetune_gain"] = gain
            ft_gains.append(gain)
        w = row.get("matches_family")
        if w is None:
            continue
        mbv3 = nets.get(f"mbv3_w{w:g}")
        same = nets.get(f"searched_{name}")
        if mbv3:
            diff = row["ofa_accuracy"] - mbv3["accuracy"]
            d[f"compare/{name}/ofa_minus_mbv3"] = diff
            ofa_vs_mbv3.append(diff)
            best = max(row["ofa_accuracy"], row.get("finetuned_accuracy") or -1.0)
            best_vs_mbv3.append(best - mbv3["accuracy"])
        if same:
            diff = row["ofa_accuracy"] - same["accuracy"]
            d[f"compare/{name}/ofa_minus_scratch"] = diff
            ofa_vs_scratch.append(diff)
    if ofa_vs_mbv3:
        d["compare/mean_ofa_minus_mbv3"] = sum(ofa_vs_mbv3) / len(ofa_vs_mbv3)
        d["compare/max_best_minus_mbv3"] = max(best_vs_mbv3)
    if ofa_vs_scratch:
        d["compare/mean_ofa_minus_scratch"] = sum(ofa_vs_scratch) / len(ofa_vs_scratch)
    if ft_gains:
        d["compare/mean_finetune_gain"] = sum(ft_gains) / len(ft_gains)
    # Cost of "train once" (seconds on this machine) against one training per target.
    train_parts = [g(f"{p}/train_seconds") for p in ONCE_PHASES]
    once_parts = [*train_parts, g("measure/seconds"), g("predictor/fit_seconds")]
    once_parts.append(g("latency/build_seconds"))
    if all(v is not None for v in once_parts) and targets and nets:
        once = float(sum(once_parts))
        search_s = sum(t["search_seconds"] for t in targets.values()) / len(targets)
        scratch_s = sum(n["train_seconds"] for n in nets.values()) / len(nets)
        d["cost/supernet_train_seconds"] = float(sum(train_parts))
        d["cost/ofa_once_seconds"] = once
        d["cost/search_seconds_mean"] = search_s
        d["cost/scratch_seconds_mean"] = scratch_s
        for n in (len(targets), N_PAPER):
            d[f"cost/ratio_n{n}"] = n * scratch_s / (once + n * search_s)
        d["cost/ratio_vs_scratch_n40"] = d[f"cost/ratio_n{N_PAPER}"]
        d["cost/break_even_targets"] = once / max(scratch_s - search_s, 1e-9)
    # Absolute ImageNet numbers are only comparable when the data is ImageNet (paper profile).
    if cfg.data.dataset == "imagenet":
        for key in ("reference_ps_accuracy", "reference_nops_accuracy"):
            if f"ablation/{key}" in metrics:
                d[f"imagenet/ablation/{key}"] = metrics[f"ablation/{key}"]
        for name, row in targets.items():
            acc = row.get("finetuned_accuracy") or row["ofa_accuracy"]
            d[f"imagenet/search/{name}/best_accuracy"] = acc
    d["time/total_stage_seconds"] = sum(v for k, v in metrics.items() if k.startswith("time/"))
    return d


# ---------------------------------------------------------------------- cells and sections
def _acc(v: float | None) -> str:
    """An accuracy (or a difference of accuracies) with two decimals."""
    return "–" if v is None or v != v else f"{v:.2f}"


def _mmacs(macs: float | None) -> str:
    return "–" if macs is None else f"{macs / 1e6:.2f}"


def _signed(v: float) -> str:
    return f"{v:+.2f}"


def _one(v: float) -> str:
    return f"{v:.1f}"


def _choices(attr: str) -> Col:
    """A phase's elastic choices of one dimension, largest first (``7/5/3``)."""
    header = {"kernel_sizes": "kernel", "expand_ratios": "expand", "depths": "depth"}[attr]
    return Col(
        lambda p, r: "/".join(map(str, sorted(getattr(r.config.phases[p], attr), reverse=True))),
        header,
    )


def _passes_note(r: ReportData) -> str:
    ps_passes = sum(r.metrics.get(f"{p}/subnet_passes", 0.0) for p in PS_PHASES)
    return (
        "Sub-network passes (forward + backward over one batch) after the full network: "
        f"progressive shrinking {fmt(ps_passes, 0)}, without PS "
        f"{fmt(r.metrics.get('nops/subnet_passes'), 0)} (both start from the full network and "
        "distil from it). Held-out accuracies are after BN recalibration: the phase's largest and "
        "smallest sub-network, at the largest and smallest resolution."
    )


def _ablation_note(r: ReportData) -> str:
    ab, m = run_file(r, "ablation"), r.metrics
    return (
        f"Test accuracy on {ab['test_images']} images at {ab['resolution']} px after BN "
        f"recalibration. Mean gain {m.get('ablation/mean_gain', float('nan')):+.2f} points; PS "
        f"better on {int(m.get('ablation/ps_better_count', 0))} of "
        f"{int(m.get('ablation/grid_size', 0))}. Paper (Fig. 7, ImageNet): +3.5 on average, "
        "74.8% vs 71.5% at (D=4, W=3, K=3)."
    )


def _predictor_text(r: ReportData) -> str:
    m, cfg = r.metrics, r.config
    return (
        f"Predictor: {fmt(m.get('predictor/n_train'), 0)} sub-networks to train on, "
        f"{fmt(m.get('predictor/n_valid'), 0)} held out: RMSE "
        f"{fmt(m.get('predictor/valid_rmse'), 3)} points (the measured accuracies spread "
        f"with a standard deviation of {fmt(m.get('predictor/accuracy_std'), 3)}), rank "
        f"correlation {fmt(m.get('predictor/valid_spearman'), 3)}. Each measurement is a "
        f"held-out accuracy on {cfg.data.holdout_images} images, whose own binomial noise "
        f"bounds what any predictor can reach.\n\nLatency table: "
        f"{fmt(m.get('latency/entries'), 0)} entries; predicting whole sub-networks "
        f"as the sum of their blocks errs by {fmt(m.get('latency/mean_abs_pct_error'), 1)}% "
        f"on average (worst {fmt(m.get('latency/max_abs_pct_error'), 1)}%, rank "
        f"correlation {fmt(m.get('latency/spearman'), 3)}) over "
        f"{cfg.latency.validate_archs} measured random sub-networks."
    )


def mcu_table_section(mt: dict[str, Any] | None, m: dict[str, float]) -> str:
    """Predicted against measured Cortex-M7 instructions of the held-out sub-networks."""
    if mt is None:
        return "The MCU instruction table was not built (stage `once_for_all_mcu_table`)."
    tbl = McuInstructionTable.from_dict(mt)
    check = tbl.meta.get("validation", {})
    rows = [
        [
            i,
            row["arch"]["r"],
            "-".join(str(d) for d in row["arch"]["d"]),
            f"{row['predicted'] / 1e6:.3f}",
            f"{row['measured'] / 1e6:.3f}",
            f"{row['rel_error']:.2f}",
            f"{row['missing_ops']} / {row['ops']}",
            f"{tbl.latency_ms_estimate(row['measured']):.1f}",
        ]
        for i, row in enumerate(check.get("rows", []))
    ]
    fallback = m.get("mcu_table/fallback_fraction")
    text = (
        "Each sub-network is deployed on the int8 MCU engine (TinyEngine-style C, -O2, "
        "unlimited per-channel code budget) and run once on the emulated Cortex-M7 with a "
        "per-operator profile: exact instruction counts. The table "
        f"({fmt(m.get('mcu_table/entries'), 0)} operator entries) was built from "
        f"{len(tbl.meta.get('measurements', {}).get('build', []))} sub-networks; it predicts a "
        "sub-network as the sum of its operators' entries (operators it lacks: the nearest entry "
        f"scaled by MACs). On {fmt(m.get('mcu_table/validate_archs'), 0)} held-out random "
        f"sub-networks it errs by {fmt(m.get('mcu_table/mean_rel_error'), 2)}% on average (worst "
        f"{fmt(m.get('mcu_table/max_rel_error'), 2)}%, rank correlation "
        f"{fmt(m.get('mcu_table/spearman'), 3)}); "
        f"{fmt(None if fallback is None else 100 * fallback, 1)}% "
        "of their operators were not in the table. The latency column is an *estimate*, not a "
        f"measurement: instructions at an assumed IPC of 1 and {tbl.clock_hz / 1e6:.0f} MHz.\n\n"
    )
    headers = ["held-out", "px", "depths", "M instr. (table)", "M instr. (measured)", "error %"]
    return text + table([*headers, "ops not in table", "latency estimate ms"], rows)


def _unit_value(name: str, r: ReportData) -> str:
    t = _targets(r)[name]
    unit = {"macs": "MACs", "latency_ms": "ms", "sram_kb": "kB", "mcu_minstr": "M instr."}
    return f"{fmt(t['constraint_value'], 4)} {unit[t['metric']]}"


def _mbv3_cell(name: str, r: ReportData) -> str:
    w = _targets(r)[name]["matches_family"]
    net = f"scratch/mbv3_w{w:g}"
    return f"w{w:g}: {_acc(r.m(f'{net}/accuracy'))} ({_mmacs(r.m(f'{net}/macs'))} MMACs)"


def _matched(r: ReportData) -> list[tuple[str, str]]:
    """The targets matched to a MobileNetV3 family member."""
    return [(f"`{n}`", n) for n, t in _targets(r).items() if t.get("matches_family") is not None]


def _cost_note(r: ReportData) -> str:
    n_t = len(_targets(r))
    return (
        "For N targets OFA costs once + N searches, training from scratch N trainings. "
        f"Ratio (from scratch / OFA): N={n_t} (this run's targets): "
        f"{fmt(r.m(f'cost/ratio_n{n_t}'), 2)}x; N={N_PAPER} (the paper's Table 1): "
        f"{fmt(r.m('cost/ratio_n40'), 2)}x. OFA pays off from "
        f"{fmt(r.m('cost/break_even_targets'), 1)} targets on. Paper (Table 1, N=40): OFA 1.2K "
        "GPU hours against 7.2K for MobileNetV3-Large (180N) and 20K for ProxylessNAS."
    )


# The cost table: (label, metric, significant digits).
COSTS = [
    ("OFA, once: full network + progressive shrinking", "cost/supernet_train_seconds", 0),
    ("OFA, once: measuring the predictor's sub-networks", "measure/seconds", 0),
    ("OFA, once: training the predictor", "predictor/fit_seconds", 1),
    ("OFA, once: latency table", "latency/build_seconds", 1),
    ("OFA, per target: evolutionary search (mean)", "cost/search_seconds_mean", 1),
    ("From scratch, per target: one training (mean)", "cost/scratch_seconds_mean", 0),
]
DIGITS = {key: digits for _, key, digits in COSTS}


def _ablation_macs(name: str, r: ReportData) -> str:
    return _mmacs(next(a["macs"] for a in run_file(r, "ablation")["rows"] if a["name"] == name))


def _scaled_down(r: ReportData) -> list[str]:
    s, d, m = r.config.space, r.config.data, r.metrics
    res = s.resolution_choices()
    return [
        f"Data: {d.dataset} ({fmt(m.get('full/train_images'), 0)} training images, "
        f"{d.holdout_images} held out for the predictor, the test split for every reported "
        "accuracy) instead of ImageNet.",
        f"Space: the paper's choices (kernel {list(s.kernel_sizes)}, expand {list(s.expand_ratios)}, "
        f"depth {list(s.depths)}, 5 stages) at width {s.width_mult:g} and resolutions "
        f"{res[0]}-{res[-1]} px (paper: width 1.0, 128-224 px); stage strides {list(s.stage_strides)}; "
        "ReLU6 everywhere and no squeeze-and-excitation (so every sub-network deploys on the "
        "int8 MCU engine); residual blocks start as the identity (zero-initialised last BN).",
        "Schedule: the paper's phases and sub-networks per step, with a few epochs each instead of "
        "180 + 125 + 25 + 125 + 25 + 125 (see the table above).",
        f"Predictor: {r.config.predictor.samples} measured sub-networks instead of 16K.",
        "Latency: a lookup table of this CPU (batch 1) instead of phones.",
        f"Time of the OFA stages on this machine: {fmt(m.get('time/total_stage_seconds', 0) / 60, 1)} "
        "minutes (sum of the stages' wall times; work resumed from checkpoints (training "
        "epochs, the search, the from-scratch training) counts with the time it took when it "
        "ran).",
    ]


def _figure(file: str, alt: str, draw: Callable[..., bool], *inputs: str) -> Figure:
    """A figure of :mod:`papers.once_for_all.figures` drawn from the named run files."""
    return Figure("", file, lambda r, path: draw(*(run_file(r, i) for i in inputs), path), alt=alt)


SPEC = ReportSpec(
    paper="once_for_all",
    title="Once-for-All (ICLR 2020): replication report",
    intro=INTRO,
    config=OFAProfile,
    derive=derive,
    scaled_down=_scaled_down,
    track=lambda cfg: None,  # the stages record their configs; the report's run records none
    flags=[("runs", {"type": Path, "required": True, "help": "runs/once_for_all"})],
    sections=[
        MetricTable(
            "Training: progressive shrinking (Section 3.3)",
            rows=[(f"`{p}`", p) for p in ("full", *PS_PHASES, "nops")],
            row_header="phase",
            columns=[
                Col(lambda p, r: r.config.phases[p].label, "what"),
                _choices("kernel_sizes"),
                _choices("expand_ratios"),
                _choices("depths"),
                Col(lambda p, r: str(r.config.phases[p].subnets_per_step), "sub-nets/step"),
                Col(lambda p, r: str(r.config.phases[p].train.epochs), "epochs"),
                Col(lambda p, r: fmt(r.config.phases[p].train.optimizer.lr), "LR"),
                Col("{row}/subnet_passes", "sub-net passes", digits=0),
                Col("{row}/train_seconds", "seconds", digits=0),
                Col("{row}/max/holdout_accuracy", "largest (held-out %)", format=_acc),
                Col("{row}/min/holdout_accuracy", "smallest (held-out %)", format=_acc),
            ],
            note=_passes_note,
        ),
        Group(
            "Progressive shrinking against training all sub-networks jointly (Fig. 7)",
            [
                When(
                    lambda r: run_file(r, "ablation"),
                    MetricTable(
                        "",
                        rows=lambda r: [
                            (f"D={a['d']}, W={a['w']}, K={a['k']}", a["name"])
                            for a in run_file(r, "ablation")["rows"]
                        ],
                        row_header="sub-network (uniform)",
                        columns=[
                            Col(_ablation_macs, "MMACs"),
                            Col("ablation/{row}/ps_accuracy", "with PS (%)", format=_acc),
                            Col("ablation/{row}/nops_accuracy", "without PS (%)", format=_acc),
                            Col("ablation/{row}/gain", "gain", format=_signed),
                        ],
                        note=_ablation_note,
                    ),
                    "_The ablation stage has not run._",
                ),
                _figure("ablation.png", "PS ablation", figures.ablation, "ablation"),
            ],
        ),
        Group(
            "Accuracy predictor and latency table (Section 3.4)",
            [
                Text("", _predictor_text),
                _figure("predictor.png", "predictor", figures.predictor, "predictor"),
            ],
        ),
        Text(
            "Cortex-M7 instruction table (MCU engine)",
            lambda r: mcu_table_section(run_file(r, "mcu"), r.metrics),
        ),
        Group(
            "Many deployment targets, one training",
            [
                MetricTable(
                    "",
                    intro=lambda r: (
                        "Every target below was specialised from the same supernet "
                        "by the evolutionary search (its constraint is never exceeded by "
                        "construction). Accuracies are on the test set; OFA's without any "
                        "retraining, then after a short fine-tune "
                        f"({r.config.search.finetune.epochs if r.config.search.finetune else 0} "
                        "epoch(s))."
                    ),
                    rows=lambda r: [(f"`{n}`", n) for n in _targets(r)],
                    row_header="target",
                    columns=[
                        Col(lambda n, r: _targets(r)[n]["label"], "constraint"),
                        Col(_unit_value, "achieved"),
                        Col("search/{row}/resolution", "px"),
                        Col("search/{row}/macs", "MMACs", format=_mmacs),
                        Col(
                            lambda n, r: (
                                f"{r.m(f'search/{n}/latency_ms_table'):.2f} / "
                                f"{r.m(f'search/{n}/latency_ms_measured'):.2f}"
                            ),
                            "latency ms (table / measured)",
                        ),
                        Col("search/{row}/sram_kb", "MCU peak SRAM kB", format=_one),
                        Col("search/{row}/mcu_minstr", "Cortex-M7 M instr. (table)", digits=3),
                        Col("search/{row}/predicted_accuracy", "predicted %", format=_acc),
                        Col("search/{row}/ofa_accuracy", "OFA %", format=_acc),
                        Col("search/{row}/finetuned_accuracy", "fine-tuned %", format=_acc),
                        Col("search/{row}/search_seconds", "search s", format=_one),
                    ],
                ),
                _figure("curves.png", "accuracy curves", figures.curves, "search", "scratch"),
            ],
        ),
        Group(
            "OFA against training from scratch (Table 1, abstract)",
            [
                Text(
                    "",
                    lambda r: (
                        "Each MobileNetV3-matched target is compared with its own "
                        "architecture trained from scratch and with the MobileNetV3 family member of "
                        "the same MACs, both trained with the same budget "
                        f"({r.config.scratch_train.epochs} epochs, the full network's schedule)."
                    ),
                ),
                When(
                    _matched,
                    MetricTable(
                        "",
                        rows=_matched,
                        row_header="target",
                        columns=[
                            Col("search/{row}/macs", "MMACs", format=_mmacs),
                            Col("search/{row}/ofa_accuracy", "OFA, no retraining %", format=_acc),
                            Col("search/{row}/finetuned_accuracy", "OFA fine-tuned %", format=_acc),
                            Col(
                                "scratch/searched_{row}/accuracy",
                                "same arch from scratch %",
                                format=_acc,
                            ),
                            Col(_mbv3_cell, "MobileNetV3 from scratch %"),
                            Col(
                                "compare/{row}/ofa_minus_scratch", "OFA - same arch", format=_signed
                            ),
                            Col(
                                "compare/{row}/ofa_minus_mbv3", "OFA - MobileNetV3", format=_signed
                            ),
                        ],
                    ),
                    "_No target is matched to the MobileNetV3 family (search.match_family)._",
                ),
            ],
        ),
        When(
            lambda r: r.m("cost/ofa_once_seconds") is not None,
            MetricTable(
                "",
                rows=[(label, key) for label, key, _ in COSTS],
                row_header="cost (seconds on this machine)",
                columns=[Col(lambda k, r: fmt(r.m(k), DIGITS[k]), "seconds")],
                note=_cost_note,
            ),
            "_Not all stages have run._",
            title='The cost of "train once"',
        ),
    ],
)


def main(argv: list[str] | None = None) -> int:
    return report_main(SPEC, argv)


if __name__ == "__main__":
    raise SystemExit(main())
