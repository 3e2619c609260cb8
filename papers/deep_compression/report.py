"""Stage ``deep_compression_report``: render ``reports/deep_compression/`` from metrics and claims.

Writes ``README.md`` (every table of the paper we replicate, the paper's numbers beside ours,
figures, what was scaled down), ``claims.json`` (the same comparison as data) and
``figures/*.png``. Nothing in it is typed by hand: our values come from the files the pipeline
wrote under ``metrics/deep_compression`` and ``runs/deep_compression``, the paper's from
``claims.yaml``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from common.compress import read_compressed
from common.config import ConfigError
from common.env import configure_environment
from common.io import read_history
from common.report import (
    Section,
    evaluate_claims,
    fmt,
    load_claims,
    table,
)
from common.report.figures import pyplot, save
from common.report.publish import publish_report
from papers.deep_compression import stage
from papers.deep_compression.config import DeepCompressionProfile

STAGE = "deep_compression_report"
TITLE = "Deep Compression (Han, Mao, Dally, ICLR 2016): replication report"
INTRO = """
Han, Mao and Dally compress networks in three stages: magnitude pruning with retraining, trained
quantization by per-layer k-means weight sharing, and Huffman coding of the weights and of the
sparse indices ([arXiv:1510.00149](https://arxiv.org/abs/1510.00149)). Here all three run end to
end on the full MNIST for the paper's two LeNets, the compressed model is a real file whose size
is the size reported, and decoding that file gives the error reported. A VGG-style network on
colour digits stands in for the AlexNet and VGG-16 rows, which need ImageNet (the `paper`
profile runs them). Code: [`papers/deep_compression/`](../../papers/deep_compression/),
[`common/compress/`](../../common/compress/).
"""
LABELS = {
    "lenet300": "LeNet-300-100",
    "lenet5": "LeNet-5",
    "vgg": "VGG-style analogue (colour digits)",
    "alexnet": "AlexNet",
    "vgg16": "VGG-16",
}


# ---------------------------------------------------------------------------- inputs
def read_flat_metrics(directory: Path) -> dict[str, float]:
    """Every flat ``{key: number}`` JSON in ``directory`` (other JSON files are skipped)."""
    merged: dict[str, float] = {}
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and all(isinstance(v, (int, float)) for v in data.values()):
            for k, v in data.items():
                if k in merged:
                    raise ValueError(f"metric {k!r} appears in two files (second: {path})")
                merged[k] = v
    return merged


def _json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def paper_value(claims: dict[str, Any], claim_id: str) -> float | None:
    c = claims.get(claim_id)
    return None if c is None else c.paper


def cell(ours: float | None, paper: float | None, digits: int = 3, unit: str = "") -> str:
    """``ours (paper)`` for the tables: both numbers in one cell."""
    o = (
        "–"
        if ours is None or (isinstance(ours, float) and np.isnan(ours))
        else f"{fmt(float(ours), digits)}{unit}"
    )
    return o if paper is None else f"{o} ({fmt(float(paper), digits)}{unit})"


# ---------------------------------------------------------------------------- tables
def table1(metrics: dict[str, float], claims: dict[str, Any]) -> str:
    def pv(cid: str) -> float | None:
        return paper_value(claims, cid)

    rows = []
    for net in ("lenet300", "lenet5"):
        b, c = f"{net}/baseline", f"{net}/compressed"
        ref_err = cell(metrics.get(f"{b}/test_error"), pv(f"table1.{net}.ref_error"), unit="%")
        ref_size = cell(metrics.get(f"{b}/size_kb"), pv(f"table1.{net}.ref_size"), 4, " KB")
        rows.append([f"{LABELS[net]} reference", ref_err, "–", ref_size, "–", "–"])
        weights_only = metrics.get(f"{c}/size_weights_kb")
        rows.append(
            [
                f"{LABELS[net]} compressed",
                cell(
                    metrics.get(f"{c}/test_error"), pv(f"table1.{net}.compressed_error"), unit="%"
                ),
                "–",
                cell(metrics.get(f"{c}/size_kb"), pv(f"table1.{net}.compressed_size"), 3, " KB"),
                cell(metrics.get(f"{c}/rate"), pv(f"table1.{net}.rate"), 3, "×"),
                "–"
                if weights_only is None
                else f"{fmt(weights_only)} KB, {fmt(metrics[f'{c}/rate_weights'])}×",
            ]
        )
    for net in ("alexnet", "vgg16"):
        p = f"{net}/imagenet"
        rows.append(
            [
                f"{LABELS[net]} reference",
                cell(
                    metrics.get(f"{p}/ref_top1_error"), pv(f"table1.{net}.ref_top1_error"), 4, "%"
                ),
                cell(
                    metrics.get(f"{p}/ref_top5_error"), pv(f"table1.{net}.ref_top5_error"), 4, "%"
                ),
                cell(metrics.get(f"{p}/original_mb"), pv(f"table1.{net}.ref_size"), 3, " MB"),
                "–",
                "–",
            ]
        )
        rows.append(
            [
                f"{LABELS[net]} compressed",
                cell(
                    metrics.get(f"{p}/compressed_top1_error"),
                    pv(f"table1.{net}.compressed_top1_error"),
                    4,
                    "%",
                ),
                cell(
                    metrics.get(f"{p}/compressed_top5_error"),
                    pv(f"table1.{net}.compressed_top5_error"),
                    4,
                    "%",
                ),
                cell(metrics.get(f"{p}/size_mb"), pv(f"table1.{net}.compressed_size"), 3, " MB"),
                cell(metrics.get(f"{p}/rate"), pv(f"table1.{net}.rate"), 3, "×"),
                "–",
            ]
        )
    if "vgg/compressed/test_error" in metrics:
        v = "vgg/compressed"
        rows.append(
            [
                f"*{LABELS['vgg']} reference*",
                f"{fmt(metrics['vgg/baseline/test_error'])}%",
                "–",
                f"{fmt(metrics['vgg/baseline/size_kb'])} KB",
                "–",
                "–",
            ]
        )
        rows.append(
            [
                f"*{LABELS['vgg']} compressed*",
                f"{fmt(metrics[f'{v}/test_error'])}%",
                "–",
                f"{fmt(metrics[f'{v}/size_kb'])} KB",
                f"{fmt(metrics[f'{v}/rate'])}×",
                f"{fmt(metrics[f'{v}/size_weights_kb'])} KB, {fmt(metrics[f'{v}/rate_weights'])}×",
            ]
        )
    note = (
        "Each cell: ours (paper). *Size* and *rate* are those of the compressed file: every byte "
        "needed to rebuild the model (header, codebooks, Huffman code tables, bit streams, float32 "
        "biases, checksum); the compressed error is that of the model decoded from that file. The "
        "paper's sizes match its weight-only accounting (LeNet-300-100: "
        f"{fmt(pv('table2.lenet300.total.rate_pqh'))}% of {fmt(pv('table1.lenet300.ref_size'))} KB = "
        f"{fmt(pv('table2.lenet300.total.rate_pqh') * pv('table1.lenet300.ref_size') / 100, 3)} KB), "
        "which the last column applies to ours: the compressed layers' streams, codebooks and code "
        "tables only. AlexNet and VGG-16 run only at the `paper` profile (ImageNet); a dash means "
        "not run at this profile. The *italic* rows are the laptop-scale analogue, a VGG-style "
        "network on colour digits, not one of the paper's networks."
    )
    tuned = [
        f"{LABELS[net]} {fmt(metrics[f'{net}/compressed/tuned/size_kb'])} KB "
        f"({fmt(metrics[f'{net}/compressed/tuned/rate'])}×)"
        for net in ("lenet300", "lenet5", "vgg")
        if f"{net}/compressed/tuned/size_kb" in metrics
    ]
    if tuned:
        note += (
            "\n\n*Beyond the paper*: the paper fixes one relative-index width per network "
            f"({fmt(paper_value(claims, 'table2.lenet300.total.idx_bits_pq'))} bits for "
            "LeNet-300-100). With Huffman coding a wider index is usually cheaper (fewer filler "
            "entries outweigh longer codes); choosing the width per layer gives files of "
            + ", ".join(tuned)
            + " (`model_tuned.dcmp`; not used for any claim)."
        )
    headers = [
        "Network",
        "Top-1 error",
        "Top-5 error",
        "Size (file)",
        "Rate (file)",
        "Weights only: size, rate",
    ]
    return table(headers, rows) + "\n\n" + note


COLUMNS = [
    ("weights", "#W", 0),
    ("kept_pct", "Weights % (P)", 3),
    ("w_bits_pq", "Weight bits (P+Q)", 2),
    ("w_bits_pqh", "Weight bits (P+Q+H)", 2),
    ("idx_bits_pq", "Index bits (P+Q)", 2),
    ("idx_bits_pqh", "Index bits (P+Q+H)", 2),
    ("rate_pq", "Size % (P+Q)", 3),
    ("rate_pqh", "Size % (P+Q+H)", 3),
]


def layer_table(
    net: str, source: str, storage: dict[str, Any] | None, claims: dict[str, Any]
) -> str:
    if storage is None:
        return f"(no storage accounting for {net}: its compress stage did not run)"
    rows = []
    for row in storage["rows"]:
        layer = row["layer"]
        cells = [layer]
        for key, _title, digits in COLUMNS:
            metric_key = {"rate_pq": "rate_pq_pct", "rate_pqh": "rate_pqh_pct"}.get(key, key)
            cid = f"{source.lower().replace(' ', '')}.{net}.{layer}.{key}"
            ours = row[metric_key]
            cells.append(cell(ours, paper_value(claims, cid), digits or 6))
        rows.append(cells)
    return table(["Layer"] + [t for _, t, _ in COLUMNS], rows)


def paper_total_check(net: str, source: str, claims: dict[str, Any]) -> str:
    """Whether the paper's total P+Q+H rate is the #W-weighted mean of its own layer rows."""
    prefix = f"{source.lower().replace(' ', '')}.{net}."
    layers = sorted(
        {cid[len(prefix) :].split(".")[0] for cid in claims if cid.startswith(prefix)} - {"total"}
    )
    try:
        weights = {la: claims[f"{prefix}{la}.weights"].paper for la in layers}
        rates = {la: claims[f"{prefix}{la}.rate_pqh"].paper for la in layers}
        total = claims[f"{prefix}total.rate_pqh"].paper
    except KeyError:
        return ""
    implied = sum(weights[la] * rates[la] for la in layers) / sum(weights.values())
    if abs(implied - total) < 0.05:
        return ""
    return (
        f"Note: the paper's own layer rows of {source}, weighted by their weights, give a total "
        f"P+Q+H size of {implied:.2f}%, not the {total:g}% of its total row (a compression of "
        f"{100 / implied:.1f}× rather than {100 / total:.0f}×); our total is compared with the "
        "printed value."
    )


def staged_table(
    metrics: dict[str, float], storages: dict[str, Any], claims: dict[str, Any]
) -> str:
    rows = []
    for net, st in storages.items():
        if st is None:
            continue
        total = st["rows"][-1]
        p = f"{net}/compressed"
        rows.append(
            [
                LABELS.get(net, net),
                f"{fmt(metrics.get(f'{net}/baseline/test_error'))}%",
                f"{fmt(total['kept_pct'])}% ({fmt(100 / total['kept_pct'])}×)",
                f"{fmt(metrics.get(f'{net}/pruned/test_error'))}%",
                f"{fmt(total['rate_pq_pct'])}% ({fmt(100 / total['rate_pq_pct'])}×)",
                f"{fmt(total['rate_pqh_pct'])}% ({fmt(100 / total['rate_pqh_pct'])}×)",
                f"{fmt(metrics.get(f'{p}/test_error'))}%",
                f"{fmt(metrics.get(f'{p}/size_pq_kb'))} → {fmt(metrics.get(f'{p}/size_kb'))} KB",
            ]
        )
    return table(
        [
            "Network",
            "Error (reference)",
            "After P: kept",
            "Error after P",
            "After P+Q",
            "After P+Q+H",
            "Error after P+Q+H",
            "File: fixed-width → Huffman",
        ],
        rows,
    ) + (
        "\n\nPercentages are of the dense 32-bit weights of the compressed layers (the paper's "
        "rates, P counting only the weights kept, as its tables do); the last column is the real "
        "files, P+Q with fixed-width codes and P+Q+H with Huffman codes." + _paper_stages(claims)
    )


def _paper_stages(claims: dict[str, Any]) -> str:
    """The paper's staged rates of its ImageNet networks (Tables 4 and 5), read from the claims."""
    parts = []
    for table_id, net in (("table4", "alexnet"), ("table5", "vgg16")):
        vals = [
            paper_value(claims, f"{table_id}.{net}.total.{k}")
            for k in ("kept_pct", "rate_pq", "rate_pqh")
        ]
        if None not in vals:
            stages = " → ".join(f"{v:g}% ({100 / v:.0f}×)" for v in vals)
            parts.append(f"{LABELS[net]} (Table {table_id[-1]}) goes {stages}")
    return (" For comparison, the paper's " + "; ".join(parts) + ".") if parts else ""


# ---------------------------------------------------------------------------- figures
def fig_training(metrics_dir: Path, out: Path) -> Path | None:
    plt = pyplot()
    nets = [
        n
        for n in ("lenet300", "lenet5", "vgg")
        if (metrics_dir / f"baseline_{n}_history.csv").is_file()
    ]
    if not nets:
        return None
    fig, axes = plt.subplots(1, len(nets), figsize=(4.6 * len(nets), 3.4), squeeze=False)
    for ax, net in zip(axes[0], nets, strict=True):
        offset = 0
        for kind, color in (
            ("baseline", "tab:blue"),
            ("pruned", "tab:orange"),
            ("compressed", "tab:green"),
        ):
            path = metrics_dir / f"{kind}_{net}_history.csv"
            if not path.is_file():
                continue
            hist = [r for r in read_history(path) if "eval_error" in r]
            if not hist:
                continue
            xs = [offset + i + 1 for i in range(len(hist))]
            ax.plot(
                xs,
                [r["eval_error"] for r in hist],
                marker=".",
                color=color,
                label={
                    "baseline": "training",
                    "pruned": "prune + retrain",
                    "compressed": "centroid fine-tuning",
                }[kind],
            )
            offset = xs[-1]
        ax.set_title(LABELS[net])
        ax.set_xlabel("epoch (all stages in sequence)")
        ax.set_ylabel("test error (%)")
        lows = [line.get_ydata() for line in ax.get_lines()]
        floor = min(min(y) for y in lows)
        ax.set_ylim(0, 4 * floor)  # the first epochs are off the chart; the stages are what matter
        ax.legend(fontsize=8)
    fig.suptitle("Test error through the pipeline", y=1.02)
    fig.tight_layout()
    return save(fig, out)


def fig_sensitivity(runs: Path, out: Path) -> Path | None:
    plt = pyplot()
    data = {
        n: _json(runs / "pruned" / n / "sensitivity.json") for n in ("lenet300", "lenet5", "vgg")
    }
    data = {k: v for k, v in data.items() if v}
    if not data:
        return None
    fig, axes = plt.subplots(1, len(data), figsize=(4.6 * len(data), 3.4), squeeze=False)
    for ax, (net, curves) in zip(axes[0], data.items(), strict=True):
        for layer, pts in curves.items():
            ax.plot([100 * d for d, _ in pts], [e for _, e in pts], marker="o", label=layer)
        ax.invert_xaxis()
        ax.set_xlabel("weights kept in that layer (%)")
        ax.set_ylabel("test error (%), no retraining")
        ax.set_title(LABELS[net])
        ax.legend(fontsize=7)
    fig.suptitle("Sensitivity to pruning one layer at a time", y=1.02)
    fig.tight_layout()
    return save(fig, out)


def fig_weights(runs: Path, out: Path) -> Path | None:
    """Figure 4/5 style: the pruned layer's weights and the shared values k-means chose."""
    path = runs / "compressed" / "lenet300" / "model.dcmp"
    pruned_dir = runs / "pruned" / "lenet300"
    if not path.is_file() or not (pruned_dir / "model.safetensors").is_file():
        return None
    plt = pyplot()
    pruned, _ = stage.load_network(pruned_dir)
    compressed, _ = read_compressed(path)
    w = pruned.ip2.weight.detach().flatten().numpy()
    q = compressed.ip2.weight.detach().flatten().numpy()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.hist(
        w[w != 0],
        bins=120,
        color="tab:blue",
        alpha=0.7,
        label="pruned weights (before quantization)",
    )
    for v in np.unique(q[q != 0]):
        ax.axvline(v, color="tab:red", lw=0.6, alpha=0.8)
    ax.plot(
        [],
        [],
        color="tab:red",
        label=f"shared values after fine-tuning ({np.unique(q[q != 0]).size})",
    )
    ax.set_xlabel("weight value")
    ax.set_ylabel("count")
    ax.set_title("LeNet-300-100 ip2: survivors of pruning and their k-means codebook")
    ax.legend(fontsize=8)
    return save(fig, out)


def fig_tradeoff(data: dict[str, Any] | None, out: Path) -> Path | None:
    if not data:
        return None
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
            ax.plot(
                *zip(*pts, strict=True),
                marker=marker,
                color=color,
                label={"both": "pruning + quantization"}.get(method, f"{method} only"),
            )
    ax.axhline(data["baseline_error"], color="gray", ls="--", label="uncompressed")
    ax.axhline(
        data["baseline_error"] + data["no_loss_tolerance"],
        color="gray",
        ls=":",
        label="'no loss' limit",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("model size (% of dense 32-bit weights)")
    ax.set_ylabel("test error (%, log scale)")
    ax.set_title(f"Figure 6 analogue: {LABELS.get(data['network'], data['network'])}")
    ax.legend(fontsize=8)
    return save(fig, out)


def fig_init(data: dict[str, Any] | None, out: Path) -> Path | None:
    if not data or not data.get("init"):
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for init in sorted({p["init"] for p in data["init"]}):
        pts = sorted((p["bits"], p["error"]) for p in data["init"] if p["init"] == init)
        ax.plot(*zip(*pts, strict=True), marker="o", label=f"{init} initialisation")
    ax.axhline(data["ref_error"], color="gray", ls="--", label="unquantized")
    ax.set_xlabel("bits per weight (every layer)")
    ax.set_ylabel("test error (%)")
    ax.set_title(
        f"Figure 8 analogue: centroid initialisation, {LABELS.get(data['network'], data['network'])}"
    )
    ax.legend(fontsize=8)
    return save(fig, out)


def fig_speedup(data: dict[str, Any] | None, out: Path) -> Path | None:
    if not data:
        return None
    plt = pyplot()
    layers = data["layers"]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(layers)), 3.6))
    x = np.arange(len(layers))
    ax.bar(x - 0.2, [r["speedup_torch"] for r in layers], 0.4, label="torch CSR vs dense")
    ax.bar(x + 0.2, [r["speedup_scipy"] for r in layers], 0.4, label="scipy CSR vs numpy dense")
    ax.axhline(1, color="gray", lw=0.8)
    ax.set_xticks(x, [r["layer"] for r in layers], rotation=30, ha="right")
    ax.set_ylabel("speed-up (dense time / sparse time)")
    ax.set_title(f"Pruned fully connected layers, batch size 1, {data['threads']} CPU thread(s)")
    ax.legend(fontsize=8)
    return save(fig, out)


# ---------------------------------------------------------------------------- page
def scaled_down(profile: str, cfg: DeepCompressionProfile, metrics: dict[str, float]) -> list[str]:
    lines = []
    for net, b in cfg.baseline.items():
        n_train = int(metrics.get(f"{net}/baseline/train_samples", 0))
        n_test = int(metrics.get(f"{net}/baseline/test_samples", 0))
        t = b.train
        lines.append(
            f"{LABELS.get(net, net)}: {b.dataset}, {n_train:,} training / {n_test:,} test images; baseline {t.epochs} epochs of "
            f"{t.optimizer.name.upper()} (lr {t.optimizer.lr:g}, weight decay {t.optimizer.weight_decay:g}, {t.schedule.name}); "
            + (
                f"pruning in {cfg.prune[net].steps} rounds of {cfg.prune[net].retrain.epochs} epochs; "
                if net in cfg.prune
                else ""
            )
            + (
                f"centroid fine-tuning {cfg.compress[net].finetune.epochs} epochs"
                if net in cfg.compress and cfg.compress[net].finetune
                else "no centroid fine-tuning"
            )
        )
    lines += [
        'The paper trained and retrained with Caffe "until convergence"; every retraining here has a fixed, short budget (above), in PyTorch on CPU.',
        "AlexNet and VGG-16 (Table 1's ImageNet rows, Figures 6 and 8, Table 6) are replaced by LeNet-5, LeNet-300-100 and the VGG-style analogue; the `paper` profile runs the ImageNet rows on torchvision's pretrained networks.",
        "Sparse-kernel timing runs on this machine's CPU with PyTorch and SciPy CSR kernels, not MKL on a Core i7-5930K, a Titan X or a Tegra K1.",
        "Storage: one of the 2^bits codes of a pruned layer is the zero of pruned weights and filler entries (so k-means forms 2^bits − 1 clusters), and the Huffman code tables are counted in the sizes; the paper does not say how it handled either.",
        f"Profile: {profile}.",
    ]
    return lines


def build_report(args: argparse.Namespace) -> None:
    profile, cfg = stage.load_config(args.params)
    metrics = read_flat_metrics(args.metrics_dir)
    claims = load_claims(args.claims)
    by_id = {c.id: c for c in claims}

    def claim_scale(c: Any) -> str:
        net = c.metric.split("/")[0]
        if net in cfg.baseline:
            n_train = int(metrics.get(f"{net}/baseline/train_samples", 0))
            full = {"mnist": (60000, 10000)}.get(cfg.baseline[net].dataset)
            data = (
                "full MNIST"
                if full == (n_train, int(metrics.get(f"{net}/baseline/test_samples", 0)))
                else f"{n_train:,} training images"
            )
            return f"{profile} profile: {data}"
        return f"{profile} profile"

    results = evaluate_claims(claims, metrics, scale=claim_scale)
    out: Path = args.out
    figs = out / "figures"
    storages = {n: _json(args.runs / "compressed" / n / "storage.json") for n in cfg.compress}
    tradeoff = _json(args.metrics_dir / "tradeoff_lenet300.json")
    bitwidth = _json(args.metrics_dir / "bitwidth_lenet5.json")
    speedup = _json(args.metrics_dir / "speedup.json")

    def img(path: Path | None, alt: str) -> str:
        return (
            f"![{alt}](figures/{path.name})"
            if path
            else "(figure not available: the stage behind it did not run)"
        )

    sections = [
        Section(
            "Table 1: compression of the reference networks",
            table1(metrics, by_id)
            + "\n\n"
            + img(
                fig_training(args.metrics_dir, figs / "training.png"),
                "test error through the pipeline",
            ),
        ),
        Section(
            "Table 2: LeNet-300-100, layer by layer",
            layer_table("lenet300", "Table 2", storages.get("lenet300"), by_id)
            + "\n\n"
            + paper_total_check("lenet300", "Table 2", by_id),
        ),
        Section(
            "Table 3: LeNet-5, layer by layer",
            layer_table("lenet5", "Table 3", storages.get("lenet5"), by_id)
            + "\n\n"
            + paper_total_check("lenet5", "Table 3", by_id),
        ),
        Section(
            "The three stages, P → P+Q → P+Q+H (Tables 4-5 style)",
            staged_table(metrics, storages, by_id)
            + "\n\n"
            + (
                layer_table("vgg", "analogue", storages.get("vgg"), {})
                if storages.get("vgg")
                else ""
            )
            + "\n\n"
            + img(fig_weights(args.runs, figs / "weights.png"), "weight distribution and codebook"),
        ),
        Section(
            "Pruning sensitivity (companion paper, Figure 5)",
            "Each layer pruned alone to a fraction of its weights, by magnitude, without retraining "
            "(on a subset of the test set; analysis only, nothing is selected with it). Fully "
            "connected layers tolerate far more pruning than the first convolution, which is why the "
            f"paper keeps {fmt(paper_value(by_id, 'table3.lenet5.conv1.kept_pct'))}% of LeNet-5's conv1 "
            f"but {fmt(paper_value(by_id, 'table3.lenet5.ip1.kept_pct'))}% of ip1.\n\n"
            + img(fig_sensitivity(args.runs, figs / "sensitivity.png"), "sensitivity"),
        ),
        Section(
            "Figure 6: pruning and quantization work best together",
            _tradeoff_text(tradeoff)
            + "\n\n"
            + img(fig_tradeoff(tradeoff, figs / "tradeoff.png"), "error against size"),
        ),
        Section(
            "Table 6: bits for convolution and fully connected layers",
            _bitwidth_text(bitwidth, by_id, int(metrics.get("lenet5/baseline/test_samples", 0))),
        ),
        Section(
            "Figure 8: centroid initialisation",
            img(fig_init(bitwidth, figs / "init.png"), "initialisation comparison")
            + "\n\n"
            + _init_text(bitwidth, int(metrics.get("lenet5/baseline/test_samples", 0))),
        ),
        Section(
            "Figures 9-10: pruned layers run faster at batch size 1",
            _speedup_text(speedup)
            + "\n\n"
            + img(fig_speedup(speedup, figs / "speedup.png"), "speed-up"),
        ),
    ]
    publish_report(
        out,
        paper="deep_compression",
        title=TITLE,
        stage=STAGE,
        intro=INTRO,
        profile=profile,
        results=results,
        sections=sections,
        scaled_down=scaled_down(profile, cfg, metrics),
        experiment=stage.EXPERIMENT,
        config=cfg,
    )


def _tradeoff_text(data: dict[str, Any] | None) -> str:
    if not data:
        return "(the tradeoff stage did not run)"
    rows = [
        [
            p["method"],
            p["label"],
            f"{fmt(p['size_pct'])}%",
            f"{fmt(p['error'])}%",
            f"{p['error'] - data['baseline_error']:+.2f}",
        ]
        for p in data["points"]
    ]
    return (
        f"{LABELS.get(data['network'], data['network'])}, uncompressed error {fmt(data['baseline_error'])}%; "
        f"'no loss' means at most +{data['no_loss_tolerance']:g} points.\n\n"
        + table(["Method", "Setting", "Size", "Error", "Δ error"], rows)
    )


def _bitwidth_text(data: dict[str, Any] | None, claims: dict[str, Any], n_test: int = 0) -> str:
    if not data:
        return "(the bitwidth stage did not run)"
    rows = [["32 / 32 (pruned, unquantized)", f"{fmt(data['ref_error'])}%", "–", "–"]]
    for r in data["sweep"]:
        paper = paper_value(claims, f"table6.{r['conv_bits']}_{r['fc_bits']}.delta_top1")
        rows.append(
            [
                f"{r['conv_bits']} / {r['fc_bits']}",
                f"{fmt(r['error'])}%",
                f"{r['delta']:+.2f}",
                "–" if paper is None else f"{paper:+.2f}",
            ]
        )
    return (
        f"{LABELS.get(data['network'], data['network'])} after pruning; each row quantizes a fresh copy "
        "(linear initialisation) and fine-tunes its centroids for the same budget.\n\n"
        + table(
            [
                "Conv bits / FC bits",
                "Top-1 error (ours)",
                "Δ top-1 (ours)",
                "Δ top-1 (paper, AlexNet)",
            ],
            rows,
        )
        + "\n\nTop-5 error is not meaningful on a 10-class task and is not reported. "
        + _noise_note(data["ref_error"], n_test)
    )


def _noise_note(error_pct: float, n: int) -> str:
    """One binomial standard deviation of a test error, to read small differences against."""
    if n <= 0:
        return ""
    sd = 100 * (error_pct / 100 * (1 - error_pct / 100) / n) ** 0.5
    return (
        f"With {n:,} test images, one binomial standard deviation of an error near {fmt(error_pct)}% "
        f"is {sd:.2f} points: smaller differences between rows are noise."
    )


def _init_text(data: dict[str, Any] | None, n_test: int = 0) -> str:
    if not data or not data.get("init"):
        return ""
    bits = sorted({p["bits"] for p in data["init"]})
    inits = sorted({p["init"] for p in data["init"]})
    err = {(p["init"], p["bits"]): p["error"] for p in data["init"]}
    rows = [[init, *[f"{fmt(err[(init, b)])}%" for b in bits]] for init in inits]
    return (
        table(["Initialisation", *[f"{b} bits" for b in bits]], rows)
        + "\n\n"
        + _noise_note(data["ref_error"], n_test)
    )


def _speedup_text(data: dict[str, Any] | None) -> str:
    if not data:
        return "(the speedup stage did not run)"
    rows = [
        [
            r["layer"],
            f"{r['shape'][0]}×{r['shape'][1]}",
            f"{100 * r['density']:.0f}%",
            f"{fmt(r['torch_dense_us'])}",
            f"{fmt(r['torch_csr_us'])}",
            f"{fmt(r['speedup_torch'])}×",
            f"{fmt(r['speedup_scipy'])}×",
        ]
        for r in data["layers"]
    ]
    return (
        "Median time of one matrix-vector product (µs), dense against CSR, repeats interleaved. "
        "Shapes and densities are the paper's; AlexNet and VGG-16 layers carry random weights, "
        "which does not change the time of a product. Only pruning is timed: quantization and "
        "Huffman coding save storage, not time, here as in the paper.\n\n"
        + table(
            [
                "Layer",
                "Shape",
                "Kept",
                "Dense (µs)",
                "CSR (µs)",
                "Speed-up (torch)",
                "Speed-up (scipy)",
            ],
            rows,
        )
    )


def main(argv: list[str] | None = None) -> int:
    configure_environment()
    parser = argparse.ArgumentParser(
        prog="python -m papers.deep_compression.report", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--claims", type=Path, required=True)
    parser.add_argument("--runs", type=Path, required=True, help="runs/deep_compression")
    parser.add_argument("--metrics-dir", type=Path, required=True, help="metrics/deep_compression")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        build_report(args)
    except ConfigError as exc:
        import sys

        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
