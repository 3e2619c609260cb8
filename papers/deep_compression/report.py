"""Stage ``deep_compression_report``: render ``reports/deep_compression/`` from metrics and claims.

Writes ``README.md`` (every table of the paper we replicate, the paper's numbers beside ours,
figures, what was scaled down), ``claims.json`` (the same comparison as data), ``figures/*.png``
and ``metrics/deep_compression/derived.json`` (the rates after each stage). Nothing in it is
typed by hand: our values come from the files the pipeline wrote under
``metrics/deep_compression`` and ``runs/deep_compression``, the paper's from ``claims.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.report.markdown import fmt
from common.report.spec import (
    ClaimGrid,
    Col,
    Figure,
    Group,
    MetricTable,
    ReportData,
    ReportSpec,
    Targets,
    Text,
    report_main,
)
from papers.deep_compression import figures, tables
from papers.deep_compression.config import DeepCompressionProfile
from papers.deep_compression.figures import LABELS, NETS

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
# Tables 2-5, per layer: (claim column, header, digits, metric suffix when it differs).
LAYER_COLUMNS = [
    ("weights", "#W", 6, ""),
    ("kept_pct", "Weights % (P)", 3, ""),
    ("w_bits_pq", "Weight bits (P+Q)", 2, ""),
    ("w_bits_pqh", "Weight bits (P+Q+H)", 2, ""),
    ("idx_bits_pq", "Index bits (P+Q)", 2, ""),
    ("idx_bits_pqh", "Index bits (P+Q+H)", 2, ""),
    ("rate_pq", "Size % (P+Q)", 3, "rate_pq_pct"),
    ("rate_pqh", "Size % (P+Q+H)", 3, "rate_pqh_pct"),
]
CLAIM_COLUMNS = [Col(key, header, digits) for key, header, digits, _ in LAYER_COLUMNS]
METRIC_COLUMNS = [Col("{row}/" + (m or k), h, d) for k, h, d, m in LAYER_COLUMNS]


def fc_shape(layer: str, r: ReportData) -> str:
    """``out×in`` of a timed layer, from the speedup config."""
    x = next(x for x in r.config.speedup.layers if x.name == layer)
    return f"{x.out_features}×{x.in_features}"


SPEEDUP_COLUMNS = [
    Col(fc_shape, "Shape"),
    Col("speedup/{row}/density", "Kept", format=lambda v: f"{100 * v:.0f}%"),
    Col("speedup/{row}/torch_dense_us", "Dense (µs)"),
    Col("speedup/{row}/torch_csr_us", "CSR (µs)"),
    Col("speedup/{row}/speedup_torch", "Speed-up (torch)", unit="×"),
    Col("speedup/{row}/speedup_scipy", "Speed-up (scipy)", unit="×"),
]


def derive(m: dict[str, float], r: ReportData) -> dict[str, float]:
    """The compression rate (×) of the compressed layers' weights after pruning (P) and after
    quantization (P+Q); after Huffman coding it is the compress stage's ``rate_weights``."""
    out = {}
    for net in NETS:
        total = f"{net}/compressed/total"
        if f"{total}/kept_pct" in m:
            out[f"{net}/derived/pruned_rate"] = 100 / m[f"{total}/kept_pct"]
            out[f"{net}/derived/pq_rate"] = 100 / m[f"{total}/rate_pq_pct"]
    return out


def claim_scale(claim: Any, r: ReportData) -> str:
    """The profile, and for the networks we train how much of their dataset they saw."""
    net = claim.metric.split("/")[0]
    if net not in r.config.baseline:
        return f"{r.profile} profile"
    n_train = int(r.metrics.get(f"{net}/baseline/train_samples", 0))
    n_test = int(r.metrics.get(f"{net}/baseline/test_samples", 0))
    full = {"mnist": (60000, 10000)}.get(r.config.baseline[net].dataset)
    data = "full MNIST" if full == (n_train, n_test) else f"{n_train:,} training images"
    return f"{r.profile} profile: {data}"


def scaled_down(r: ReportData) -> list[str]:
    """Each network's data and training budget at this profile, then what differs from the paper."""
    cfg: DeepCompressionProfile = r.config
    lines = []
    for net, b in cfg.baseline.items():
        n_train = int(r.metrics.get(f"{net}/baseline/train_samples", 0))
        n_test = int(r.metrics.get(f"{net}/baseline/test_samples", 0))
        t, prune, comp = b.train, cfg.prune.get(net), cfg.compress.get(net)
        lines.append(
            f"{LABELS.get(net, net)}: {b.dataset}, {n_train:,} training / {n_test:,} test images; "
            f"baseline {t.epochs} epochs of {t.optimizer.name.upper()} (lr {t.optimizer.lr:g}, "
            f"weight decay {t.optimizer.weight_decay:g}, {t.schedule.name}); "
            + (
                f"pruning in {prune.steps} rounds of {prune.retrain.epochs} epochs; "
                if prune
                else ""
            )
            + (
                f"centroid fine-tuning {comp.finetune.epochs} epochs"
                if comp and comp.finetune
                else "no centroid fine-tuning"
            )
        )
    return [
        *lines,
        'The paper trained and retrained with Caffe "until convergence"; every retraining here has '
        "a fixed, short budget (above), in PyTorch on CPU.",
        "AlexNet and VGG-16 (Table 1's ImageNet rows, Figures 6 and 8, Table 6) are replaced by "
        "LeNet-5, LeNet-300-100 and the VGG-style analogue; the `paper` profile runs the ImageNet "
        "rows on torchvision's pretrained networks.",
        "Sparse-kernel timing runs on this machine's CPU with PyTorch and SciPy CSR kernels, not "
        "MKL on a Core i7-5930K, a Titan X or a Tegra K1.",
        "Storage: one of the 2^bits codes of a pruned layer is the zero of pruned weights and "
        "filler entries (so k-means forms 2^bits − 1 clusters), and the Huffman code tables are "
        "counted in the sizes; the paper does not say how it handled either.",
        f"Profile: {r.profile}.",
    ]


SPEC = ReportSpec(
    paper="deep_compression",
    title=TITLE,
    intro=INTRO,
    config=DeepCompressionProfile,
    derive=derive,
    scale=claim_scale,
    scaled_down=scaled_down,
    flags=[("runs", {"type": Path, "required": True, "help": "runs/deep_compression"})],
    sections=[
        Figure(
            "Table 1: compression of the reference networks",
            "training.png",
            figures.training,
            alt="test error through the pipeline",
            intro=tables.table1,
        ),
        *(
            ClaimGrid(
                f"Table {n}: {LABELS[net]}, layer by layer",
                prefix=f"table{n}.{net}",
                columns=CLAIM_COLUMNS,
                row_header="Layer",
                note=tables.paper_total_check(f"table{n}.{net}", f"Table {n}"),
            )
            for n, net in ((2, "lenet300"), (3, "lenet5"))
        ),
        Group(
            "The three stages, P → P+Q → P+Q+H (Tables 4-5 style)",
            [
                Text("", tables.staged_table),
                MetricTable("", tables.vgg_layers, METRIC_COLUMNS, row_header="Layer"),
                Figure("", "weights.png", figures.weights, alt="weight distribution and codebook"),
            ],
        ),
        Figure(
            "Pruning sensitivity (companion paper, Figure 5)",
            "sensitivity.png",
            figures.sensitivity,
            alt="sensitivity",
            intro=lambda r: (
                "Each layer pruned alone to a fraction of its weights, by magnitude, without "
                "retraining (on a subset of the test set; analysis only, nothing is selected with "
                "it). Fully connected layers tolerate far more pruning than the first "
                "convolution, which is why the paper keeps "
                f"{fmt(r.paper_value('table3.lenet5.conv1.kept_pct'))}% of LeNet-5's conv1 but "
                f"{fmt(r.paper_value('table3.lenet5.ip1.kept_pct'))}% of ip1."
            ),
        ),
        Figure(
            "Figure 6: pruning and quantization work best together",
            "tradeoff.png",
            figures.tradeoff,
            alt="error against size",
            intro=tables.tradeoff_text,
        ),
        Text("Table 6: bits for convolution and fully connected layers", tables.bitwidth_text),
        Figure(
            "Figure 8: centroid initialisation",
            "init.png",
            figures.init,
            alt="initialisation comparison",
            note=tables.init_text,
        ),
        Group(
            "Figures 9-10: pruned layers run faster at batch size 1",
            [
                MetricTable(
                    "",
                    lambda r: [(x.name, x.name) for x in r.config.speedup.layers],
                    SPEEDUP_COLUMNS,
                    row_header="Layer",
                    intro="Median time of one matrix-vector product (µs), dense against CSR, "
                    "repeats interleaved. Shapes and densities are the paper's; AlexNet and "
                    "VGG-16 layers carry random weights, which does not change the time of a "
                    "product. Only pruning is timed: quantization and Huffman coding save "
                    "storage, not time, here as in the paper.",
                ),
                Figure("", "speedup.png", figures.speedup, alt="speed-up"),
            ],
        ),
        Targets(),
    ],
)


def main(argv: list[str] | None = None) -> int:
    return report_main(SPEC, argv)


if __name__ == "__main__":
    raise SystemExit(main())
