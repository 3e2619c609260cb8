"""``reports/README.md``: the index of every paper's report (pipeline stage ``reports_index``).

``python -m common.report.index --out reports/README.md reports/<paper>/claims.json ...``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common.env import configure_environment
from common.report.claims import read_claims_json
from common.report.markdown import GENERATED_NOTE, table
from common.tracking import stage_run

# The repository's mission: the seven papers, in the course's order.
PAPERS = (
    ("deep_compression", "Deep Compression", "Han, Mao, Dally, ICLR 2016"),
    ("once_for_all", "Once-for-All", "Cai et al., ICLR 2020"),
    ("mcunet", "MCUNet / MCUNetV2", "Lin et al., NeurIPS 2020 / 2021"),
    ("lite_transformer", "Lite Transformer", "Wu et al., ICLR 2020"),
    ("spatten", "SpAtten", "Wang et al., HPCA 2021"),
    ("anycost_gan", "Anycost GAN", "Lin et al., CVPR 2021"),
    ("fast_lidarnet", "Fast-LiDARNet", "Liu et al., ICRA 2021"),
)


def render_index(claims_files: list[Path]) -> str:
    found = {}
    for path in claims_files:
        data = read_claims_json(path)
        found[data["paper"]] = (path, data)
    rows = []
    for slug, title, cite in PAPERS:
        if slug in found:
            path, data = found.pop(slug)
            claims = data["claims"]
            ok = sum(c["reproduced"] for c in claims)
            rows.append(
                [
                    f"[{title}]({slug}/README.md)",
                    cite,
                    data["profile"],
                    f"{ok} / {len(claims)}",
                    f"[claims.json]({slug}/claims.json)",
                ]
            )
        else:
            rows.append([title, cite, "–", "not yet replicated", "–"])
    for slug, (_path, data) in sorted(found.items()):
        claims = data["claims"]
        rows.append(
            [
                f"[{slug}]({slug}/README.md)",
                "",
                data["profile"],
                f"{sum(c['reproduced'] for c in claims)} / {len(claims)}",
                f"[claims.json]({slug}/claims.json)",
            ]
        )
    return (
        "\n\n".join(
            [
                GENERATED_NOTE.format(stage="reports_index"),
                "# Reports",
                "One generated report per paper: the paper's numbers beside ours, with what was scaled "
                "down. `claims.json` in each folder is the same comparison as data; "
                "`python -m common.report.verify reports/*/claims.json` checks them all.",
                table(
                    ["Paper", "Citation", "Profile", "Claims reproduced", "Data"],
                    rows,
                    align="lllrl",
                ),
            ]
        )
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    configure_environment()
    parser = argparse.ArgumentParser(prog="python -m common.report.index")
    parser.add_argument("claims", nargs="*", type=Path, help="reports/<paper>/claims.json files")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render_index(args.claims))
    with stage_run(experiment="reports", stage="reports_index") as run:
        for path in args.claims:
            data = read_claims_json(path)
            claims = data["claims"]
            run.log_metrics(
                {
                    f"{data['paper']}/claims_reproduced": float(
                        sum(c["reproduced"] for c in claims)
                    ),
                    f"{data['paper']}/claims_total": float(len(claims)),
                }
            )
        run.log_artifact(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
