"""Write a paper's report folder: ``README.md``, ``claims.json``, and its MLflow record."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.report.claims import ClaimResult, count_results, write_claims_json
from common.report.markdown import Section, render_page


def publish_report(
    out: str | Path,
    *,
    paper: str,
    title: str,
    stage: str,
    intro: str,
    profile: str,
    results: Sequence[ClaimResult],
    sections: Sequence[Section],
    scaled_down: Sequence[str],
    run: Any = None,
) -> Path:
    """Render the page, write ``README.md`` and ``claims.json`` under ``out`` and record them
    (with ``figures/`` when present) in the stage's MLflow ``run``. Returns the README's path.
    ``claims/reproduced`` and ``claims/total`` count results only (see :data:`~common.report.claims.KINDS`)."""
    out = Path(out)
    page = render_page(
        title=title,
        stage=stage,
        intro=intro,
        profile=profile,
        results=results,
        sections=sections,
        scaled_down=scaled_down,
    )
    out.mkdir(parents=True, exist_ok=True)
    readme = out / "README.md"
    readme.write_text(page)
    write_claims_json(
        list(results), out / "claims.json", paper=paper, profile=profile, generated_by=stage
    )
    reproduced, total = count_results(list(results))
    if run is not None:
        run.log_metrics({"claims/reproduced": float(reproduced), "claims/total": float(total)})
        run.log_artifact(readme)
        run.log_artifact(out / "claims.json")
        if (out / "figures").is_dir():
            run.log_artifact(out / "figures", artifact_path="figures")
    print(f"wrote {readme}: {reproduced}/{total} results reproduced ({profile} profile)")
    return readme
