"""``reports/README.md``: the index of every paper's report (pipeline stage ``reports_index``).

``python -m common.report.index --out reports/README.md reports/<paper>/claims.json ...``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common.papers import papers
from common.report.claims import count_results, read_claims_json
from common.report.markdown import GENERATED_NOTE, table
from common.stage import StageContext, stage


def render_index(claims_files: list[Path]) -> str:
    found = {}
    for path in claims_files:
        data = read_claims_json(path)
        found[data["paper"]] = (path, data)
    rows = []
    for paper in papers(planned=True):
        slug, title, cite = paper.slug, paper.title, paper.citation
        if slug in found:
            path, data = found.pop(slug)
            ok, total = count_results(data["claims"])
            rows.append(
                [
                    f"[{title}]({slug}/README.md)",
                    cite,
                    data["profile"],
                    f"{ok} / {total}",
                    f"[claims.json]({slug}/claims.json)",
                ]
            )
        else:
            rows.append([title, cite, "–", "not yet replicated", "–"])
    for slug, (_path, data) in sorted(found.items()):
        ok, total = count_results(data["claims"])
        rows.append(
            [
                f"[{slug}]({slug}/README.md)",
                "",
                data["profile"],
                f"{ok} / {total}",
                f"[claims.json]({slug}/claims.json)",
            ]
        )
    return (
        "\n\n".join(
            [
                GENERATED_NOTE.format(stage="reports_index", target="reports_index"),
                "# Reports",
                "One generated report per paper: the paper's numbers beside ours, with what was scaled "
                "down. *Results reproduced* counts the claims of kind `result`: values we set to the "
                "paper's (bit widths, kept %) and architecture checks are shown in each report but "
                "not counted. `claims.json` in each folder is the same comparison as data; "
                "`make verify` checks them all.",
                table(
                    ["Paper", "Citation", "Profile", "Results reproduced", "Data"],
                    rows,
                    align="lllrl",
                ),
            ]
        )
        + "\n"
    )


def _flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("claims", nargs="*", type=Path, help="reports/<paper>/claims.json files")
    parser.add_argument("--out", type=Path, required=True)


@stage(section="reports", name="reports_index", config=None, flags=_flags)
def main(ctx: StageContext) -> None:
    """Stage reports_index: write reports/README.md, the index of every paper's report."""
    args = ctx.args
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render_index(args.claims))
    metrics: dict[str, float] = {}
    for path in args.claims:
        data = read_claims_json(path)
        ok, total = count_results(data["claims"])
        metrics[f"{data['paper']}/results_reproduced"] = float(ok)
        metrics[f"{data['paper']}/results_total"] = float(total)
    ctx.finish(metrics, artifacts=[args.out], summary=f"wrote {args.out}")


if __name__ == "__main__":
    raise SystemExit(main())
