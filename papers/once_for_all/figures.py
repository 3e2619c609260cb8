"""The Once-for-All report's figures, drawn from the stages' JSON outputs. Each returns
``False`` when the stage behind it has not run (the report then says so instead of a picture)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.report.figures import pyplot, save


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


def ablation(ab: dict[str, Any] | None, path: Path) -> bool:
    """Test accuracy of the ablation's grid with and without progressive shrinking (Fig. 7)."""
    if not ab:
        return False
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
