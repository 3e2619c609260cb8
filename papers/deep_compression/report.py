"""Stage ``deep_compression_report``: render ``reports/deep_compression/`` from metrics and claims.

Writes ``README.md`` (the paper's numbers beside ours, tables, figures, what was scaled down),
``claims.json`` (the same comparison as data) and ``figures/*.png``. Nothing in it is typed by
hand: every value comes from the metrics files given on the command line or from
``claims.yaml``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from common.config import ConfigError, load_profile
from common.env import configure_environment
from common.report import (
    Section,
    evaluate_claims,
    fmt,
    load_claims,
    load_metrics,
    render_page,
    table,
    write_claims_json,
)
from common.report.figures import pyplot, save
from common.tracking import stage_run
from papers.deep_compression.config import BaselineConfig, DeepCompressionProfile

STAGE = "deep_compression_report"
TITLE = "Deep Compression (Han, Mao, Dally, ICLR 2016): replication report"
INTRO = """
Han, Mao and Dally compress networks in three stages: magnitude pruning with retraining, trained
quantization by per-layer k-means weight sharing, and Huffman coding of the weights and sparse
indices ([arXiv:1510.00149](https://arxiv.org/abs/1510.00149)). This report covers what the
pipeline runs so far: the two MNIST reference networks of Table 1 that the compression starts
from. Code: [`papers/deep_compression/`](../../papers/deep_compression/).
"""
LABELS = {"lenet300": "LeNet-300-100", "lenet5": "LeNet-5"}


def read_history(path: Path) -> list[dict[str, float]]:
    with open(path) as fh:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]


def describe(name: str, cfg: BaselineConfig, metrics: dict[str, float]) -> str:
    t = cfg.train
    n_train = int(metrics.get(f"{name}/baseline/train_samples", 0))
    n_test = int(metrics.get(f"{name}/baseline/test_samples", 0))
    opt = t.optimizer
    return (
        f"{LABELS.get(name, name)}: {n_train:,} training / {n_test:,} test images "
        f"(MNIST has 60,000 / 10,000), {t.epochs} epochs of {opt.name.upper()} "
        f"(lr {opt.lr:g}, momentum {opt.momentum:g}, weight decay {opt.weight_decay:g}, batch {t.batch_size}, "
        f"{t.schedule.name} schedule) in PyTorch on {t.device} — the paper trained with Caffe"
    )


def claim_scale(
    metric: str, profile: str, cfg: DeepCompressionProfile, metrics: dict[str, float]
) -> str:
    """How the run behind ``metric`` differs from the paper, generated from the resolved config."""
    name = metric.split("/")[0]
    if name not in cfg.baseline:
        return f"{profile} profile"
    n_train = int(metrics.get(f"{name}/baseline/train_samples", 0))
    n_test = int(metrics.get(f"{name}/baseline/test_samples", 0))
    data = (
        "full MNIST"
        if (n_train, n_test) == (60000, 10000)
        else f"{n_train:,}/{n_test:,} of MNIST's 60,000/10,000 images"
    )
    return f"{profile} profile: {data}, {cfg.baseline[name].train.epochs} epochs"


def training_figure(
    histories: dict[str, list[dict[str, float]]], paper_ref: dict[str, float], path: Path
) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(histories), figsize=(5 * len(histories), 3.6), squeeze=False)
    for ax, (name, hist) in zip(axes[0], histories.items(), strict=True):
        epochs = [r["epoch"] for r in hist if "eval_error" in r]
        errors = [r["eval_error"] for r in hist if "eval_error" in r]
        ax.plot(
            [r["epoch"] for r in hist],
            [r["train_error"] for r in hist],
            label="train error (ours)",
            color="tab:blue",
            alpha=0.6,
        )
        ax.plot(epochs, errors, marker="o", label="test error (ours)", color="tab:blue")
        if name in paper_ref:
            ax.axhline(
                paper_ref[name],
                color="tab:red",
                linestyle="--",
                label=f"paper ({paper_ref[name]:g}%)",
            )
        ax.set_title(LABELS.get(name, name))
        ax.set_xlabel("epoch")
        ax.set_ylabel("top-1 error (%)")
        ax.set_yscale("log")
        ax.legend()
    fig.suptitle("Reference networks on MNIST: training curves")
    return save(fig, path)


def build_report(args: argparse.Namespace) -> None:
    profile, cfg = load_profile(DeepCompressionProfile, args.params, "deep_compression")
    metrics = load_metrics(args.metrics)
    claims = load_claims(args.claims)
    results = evaluate_claims(
        claims, metrics, scale=lambda c: claim_scale(c.metric, profile, cfg, metrics)
    )
    out: Path = args.out
    figures = out / "figures"
    histories = {
        Path(p).stem.removeprefix("baseline_").removesuffix("_history"): read_history(Path(p))
        for p in args.history
    }
    # The paper's reference errors, read from the claims (never restated here).
    paper_ref = {
        c.metric.split("/")[0]: c.paper for c in claims if c.metric.endswith("/baseline/test_error")
    }
    fig_path = training_figure(histories, paper_ref, figures / "baseline_training.png")

    rows = []
    for name in cfg.baseline:
        p = f"{name}/baseline"
        if f"{p}/test_error" not in metrics:
            continue
        rows.append(
            [
                LABELS.get(name, name),
                f"{fmt(metrics[f'{p}/test_error'])}%",
                f"{fmt(paper_ref[name])}%" if name in paper_ref else "–",
                int(metrics[f"{p}/params"]),
                f"{fmt(metrics[f'{p}/size_kb'])} KB",
                int(metrics[f"{p}/macs"]),
                f"{fmt(metrics[f'{p}/peak_activation_int8_bytes'] / 1000)} kB",
                f"{fmt(metrics[f'{p}/latency_ms_b1'])} ms",
                f"{fmt(metrics[f'{p}/train_seconds'])} s",
            ]
        )
    baseline_table = table(
        [
            "Network",
            "Test error (ours)",
            "Paper (Table 1)",
            "Parameters",
            "Size (fp32)",
            "MACs",
            "Peak act. (int8)",
            "CPU latency, batch 1",
            "Train time",
        ],
        rows,
    )
    sections = [
        Section(
            "Table 1: the reference networks",
            baseline_table
            + "\n\nLatency is the median of repeated batch-1 forward passes on this machine's CPU "
            "(noisy shared cores: compare ratios, not absolute values). Peak activation memory is "
            "the largest set of live int8 activations during layer-by-layer execution.\n\n"
            f"![training curves](figures/{fig_path.name})",
        ),
        Section(
            "Not yet in this report",
            "Pruning, trained quantization, Huffman coding and their tables (Tables 1-7, Figures 6-8, "
            "the pruned-layer speed-up) arrive with the compression stages.",
        ),
    ]
    scaled = [describe(name, c, metrics) for name, c in cfg.baseline.items()]
    scaled.append(
        "compute: CPU only; measurements at batch size 1 on the machine that ran `dvc repro`"
    )
    page = render_page(
        title=TITLE,
        stage=STAGE,
        intro=INTRO,
        profile=profile,
        results=results,
        sections=sections,
        scaled_down=scaled,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text(page)
    write_claims_json(
        results, out / "claims.json", paper="deep_compression", profile=profile, generated_by=STAGE
    )
    with stage_run(experiment="deep_compression", stage=STAGE, config=cfg, profile=profile) as run:
        run.log_metrics({f"claims/{r.id}/reproduced": float(r.reproduced) for r in results})
        run.log_artifact(out / "README.md")
        run.log_artifact(out / "claims.json")
        run.log_artifact(figures, artifact_path="figures")
    ok = sum(r.reproduced for r in results)
    print(f"wrote {out / 'README.md'}: {ok}/{len(results)} claims reproduced ({profile} profile)")


def main(argv: list[str] | None = None) -> int:
    configure_environment()
    parser = argparse.ArgumentParser(
        prog="python -m papers.deep_compression.report", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--claims", type=Path, required=True)
    parser.add_argument("--metric-files", dest="metrics", type=Path, nargs="+", required=True)
    parser.add_argument("--history-files", dest="history", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        build_report(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
