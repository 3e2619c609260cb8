"""Stage ``spatten_report``: ``reports/spatten/`` from the metrics and ``claims.yaml``.

The report is data (a :class:`~common.report.spec.ReportSpec`): the claims table comes first
on every page; add claim grids, metric tables, figures and text below.
"""

from __future__ import annotations

from pathlib import Path

from common.io import read_history
from common.report.figures import pyplot, save
from common.report.spec import Col, Figure, MetricTable, ReportData, ReportSpec, report_main
from papers.spatten.config import SpattenProfile


def _models(r: ReportData) -> list[tuple[str, str]]:
    return [(name, name) for name in r.config.models]


def draw_training(r: ReportData, path: Path) -> bool:
    """Test error per epoch of every network, from the training histories."""
    histories = {
        name: Path(r.args.metrics_dir) / f"train_{name}_history.csv" for name in r.config.models
    }
    if not any(p.is_file() for p in histories.values()):
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, p in histories.items():
        if p.is_file():
            rows = [row for row in read_history(p) if "eval_error" in row]
            ax.plot([row["epoch"] for row in rows], [row["eval_error"] for row in rows], "o-", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test error (%)")
    ax.legend()
    save(fig, path)
    return True


SPEC = ReportSpec(
    paper="spatten",
    title="SpAtten (Wang et al., HPCA 2021): replication report",
    intro="What the paper shows and what this report checks. Code: [`papers/spatten/`](../../papers/spatten/).",
    config=SpattenProfile,
    sections=[
        MetricTable(
            "The networks",
            rows=_models,
            columns=[
                Col("{row}/test_error", "Test error (%)"),
                Col("{row}/train_samples", "Training images"),
                Col("{row}/train_seconds", "Training seconds"),
            ],
            row_header="Network",
        ),
        Figure("Training", "training.png", draw_training, alt="test error per epoch"),
    ],
    scaled_down=lambda r: [f"Profile: {r.profile}. Say here what differs from the paper."],
)


def main(argv: list[str] | None = None) -> int:
    return report_main(SPEC, argv)


if __name__ == "__main__":
    raise SystemExit(main())
