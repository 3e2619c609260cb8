"""Stage ``once_for_all_report``: render ``reports/once_for_all/`` from the stages' outputs.

Writes ``README.md`` (training schedule, PS ablation, predictor and latency table, the
Cortex-M7 instruction table checked on held-out sub-networks, every
deployment target, OFA against MobileNetV3 and against training from scratch, the cost of "train
once", the paper's numbers beside ours), ``claims.json`` and ``figures/*.png``. Differences and
ratios are derived here from the measured metrics; nothing is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from common.ofa.mcu_cost import McuInstructionTable
from common.report import Section, evaluate_claims, fmt, load_claims, table
from common.report.claims import load_metrics
from common.report.figures import pyplot, save
from common.report.publish import publish_report
from common.stage import run_stage
from papers.once_for_all.config import PS_PHASES, OFAProfile
from papers.once_for_all.stage import EXPERIMENT, FLAGS, load_config

STAGE = "once_for_all_report"
TITLE = "Once-for-All (ICLR 2020): replication report"
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


def _log10_subnets(cfg: OFAProfile) -> float:
    s = cfg.space
    per_block = len(s.kernel_sizes) * len(s.expand_ratios)
    per_stage = sum(per_block**d for d in s.depths)
    return s.num_stages * math.log10(per_stage)


def derive(
    metrics: dict[str, float], cfg: OFAProfile, search: dict[str, Any], scratch: dict[str, Any]
) -> dict[str, float]:
    """Differences and ratios the claims compare, from the measured metrics."""
    d = dict(metrics)
    g = metrics.get
    d["space/log10_subnets"] = _log10_subnets(cfg)
    targets = search.get("targets", {})
    nets = scratch.get("networks", {})
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
    once_parts = [g(f"{p}/train_seconds") for p in ONCE_PHASES]
    once_parts += [g("measure/seconds"), g("predictor/fit_seconds"), g("latency/build_seconds")]
    if all(v is not None for v in once_parts) and targets and nets:
        once = float(sum(once_parts))
        search_s = sum(r["search_seconds"] for r in targets.values()) / len(targets)
        scratch_s = sum(n["train_seconds"] for n in nets.values()) / len(nets)
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
            if f"ablation/{key}" in d:
                d[f"imagenet/ablation/{key}"] = d[f"ablation/{key}"]
        for name, row in targets.items():
            acc = row.get("finetuned_accuracy") or row["ofa_accuracy"]
            d[f"imagenet/search/{name}/best_accuracy"] = acc
    d["time/total_stage_seconds"] = sum(v for k, v in metrics.items() if k.startswith("time/"))
    return d


# ---------------------------------------------------------------------- tables
def _acc(v: float | None) -> str:
    """An accuracy (or a difference of accuracies) with two decimals."""
    return "–" if v is None or v != v else f"{v:.2f}"


def _mmacs(macs: float | None) -> str:
    return "–" if macs is None else f"{macs / 1e6:.2f}"


def schedule_table(m: dict[str, float], cfg: OFAProfile) -> str:
    rows = []
    for p in ("full", *PS_PHASES, "nops"):
        ph = cfg.phases[p]
        rows.append(
            [
                f"`{p}`",
                ph.label,
                "/".join(map(str, sorted(ph.kernel_sizes, reverse=True))),
                "/".join(map(str, sorted(ph.expand_ratios, reverse=True))),
                "/".join(map(str, sorted(ph.depths, reverse=True))),
                ph.subnets_per_step,
                ph.train.epochs,
                fmt(ph.train.optimizer.lr),
                fmt(m.get(f"{p}/subnet_passes"), 0),
                fmt(m.get(f"{p}/train_seconds"), 0),
                _acc(m.get(f"{p}/max/holdout_accuracy")),
                _acc(m.get(f"{p}/min/holdout_accuracy")),
            ]
        )
    ps_passes = sum(m.get(f"{p}/subnet_passes", 0.0) for p in PS_PHASES)
    return (
        table(
            [
                "phase",
                "what",
                "kernel",
                "expand",
                "depth",
                "sub-nets/step",
                "epochs",
                "LR",
                "sub-net passes",
                "seconds",
                "largest (held-out %)",
                "smallest (held-out %)",
            ],
            rows,
        )
        + f"\n\nSub-network passes (forward + backward over one batch) after the full network: "
        f"progressive shrinking {fmt(ps_passes, 0)}, without PS {fmt(m.get('nops/subnet_passes'), 0)} "
        "(both start from the full network and distil from it). Held-out accuracies are after BN "
        "recalibration: the phase's largest and smallest sub-network, at the largest and smallest "
        "resolution."
    )


def ablation_table(ab: dict[str, Any] | None, m: dict[str, float]) -> str:
    if not ab:
        return "_The ablation stage has not run._"
    rows = [
        [
            f"D={r['d']}, W={r['w']}, K={r['k']}",
            _mmacs(r["macs"]),
            _acc(r["ps"]),
            _acc(r["nops"]),
            f"{r['gain']:+.2f}",
        ]
        for r in ab["rows"]
    ]
    return (
        table(["sub-network (uniform)", "MMACs", "with PS (%)", "without PS (%)", "gain"], rows)
        + f"\n\nTest accuracy on {ab['test_images']} images at {ab['resolution']} px after BN "
        f"recalibration. Mean gain {m.get('ablation/mean_gain', float('nan')):+.2f} points; PS "
        f"better on {int(m.get('ablation/ps_better_count', 0))} of "
        f"{int(m.get('ablation/grid_size', 0))}. Paper (Fig. 7, ImageNet): +3.5 on average, "
        "74.8% vs 71.5% at (D=4, W=3, K=3)."
    )


def targets_table(search: dict[str, Any]) -> str:
    rows = []
    for name, r in search.get("targets", {}).items():
        unit = {"macs": "MACs", "latency_ms": "ms", "sram_kb": "kB", "mcu_minstr": "M instr."}[
            r["metric"]
        ]
        rows.append(
            [
                f"`{name}`",
                r["label"],
                f"{fmt(r['constraint_value'], 4)} {unit}",
                r["resolution"],
                _mmacs(r["macs"]),
                f"{r['latency_ms_table']:.2f} / {r['latency_ms_measured']:.2f}",
                f"{r['sram_kb']:.1f}",
                fmt(r.get("mcu_minstr"), 3),
                _acc(r["predicted_accuracy"]),
                _acc(r["ofa_accuracy"]),
                _acc(r.get("finetuned_accuracy")),
                f"{r['search_seconds']:.1f}",
            ]
        )
    return table(
        [
            "target",
            "constraint",
            "achieved",
            "px",
            "MMACs",
            "latency ms (table / measured)",
            "MCU peak SRAM kB",
            "Cortex-M7 M instr. (table)",
            "predicted %",
            "OFA %",
            "fine-tuned %",
            "search s",
        ],
        rows,
    )


def mcu_table_section(mt: dict[str, Any] | None, m: dict[str, float]) -> str:
    """Predicted against measured Cortex-M7 instructions of the held-out sub-networks."""
    if mt is None:
        return "The MCU instruction table was not built (stage `once_for_all_mcu_table`)."
    tbl = McuInstructionTable.from_dict(mt)
    meta = tbl.meta
    check = meta.get("validation", {})
    rows = []
    for i, r in enumerate(check.get("rows", [])):
        a = r["arch"]
        rows.append(
            [
                i,
                a["r"],
                "-".join(str(d) for d in a["d"]),
                f"{r['predicted'] / 1e6:.3f}",
                f"{r['measured'] / 1e6:.3f}",
                f"{r['rel_error']:.2f}",
                f"{r['missing_ops']} / {r['ops']}",
                f"{tbl.latency_ms_estimate(r['measured']):.1f}",
            ]
        )
    build = meta.get("measurements", {}).get("build", [])
    fallback = m.get("mcu_table/fallback_fraction")
    text = (
        "Each sub-network is deployed on the int8 MCU engine (TinyEngine-style C, -O2, "
        "unlimited per-channel code budget) and run once on the emulated Cortex-M7 with a "
        "per-operator profile: exact instruction counts. The table "
        f"({fmt(m.get('mcu_table/entries'), 0)} operator entries) was built from "
        f"{len(build)} sub-networks; it predicts a sub-network as the sum of its operators' "
        "entries (operators it lacks: the nearest entry scaled by MACs). On "
        f"{fmt(m.get('mcu_table/validate_archs'), 0)} held-out random sub-networks it errs by "
        f"{fmt(m.get('mcu_table/mean_rel_error'), 2)}% on average (worst "
        f"{fmt(m.get('mcu_table/max_rel_error'), 2)}%, rank correlation "
        f"{fmt(m.get('mcu_table/spearman'), 3)}); "
        f"{fmt(None if fallback is None else 100 * fallback, 1)}% "
        "of their operators were not in the table. The latency column is an *estimate*, not a "
        f"measurement: instructions at an assumed IPC of 1 and {tbl.clock_hz / 1e6:.0f} MHz.\n\n"
    )
    return text + table(
        [
            "held-out",
            "px",
            "depths",
            "M instr. (table)",
            "M instr. (measured)",
            "error %",
            "ops not in table",
            "latency estimate ms",
        ],
        rows,
    )


def compare_table(search: dict[str, Any], scratch: dict[str, Any], m: dict[str, float]) -> str:
    nets = scratch.get("networks", {})
    rows = []
    for name, r in search.get("targets", {}).items():
        w = r.get("matches_family")
        if w is None:
            continue
        mbv3 = nets.get(f"mbv3_w{w:g}", {})
        same = nets.get(f"searched_{name}", {})
        rows.append(
            [
                f"`{name}`",
                _mmacs(r["macs"]),
                _acc(r["ofa_accuracy"]),
                _acc(r.get("finetuned_accuracy")),
                _acc(same.get("accuracy")),
                f"w{w:g}: {_acc(mbv3.get('accuracy'))} ({_mmacs(mbv3.get('macs'))} MMACs)",
                f"{m.get(f'compare/{name}/ofa_minus_scratch', float('nan')):+.2f}",
                f"{m.get(f'compare/{name}/ofa_minus_mbv3', float('nan')):+.2f}",
            ]
        )
    if not rows:
        return "_No target is matched to the MobileNetV3 family (search.match_family)._"
    return table(
        [
            "target",
            "MMACs",
            "OFA, no retraining %",
            "OFA fine-tuned %",
            "same arch from scratch %",
            "MobileNetV3 from scratch %",
            "OFA - same arch",
            "OFA - MobileNetV3",
        ],
        rows,
    )


def cost_table(m: dict[str, float], search: dict[str, Any], scratch: dict[str, Any]) -> str:
    if "cost/ofa_once_seconds" not in m:
        return "_Not all stages have run._"
    n_t = len(search.get("targets", {}))
    rows = [
        [
            "OFA, once: full network + progressive shrinking",
            fmt(sum(m.get(f"{p}/train_seconds", 0) for p in ONCE_PHASES), 0),
        ],
        ["OFA, once: measuring the predictor's sub-networks", fmt(m.get("measure/seconds"), 0)],
        ["OFA, once: training the predictor", fmt(m.get("predictor/fit_seconds"), 1)],
        ["OFA, once: latency table", fmt(m.get("latency/build_seconds"), 1)],
        ["OFA, per target: evolutionary search (mean)", fmt(m.get("cost/search_seconds_mean"), 1)],
        [
            "From scratch, per target: one training (mean)",
            fmt(m.get("cost/scratch_seconds_mean"), 0),
        ],
    ]
    return (
        table(["cost (seconds on this machine)", "seconds"], rows)
        + f"\n\nFor N targets OFA costs once + N searches, training from scratch N trainings. "
        f"Ratio (from scratch / OFA): N={n_t} (this run's targets): "
        f"{fmt(m.get(f'cost/ratio_n{n_t}'), 2)}x; N={N_PAPER} (the paper's Table 1): "
        f"{fmt(m.get('cost/ratio_n40'), 2)}x. OFA pays off from "
        f"{fmt(m.get('cost/break_even_targets'), 1)} targets on. Paper (Table 1, N=40): OFA 1.2K "
        "GPU hours against 7.2K for MobileNetV3-Large (180N) and 20K for ProxylessNAS."
    )


# ---------------------------------------------------------------------- figures
def fig_curves(search: dict[str, Any], scratch: dict[str, Any], path: Path) -> Path | None:
    targets = search.get("targets", {})
    nets = scratch.get("networks", {})
    if not targets:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, xlabel, scale in (
        (axes[0], "macs", "MMACs", 1e-6),
        (axes[1], "latency_ms_measured", "latency on this CPU, batch 1 (ms)", 1.0),
    ):
        fam = sorted((n for n in nets.values() if n["kind"] == "mobilenetv3"), key=lambda n: n[key])
        if fam:
            ax.plot(
                [n[key] * scale for n in fam],
                [n["accuracy"] for n in fam],
                "s--",
                color="tab:gray",
                label="MobileNetV3 family, from scratch",
            )
        rows = sorted(targets.values(), key=lambda r: r[key])
        ax.plot(
            [r[key] * scale for r in rows],
            [r["ofa_accuracy"] for r in rows],
            "o-",
            color="tab:red",
            label="OFA, no retraining",
        )
        ft = [r for r in rows if r.get("finetuned_accuracy") is not None]
        if ft:
            ax.plot(
                [r[key] * scale for r in ft],
                [r["finetuned_accuracy"] for r in ft],
                "^:",
                color="tab:purple",
                label="OFA, fine-tuned",
            )
        # The same architectures trained alone: drawn at their OFA twin's cost (one arch, one
        # MAC count and one latency; the scratch stage's own timing is a second noisy sample).
        same = [
            (targets[n["name"].removeprefix("searched_")], n)
            for n in nets.values()
            if n["kind"] == "searched" and n["name"].removeprefix("searched_") in targets
        ]
        if same:
            ax.plot(
                [t[key] * scale for t, _ in same],
                [n["accuracy"] for _, n in same],
                "x",
                color="tab:blue",
                markersize=9,
                label="searched arch, from scratch",
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy (%)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Accuracy against MACs and measured latency")
    return save(fig, path)


def fig_ablation(ab: dict[str, Any] | None, path: Path) -> Path | None:
    if not ab:
        return None
    plt = pyplot()
    rows = ab["rows"]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    x = range(len(rows))
    ax.bar(
        [i - 0.2 for i in x], [r["nops"] for r in rows], 0.4, label="without PS", color="tab:gray"
    )
    ax.bar([i + 0.2 for i in x], [r["ps"] for r in rows], 0.4, label="with PS", color="tab:red")
    ax.set_xticks(list(x), [f"D={r['d']}\nW={r['w']}\nK={r['k']}" for r in rows], fontsize=8)
    lo = min(min(r["ps"], r["nops"]) for r in rows)
    hi = max(max(r["ps"], r["nops"]) for r in rows)
    ax.set_ylim(max(0.0, lo - 5), min(100.0, hi + 3))
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    ax.set_title("Progressive shrinking ablation (cf. Fig. 7)")
    return save(fig, path)


def fig_predictor(pred: dict[str, Any] | None, path: Path) -> Path | None:
    if not pred or not pred.get("valid"):
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    meas = [v["measured"] for v in pred["valid"]]
    pr = [v["predicted"] for v in pred["valid"]]
    ax.scatter(meas, pr, s=14)
    lo, hi = min(meas + pr), max(meas + pr)
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("measured held-out accuracy (%)")
    ax.set_ylabel("predicted (%)")
    ax.set_title("Accuracy predictor (held-out sub-networks)")
    return save(fig, path)


def scaled_down(profile: str, cfg: OFAProfile, m: dict[str, float]) -> list[str]:
    s, d = cfg.space, cfg.data
    res = s.resolution_choices()
    lines = [
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
        f"Predictor: {cfg.predictor.samples} measured sub-networks instead of 16K.",
        "Latency: a lookup table of this CPU (batch 1) instead of phones.",
        f"Time of the OFA stages on this machine: {fmt(m.get('time/total_stage_seconds', 0) / 60, 1)} "
        "minutes (sum of the stages' wall times; work resumed from checkpoints (training "
        "epochs, the search, the from-scratch training) counts with the time it took when it "
        "ran).",
    ]
    return lines


def run(args: argparse.Namespace) -> None:
    profile, cfg = load_config(args.params)
    files = sorted(p for p in args.metrics_dir.glob("*.json"))
    runs: Path = args.runs

    def maybe(path: Path) -> Any:
        return json.loads(path.read_text()) if path.is_file() else None

    search = maybe(runs / "search" / "results.json") or {}
    scratch = maybe(runs / "scratch" / "results.json") or {}
    ab = maybe(runs / "ablation.json")
    pred = maybe(runs / "predictor" / "validation.json")
    mcu = maybe(runs / "mcu_table.json")
    metrics = derive(load_metrics(files), cfg, search, scratch)
    results = evaluate_claims(
        load_claims(args.claims), metrics, scale=lambda c: f"{profile} profile"
    )
    out: Path = args.out
    figs = out / "figures"
    curves = fig_curves(search, scratch, figs / "curves.png")
    abl = fig_ablation(ab, figs / "ablation.png")
    prd = fig_predictor(pred, figs / "predictor.png")

    def img(p: Path | None, alt: str) -> str:
        return "" if p is None else f"\n\n![{alt}](figures/{p.name})"

    sections = [
        Section("Training: progressive shrinking (Section 3.3)", schedule_table(metrics, cfg)),
        Section(
            "Progressive shrinking against training all sub-networks jointly (Fig. 7)",
            ablation_table(ab, metrics) + img(abl, "PS ablation"),
        ),
        Section(
            "Accuracy predictor and latency table (Section 3.4)",
            f"Predictor: {fmt(metrics.get('predictor/n_train'), 0)} sub-networks to train on, "
            f"{fmt(metrics.get('predictor/n_valid'), 0)} held out: RMSE "
            f"{fmt(metrics.get('predictor/valid_rmse'), 3)} points (the measured accuracies spread "
            f"with a standard deviation of {fmt(metrics.get('predictor/accuracy_std'), 3)}), rank "
            f"correlation {fmt(metrics.get('predictor/valid_spearman'), 3)}. Each measurement is a "
            f"held-out accuracy on {cfg.data.holdout_images} images, whose own binomial noise "
            f"bounds what any predictor can reach.\n\nLatency table: "
            f"{fmt(metrics.get('latency/entries'), 0)} entries; predicting whole sub-networks "
            f"as the sum of their blocks errs by {fmt(metrics.get('latency/mean_abs_pct_error'), 1)}% "
            f"on average (worst {fmt(metrics.get('latency/max_abs_pct_error'), 1)}%, rank "
            f"correlation {fmt(metrics.get('latency/spearman'), 3)}) over "
            f"{cfg.latency.validate_archs} measured random sub-networks." + img(prd, "predictor"),
        ),
        Section("Cortex-M7 instruction table (MCU engine)", mcu_table_section(mcu, metrics)),
        Section(
            "Many deployment targets, one training",
            "Every target below was specialised from the same supernet by the evolutionary "
            "search (its constraint is never exceeded by construction). Accuracies are on the "
            "test set; OFA's without any retraining, then after a short fine-tune "
            f"({cfg.search.finetune.epochs if cfg.search.finetune else 0} epoch(s)).\n\n"
            + targets_table(search)
            + img(curves, "accuracy curves"),
        ),
        Section(
            "OFA against training from scratch (Table 1, abstract)",
            "Each MobileNetV3-matched target is compared with its own architecture trained from "
            "scratch and with the MobileNetV3 family member of the same MACs, both trained with "
            f"the same budget ({cfg.scratch_train.epochs} epochs, the full network's schedule).\n\n"
            + compare_table(search, scratch, metrics),
        ),
        Section('The cost of "train once"', cost_table(metrics, search, scratch)),
    ]
    publish_report(
        args.out,
        paper="once_for_all",
        title=TITLE,
        stage=STAGE,
        intro=INTRO,
        profile=profile,
        results=results,
        sections=sections,
        scaled_down=scaled_down(profile, cfg, metrics),
        experiment=EXPERIMENT,
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage(
        __doc__.split("\n")[0], ["claims", "runs", "metrics-dir", "out"], run, argv, catalogue=FLAGS
    )


if __name__ == "__main__":
    raise SystemExit(main())
