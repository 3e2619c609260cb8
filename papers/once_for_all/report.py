"""Stage ``once_for_all_report``: render ``reports/once_for_all/`` from the stages' outputs.

Writes ``README.md`` (training schedule, PS ablation, predictor and latency table, the
Cortex-M7 instruction table checked on held-out sub-networks, every deployment target, OFA
against MobileNetV3 and against training from scratch, the cost of "train once", the paper's
numbers beside ours), ``claims.json`` and ``figures/*.png``. Differences and ratios are derived
by :func:`derive` from the measured metrics (``metrics/once_for_all/derived.json``); nothing is
typed by hand.
"""

from __future__ import annotations

import itertools
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
    "predictor_curve": "predictor/size_curve.json",
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
    # A gain's lower bound: the mean over seeds minus two standard errors.
    for key in ("mean_gain", "reference_gain"):
        mean, se = g(f"ablation/{key}"), g(f"ablation/{key}_se")
        if mean is not None and se is not None and se == se:
            d[f"ablation/{key}_lcb2"] = mean - 2.0 * se
    # The paper's own cost definition (Table 1): OFA's cost is training once plus measuring the
    # predictor's sub-networks (its "search" column, 40 GPU hours, paid once) for any N;
    # MobileNetV3's is one from-scratch training per scenario (180N).
    mbv3 = nets.get("mbv3_w1")
    paper_once = [*train_parts, g("measure/seconds"), g("predictor/fit_seconds")]
    if mbv3 and all(v is not None for v in paper_once):
        once_p = float(sum(paper_once))
        d["cost/paper_ofa_seconds"] = once_p
        d["cost/paper_mbv3_seconds"] = float(mbv3["train_seconds"])
        d["cost/paper_ratio_n40"] = N_PAPER * mbv3["train_seconds"] / once_p
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
    ps_passes = sum(r.metrics.get(f"{p}/subnet_updates", 0.0) for p in PS_PHASES)
    return (
        "Every phase's length is the budget's: the full network "
        f"{r.config.budget.full} {r.config.budget.unit}, each shrinking phase the paper's share of "
        "it (full : kernel : depth : width = 180 : 125 : 25 + 125 : 25 + 125 epochs). "
        "Sub-network updates (one sub-network's forward + backward over a batch) after the full "
        f"network: progressive shrinking {fmt(ps_passes, 0)}, without PS "
        f"{fmt(r.metrics.get('nops/subnet_updates'), 0)} (both start from the full network and "
        "distil from it). Held-out accuracies are after BN recalibration: the phase's largest and "
        "smallest sub-network, at the largest and smallest resolution."
    )


def _pm(r: ReportData, key: str, *, signed: bool = True) -> str:
    """``mean ± SE`` of a metric and its ``_se`` twin (just the mean when there is no SE)."""
    mean, se = r.m(key), r.m(f"{key}_se")
    if mean is None:
        return "–"
    shown = f"{mean:+.2f}" if signed else f"{mean:.2f}"
    return f"{shown} ± {se:.2f}" if se is not None and se == se else shown


def _main_replicates(r: ReportData) -> list[dict[str, Any]]:
    return [x for x in (run_file(r, "ablation") or {}).get("replicates", []) if x["scale"] == 1.0]


def _ablation_note(r: ReportData) -> str:
    ab, m = run_file(r, "ablation"), r.metrics
    seeds = sorted(x["seed"] for x in _main_replicates(r))
    return (
        f"Mean ± one standard error over {len(seeds)} seeds ({', '.join(map(str, seeds))}): each "
        "seed trains its own full network, shrinking phases and baseline from its own random "
        f"weights, data order and sub-network draws. Test accuracy on {ab['test_images']} images "
        f"at {ab['resolution']} px after BN recalibration. Mean gain over the grid "
        f"{_pm(r, 'ablation/mean_gain')} points ({fmt(m.get('ablation/mean_gain_z'), 2)} "
        "standard errors from zero); PS better on "
        f"{int(m.get('ablation/ps_better_count', 0))} of {int(m.get('ablation/grid_size', 0))} "
        "sub-networks. Paper (Fig. 7, ImageNet): +3.5 on average, 74.8% vs 71.5% at "
        "(D=4, W=3, K=3). The claims below use the gain minus two standard errors: reproduced "
        "only when PS's advantage stands out of the seed-to-seed noise."
    )


def _trend_text(r: ReportData) -> str:
    ab = run_file(r, "ablation")
    reps = (ab or {}).get("replicates", [])
    scales = sorted({x["scale"] for x in reps})
    unit = r.config.budget.unit
    rows = []
    for sc in scales:
        tag = f"trend/x{sc:g}"
        n = int(r.m(f"{tag}/seeds") or 0)
        lengths = ab["lengths"][f"x{sc:g}"]
        rows.append(
            [
                f"{sc:g}x",
                f"{lengths['full']} / {sum(lengths[p] for p in PS_PHASES)} / {lengths['nops']}",
                str(n),
                _acc(r.m(f"{tag}/full_top")),
                _pm(r, f"{tag}/mean_gain"),
                f"{_acc(r.m(f'{tag}/ofa_mbv3'))} / {_acc(r.m(f'{tag}/scratch_mbv3'))}",
                _pm(r, f"{tag}/ofa_minus_scratch"),
            ]
        )
    long_hint = (
        "The larger budgets are the long experiment: `dvc exp run -S "
        "'papers/once_for_all/params.yaml:default.ablation.trend_scales=[0.5,2,4,8]' -S "
        "'papers/once_for_all/params.yaml:default.ablation.trend_seeds=[0,1,2]' "
        "once_for_all_report` (a few hours on 2 cores; every phase and replicate resumes after "
        "an interruption)."
    )
    return (
        "The paper's argument is that sub-networks interfere when trained jointly from the start, "
        "and that training large to small avoids it. If so, PS's gain should appear as the "
        "budget grows (small budgets mostly measure how fast each arm learns). The same "
        "replicate at several budgets (every phase's length times the scale):\n\n"
        + table(
            [
                "budget",
                f"{unit}: full / shrinking phases / no-PS",
                "seeds",
                "full network %",
                "PS gain (grid mean)",
                "OFA / scratch % (MobileNetV3 pattern)",
                "OFA minus scratch",
            ],
            rows,
        )
        + "\n\n"
        + _trend_reading(r, scales)
        + "\n\nOFA minus scratch: the PS supernet's MobileNetV3-pattern sub-network without "
        "retraining, against the same network trained alone from random weights for as long as "
        "the full network. " + long_hint
    )


def _trend_reading(r: ReportData, scales: list[float]) -> str:
    """What the trend says, worded from the numbers (either way)."""
    gains = [r.m(f"trend/x{sc:g}/mean_gain") for sc in scales]
    if len(scales) < 2 or any(g is None for g in gains):
        return ""
    steps = list(itertools.pairwise(gains))
    if all(b > a for a, b in steps):
        shape = "grows with every step of the budget"
    elif all(b < a for a, b in steps):
        shape = "shrinks as the budget grows"
    else:
        shape = "does not change monotonically with the budget"
    listed = ", ".join(f"{g:+.2f} at {sc:g}x" for sc, g in zip(scales, gains, strict=True))
    full = [r.m(f"trend/x{sc:g}/full_top") for sc in scales]
    weak = [f"{sc:g}x" for sc, a in zip(scales, full, strict=True) if a is not None and a < 50.0]
    caveat = (
        f" At {', '.join(weak)} the full network itself stays below 50% (its column): those "
        "supernets have barely started to learn, and their gains say little about interference."
        if weak
        else ""
    )
    return f"**Reading.** PS's mean gain {shape} ({listed}).{caveat}"


def _interference_reading(r: ReportData) -> str:
    """What the interference arms say, worded from the numbers (either way)."""
    inter, se = r.m("interference/interference_nops"), r.m("interference/interference_nops_se")
    ps = r.m("interference/interference_ps")
    if inter is None or se is None:
        return ""
    if inter - 2 * se > 0:
        first = (
            f"Training every sub-network jointly measurably hurts the largest one ({inter:+.2f} "
            f"± {se:.2f} points against training it alone): the interference the paper invokes "
            "is present at this budget"
        )
    elif inter + 2 * se < 0:
        first = (
            f"Training every sub-network jointly helps the largest one ({-inter:+.2f} ± {se:.2f} "
            "points over training it alone): no interference at this budget"
        )
    else:
        first = (
            f"Joint training moves the largest sub-network by {-inter:+.2f} ± {se:.2f} points "
            "against training it alone, within two standard errors of no change"
        )
    second = (
        f"; inside the PS supernet it is {abs(ps):.2f} points "
        f"{'above' if ps < 0 else 'below'} the network trained alone."
        if ps is not None
        else "."
    )
    return "**Reading.** " + first + second


def _interference_text(r: ReportData) -> str:
    if r.m("interference/alone") is None:
        return "_The interference arms did not run (ablation.interference)._"
    space = r.config.space
    top = f"D={max(space.depths)}, W={max(space.expand_ratios)}, K={max(space.kernel_sizes)}"
    n = len([x for x in _main_replicates(r) if "interference" in x])
    rows = [
        [
            "the full network (phase `full`, before any shrinking)",
            _acc(r.m("interference/full_only")),
        ],
        ["trained on alone, as many steps as the no-PS phase", _acc(r.m("interference/alone"))],
        ["inside the no-PS supernet (trained jointly)", _acc(r.m("interference/joint_nops"))],
        ["inside the PS supernet", _acc(r.m("interference/joint_ps"))],
    ]
    krows = []
    for k in sorted(space.kernel_sizes):
        krows.append(
            [
                f"K={k} everywhere",
                _acc(r.m(f"interference/kernel/k{k}_transform")),
                _acc(r.m(f"interference/kernel/k{k}_plain")),
                _pm(r, f"interference/kernel/k{k}_gain"),
            ]
        )
    return (
        f"**Interference.** The largest sub-network ({top}) on the test set, mean of {n} seeds:\n\n"
        + table(["largest sub-network", "test %"], rows)
        + "\n\nTraining the small sub-networks with it costs the largest "
        f"{_pm(r, 'interference/interference_nops')} points without PS and "
        f"{_pm(r, 'interference/interference_ps')} with PS (alone minus joint; positive: "
        "the others interfere). "
        + _interference_reading(r)
        + "\n\n**Kernel transformation matrices.** The elastic-kernel phase "
        "trained twice from the same full network: with the learned transformation matrices "
        "(the paper's) and with them fixed at identity (a smaller kernel is the plain centre "
        "of the larger one); sub-networks at the largest depth and width:\n\n"
        + table(["kernel", "with matrices %", "plain centre %", "matrices' gain"], krows)
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
        f"bounds what any predictor can reach. RMSE against the number of measurements trained "
        f"on (same held-out set): {_curve_text(r)}. The paper's 0.21 used 16K measurements on "
        "10K images each.\n\nLatency table: "
        f"{fmt(m.get('latency/entries'), 0)} entries; predicting whole sub-networks "
        f"as the sum of their blocks errs by {fmt(m.get('latency/mean_abs_pct_error'), 1)}% "
        f"on average (worst {fmt(m.get('latency/max_abs_pct_error'), 1)}%, rank "
        f"correlation {fmt(m.get('latency/spearman'), 3)}) over "
        f"{cfg.latency.validate_archs} measured random sub-networks."
    )


def _curve_text(r: ReportData) -> str:
    curve = run_file(r, "predictor_curve") or []
    parts = [f"{int(c['n_train'])}: {c['valid_rmse']:.3f}" for c in curve]
    if not parts:
        return "not measured"
    return ", ".join(parts) + f" (predicting the mean: {curve[0]['mean_baseline_rmse']:.3f})"


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
        "**The paper's definition** (Table 1: OFA 1,200 training + 40 search GPU hours, paid "
        "once; MobileNetV3-Large 180 GPU hours per scenario, 7.2K for N=40, a ratio of 6.0): "
        f"OFA once {fmt(r.m('cost/paper_ofa_seconds'), 0)} s (full network, shrinking, measuring "
        f"the predictor's sub-networks, fitting it), MobileNetV3 from scratch "
        f"{fmt(r.m('cost/paper_mbv3_seconds'), 0)} s per scenario: ratio at N={N_PAPER} "
        f"{fmt(r.m('cost/paper_ratio_n40'), 2)}x. **Ours, counting every search:** "
        "for N targets OFA costs once + N searches, training from scratch N trainings. "
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
    return _mmacs(next(a["macs"] for a in _main_replicates(r)[0]["grid"] if a["name"] == name))


def _acc_se(template: str) -> Callable[[str, ReportData], str]:
    """A cell ``accuracy ± SE`` of the metric ``template`` (``{row}`` the row key)."""

    return lambda name, r: _pm(r, template.format(row=name), signed=False)


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
        f"Schedule: the paper's phases, sub-networks per step and phase proportions, with the full "
        f"network trained {r.config.budget.full} {r.config.budget.unit} of "
        f"{r.config.phases['full'].train.batch_size} images "
        f"({fmt(m.get('full/epochs'), 2)} epochs) instead of 180 epochs (see the table above); "
        f"the ablation over {len(r.config.ablation.seeds)} seeds at this budget and one seed at "
        f"{', '.join(f'{x:g}x' for x in r.config.ablation.trend_scales) or 'no other budget'}.",
        f"Predictor: {r.config.predictor.samples} measured sub-networks instead of 16K.",
        "Latency: a lookup table of this CPU (batch 1) instead of phones.",
        f"Time of the OFA stages on this machine: {fmt(m.get('time/total_stage_seconds', 0) / 60, 1)} "
        "minutes (sum of the stages' wall times; work resumed from checkpoints (training "
        "epochs, the search, the from-scratch training) counts with the time it took when it "
        "ran).",
    ]


def _length(train: Any) -> str:
    """A training length as configured (``50 steps``, ``25 epochs``)."""
    if train is None:
        return "none"
    return f"{train.steps} steps" if train.steps is not None else f"{train.epochs} epoch(s)"


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
                Col(lambda p, r: str(r.config.lengths()[p]), "length"),
                Col(lambda p, r: fmt(r.config.phases[p].train.optimizer.lr), "LR"),
                Col("{row}/subnet_updates", "sub-net updates", digits=0),
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
                    lambda r: _main_replicates(r),
                    MetricTable(
                        "",
                        rows=lambda r: [
                            (f"D={a['d']}, W={a['w']}, K={a['k']}", a["name"])
                            for a in _main_replicates(r)[0]["grid"]
                        ],
                        row_header="sub-network (uniform)",
                        columns=[
                            Col(_ablation_macs, "MMACs"),
                            Col(_acc_se("ablation/{row}/ps_accuracy"), "with PS (%)"),
                            Col(_acc_se("ablation/{row}/nops_accuracy"), "without PS (%)"),
                            Col(lambda n, r: _pm(r, f"ablation/{n}/gain"), "gain"),
                        ],
                        note=_ablation_note,
                    ),
                    "_The ablation stage has not run._",
                ),
                _figure("ablation.png", "PS ablation", figures.ablation, "ablation"),
            ],
        ),
        Group(
            "Does the gain grow with training? (budget trend)",
            [
                When(lambda r: _main_replicates(r), Text("", _trend_text), "_Not run._"),
                _figure("trend.png", "budget trend", figures.trend, "ablation"),
            ],
        ),
        Text("The mechanism: interference and the kernel transformation", _interference_text),
        Group(
            "Accuracy predictor and latency table (Section 3.4)",
            [
                Text("", _predictor_text),
                _figure("predictor.png", "predictor", figures.predictor, "predictor"),
                _figure(
                    "predictor_size.png",
                    "predictor RMSE against measurements",
                    figures.predictor_curve,
                    "predictor_curve",
                ),
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
                        f"({_length(r.config.search.finetune)})."
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
                        f"({_length(r.config.scratch_train)}, the full network's schedule)."
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
