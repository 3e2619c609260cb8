"""The report's figures: each ``draw(r, path)`` reads what the stages wrote (``r.args.metrics_dir``,
``r.args.runs``) and saves a PNG, or returns ``False`` when its stage did not run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from common.compress import read_compressed
from common.io import read_history
from common.report.figures import pyplot, save
from common.report.spec import ReportData
from papers.deep_compression.stage import load_network

LABELS = {
    "lenet300": "LeNet-300-100",
    "lenet5": "LeNet-5",
    "vgg": "VGG-style analogue (colour digits)",
    "alexnet": "AlexNet",
    "vgg16": "VGG-16",
}
NETS = ("lenet300", "lenet5", "vgg")
STAGES = {  # history file prefix -> (colour, legend)
    "baseline": ("tab:blue", "training"),
    "pruned": ("tab:orange", "prune + retrain"),
    "compressed": ("tab:green", "centroid fine-tuning"),
}


def _panels(plt: Any, n: int) -> tuple[Any, list[Any]]:
    """A row of ``n`` panels, one per network."""
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.4), squeeze=False)
    return fig, list(axes[0])


def _finish(fig: Any, title: str, path: Path) -> None:
    fig.suptitle(title, y=1.02)
    fig.tight_layout()
    save(fig, path)


def _save_panel(fig: Any, ax: Any, path: Path, title: str, xlabel: str, ylabel: str) -> bool:
    """Label a one-panel figure, add its legend and save it."""
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    save(fig, path)
    return True


def training(r: ReportData, path: Path) -> bool:
    """Test error per epoch through training, pruning and fine-tuning, per network."""
    directory = r.args.metrics_dir
    nets = [n for n in NETS if (directory / f"baseline_{n}_history.csv").is_file()]
    if not nets:
        return False
    plt = pyplot()
    fig, axes = _panels(plt, len(nets))
    for ax, net in zip(axes, nets, strict=True):
        offset = 0
        for kind, (color, label) in STAGES.items():
            file = directory / f"{kind}_{net}_history.csv"
            hist = [h for h in read_history(file) if "eval_error" in h] if file.is_file() else []
            if hist:
                xs = [offset + i + 1 for i in range(len(hist))]
                ys = [h["eval_error"] for h in hist]
                ax.plot(xs, ys, marker=".", color=color, label=label)
                offset = xs[-1]
        ax.set_title(LABELS[net])
        ax.set_xlabel("epoch (all stages in sequence)")
        ax.set_ylabel("test error (%)")
        floor = min(min(line.get_ydata()) for line in ax.get_lines())
        ax.set_ylim(0, 4 * floor)  # the first epochs are off the chart; the stages are what matter
        ax.legend(fontsize=8)
    _finish(fig, "Test error through the pipeline", path)
    return True


def sensitivity(r: ReportData, path: Path) -> bool:
    """Error against the fraction kept when one layer at a time is pruned (no retraining)."""
    data = {n: r.json(r.args.runs / "pruned" / n / "sensitivity.json") for n in NETS}
    data = {k: v for k, v in data.items() if v}
    if not data:
        return False
    plt = pyplot()
    fig, axes = _panels(plt, len(data))
    for ax, (net, curves) in zip(axes, data.items(), strict=True):
        for layer, pts in curves.items():
            ax.plot([100 * d for d, _ in pts], [e for _, e in pts], marker="o", label=layer)
        ax.invert_xaxis()
        ax.set_xlabel("weights kept in that layer (%)")
        ax.set_ylabel("test error (%), no retraining")
        ax.set_title(LABELS[net])
        ax.legend(fontsize=7)
    _finish(fig, "Sensitivity to pruning one layer at a time", path)
    return True


def weights(r: ReportData, path: Path) -> bool:
    """Figure 4/5 style: the pruned layer's weights and the shared values k-means chose."""
    compressed_file = r.args.runs / "compressed" / "lenet300" / "model.dcmp"
    pruned_dir = r.args.runs / "pruned" / "lenet300"
    if not compressed_file.is_file() or not (pruned_dir / "model.safetensors").is_file():
        return False
    plt = pyplot()
    pruned, _ = load_network(pruned_dir)
    compressed, _ = read_compressed(compressed_file)
    w = pruned.ip2.weight.detach().flatten().numpy()
    q = compressed.ip2.weight.detach().flatten().numpy()
    shared = np.unique(q[q != 0])
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.hist(
        w[w != 0],
        bins=120,
        color="tab:blue",
        alpha=0.7,
        label="pruned weights (before quantization)",
    )
    for v in shared:
        ax.axvline(v, color="tab:red", lw=0.6, alpha=0.8)
    ax.plot([], [], color="tab:red", label=f"shared values after fine-tuning ({shared.size})")
    title = "LeNet-300-100 ip2: survivors of pruning and their k-means codebook"
    return _save_panel(fig, ax, path, title, "weight value", "count")


def tradeoff(r: ReportData, path: Path) -> bool:
    """Figure 6: error against size for pruning only, quantization only and both."""
    data = r.json(r.args.metrics_dir / "tradeoff_lenet300.json")
    if not data:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    styles = {
        "pruning": ("tab:blue", "o"),
        "quantization": ("tab:orange", "s"),
        "both": ("tab:green", "^"),
    }
    for method, (color, marker) in styles.items():
        pts = sorted((p["size_pct"], p["error"]) for p in data["points"] if p["method"] == method)
        if pts:
            label = {"both": "pruning + quantization"}.get(method, f"{method} only")
            ax.plot(*zip(*pts, strict=True), marker=marker, color=color, label=label)
    base = data["baseline_error"]
    ax.axhline(base, color="gray", ls="--", label="uncompressed")
    ax.axhline(base + data["no_loss_tolerance"], color="gray", ls=":", label="'no loss' limit")
    ax.set_xscale("log")
    ax.set_yscale("log")
    title = f"Figure 6 analogue: {LABELS.get(data['network'], data['network'])}"
    xlabel = "model size (% of dense 32-bit weights)"
    return _save_panel(fig, ax, path, title, xlabel, "test error (%, log scale)")


def init(r: ReportData, path: Path) -> bool:
    """Figure 8: error against bits for each centroid initialisation."""
    data = r.json(r.args.metrics_dir / "bitwidth_lenet5.json")
    if not data or not data.get("init"):
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for method in sorted({p["init"] for p in data["init"]}):
        pts = sorted((p["bits"], p["error"]) for p in data["init"] if p["init"] == method)
        ax.plot(*zip(*pts, strict=True), marker="o", label=f"{method} initialisation")
    ax.axhline(data["ref_error"], color="gray", ls="--", label="unquantized")
    net = LABELS.get(data["network"], data["network"])
    title = f"Figure 8 analogue: centroid initialisation, {net}"
    return _save_panel(fig, ax, path, title, "bits per weight (every layer)", "test error (%)")


def speedup(r: ReportData, path: Path) -> bool:
    """Figures 9-10: dense time over sparse time per pruned fully connected layer."""
    data = r.json(r.args.metrics_dir / "speedup.json")
    if not data:
        return False
    plt = pyplot()
    layers = data["layers"]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(layers)), 3.6))
    x = np.arange(len(layers))
    ax.bar(x - 0.2, [row["speedup_torch"] for row in layers], 0.4, label="torch CSR vs dense")
    ax.bar(x + 0.2, [row["speedup_scipy"] for row in layers], 0.4, label="scipy CSR vs numpy dense")
    ax.axhline(1, color="gray", lw=0.8)
    ax.set_xticks(x, [row["layer"] for row in layers], rotation=30, ha="right")
    title = f"Pruned fully connected layers, batch size 1, {data['threads']} CPU thread(s)"
    return _save_panel(fig, ax, path, title, "", "speed-up (dense time / sparse time)")
