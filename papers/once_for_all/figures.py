"""The Once-for-All report's figures, drawn from the stages' JSON outputs. Each returns
``False`` when the stage behind it has not run (the report then says so instead of a picture)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from common.report.figures import pyplot, save
from common.stats import mean_se


def curves(search: dict[str, Any] | None, scratch: dict[str, Any] | None, path: Path) -> bool:
    """Accuracy against MACs and measured latency: OFA's specialised sub-networks (without and
    with fine-tuning), the MobileNetV3 family and the searched architectures from scratch."""
    targets = (search or {}).get("targets", {})
    nets = (scratch or {}).get("networks", {})
    if not targets:
        return False
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    # The same architectures trained alone: drawn at their OFA twin's cost (one arch, one MAC
    # count and one latency; the scratch stage's own timing is a second noisy sample).
    same = [
        (targets[n["name"].removeprefix("searched_")], n)
        for n in nets.values()
        if n["kind"] == "searched" and n["name"].removeprefix("searched_") in targets
    ]
    for ax, key, xlabel, scale in (
        (axes[0], "macs", "MMACs", 1e-6),
        (axes[1], "latency_ms_measured", "latency on this CPU, batch 1 (ms)", 1.0),
    ):
        fam = sorted((n for n in nets.values() if n["kind"] == "mobilenetv3"), key=lambda n: n[key])
        rows = sorted(targets.values(), key=lambda r: r[key])
        ft = [r for r in rows if r.get("finetuned_accuracy") is not None]
        series = [  # (points as (cost row, accuracy), style, colour, label, more options)
            (
                [(n, n["accuracy"]) for n in fam],
                "s--",
                "tab:gray",
                "MobileNetV3 family, from scratch",
                {},
            ),
            ([(r, r["ofa_accuracy"]) for r in rows], "o-", "tab:red", "OFA, no retraining", {}),
            ([(r, r["finetuned_accuracy"]) for r in ft], "^:", "tab:purple", "OFA, fine-tuned", {}),
            (
                [(t, n["accuracy"]) for t, n in same],
                "x",
                "tab:blue",
                "searched arch, from scratch",
                {"markersize": 9},
            ),
        ]
        for points, style, color, label, more in series:
            if points:
                xs = [row[key] * scale for row, _ in points]
                ax.plot(xs, [acc for _, acc in points], style, color=color, label=label, **more)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy (%)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Accuracy against MACs and measured latency")
    save(fig, path)
    return True


def _mean_se(values: list[float]) -> tuple[float, float]:
    """:func:`common.stats.mean_se` with no bar (0) where one value has no standard error."""
    mean, se = mean_se(values)
    return mean, 0.0 if math.isnan(se) else se


def ablation(ab: dict[str, Any] | None, path: Path) -> bool:
    """Test accuracy of the ablation's grid with and without progressive shrinking (Fig. 7):
    the mean over the budget-1 seeds, one standard error as the bar."""
    main = [r for r in (ab or {}).get("replicates", []) if r["scale"] == 1.0]
    if not main:
        return False
    plt = pyplot()
    grid = main[0]["grid"]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    x = range(len(grid))
    stats = {
        key: [_mean_se([r["grid"][i][key] for r in main]) for i in x] for key in ("ps", "nops")
    }
    for key, shift, label, color in (
        ("nops", -0.2, "without PS", "tab:gray"),
        ("ps", 0.2, "with PS", "tab:red"),
    ):
        ax.bar(
            [i + shift for i in x],
            [m for m, _ in stats[key]],
            0.4,
            yerr=[se for _, se in stats[key]],
            capsize=3,
            label=label,
            color=color,
        )
    ax.set_xticks(list(x), [f"D={g['d']}\nW={g['w']}\nK={g['k']}" for g in grid], fontsize=8)
    vals = [m for key in stats for m, _ in stats[key]]
    ax.set_ylim(max(0.0, min(vals) - 5), min(100.0, max(vals) + 3))
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    ax.set_title(f"Progressive shrinking ablation (cf. Fig. 7), mean of {len(main)} seeds +/- 1 SE")
    save(fig, path)
    return True


def trend(ab: dict[str, Any] | None, path: Path) -> bool:
    """The PS gain and OFA minus scratch against the training budget (each replicate a dot,
    the mean with one standard error as the line)."""
    reps = (ab or {}).get("replicates", [])
    scales = sorted({r["scale"] for r in reps})
    if len(scales) < 2:
        return False
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, title in (
        (axes[0], "mean_gain", "PS minus no-PS (mean over the grid)"),
        (axes[1], "ofa_minus_scratch", "OFA sub-network minus the same net from scratch"),
    ):
        for r in reps:
            ax.plot(r["scale"], r[key], "o", color="tab:gray", alpha=0.5, markersize=4)
        stats = [_mean_se([r[key] for r in reps if r["scale"] == s]) for s in scales]
        ax.errorbar(
            scales,
            [m for m, _ in stats],
            yerr=[se for _, se in stats],
            fmt="o-",
            color="tab:red",
            capsize=3,
            label="mean +/- 1 SE",
        )
        ax.axhline(0.0, color="k", lw=0.8)
        if key == "mean_gain":
            ax.axhline(3.5, color="tab:blue", ls="--", lw=0.9, label="paper (Fig. 7, ImageNet)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(scales, [f"{s:g}x" for s in scales])
        ax.set_xlabel("training budget (x the profile's)")
        ax.set_ylabel("points")
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=8)
    save(fig, path)
    return True


def predictor_curve(curve: list[dict[str, Any]] | None, path: Path) -> bool:
    """Held-out RMSE of the accuracy predictor against the sub-networks it was trained on."""
    if not curve:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    n = [c["n_train"] for c in curve]
    ax.plot(n, [c["valid_rmse"] for c in curve], "o-", color="tab:red", label="predictor")
    ax.plot(
        n,
        [c["mean_baseline_rmse"] for c in curve],
        "--",
        color="tab:gray",
        label="predicting the mean",
    )
    ax.set_xscale("log", base=2)
    ax.set_xticks(n, [f"{int(v)}" for v in n])
    ax.set_xlabel("measured sub-networks trained on")
    ax.set_ylabel("held-out RMSE (points)")
    ax.legend(fontsize=8)
    ax.set_title("Predictor RMSE against measurements")
    save(fig, path)
    return True


def predictor(pred: dict[str, Any] | None, path: Path) -> bool:
    """Predicted against measured accuracy of the predictor's held-out sub-networks."""
    if not pred or not pred.get("valid"):
        return False
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
    save(fig, path)
    return True
