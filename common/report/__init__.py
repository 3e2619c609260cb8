"""Reports generated from metrics and claims: claims.json, markdown pages, figures, the index."""

from common.report.claims import (
    Claim,
    ClaimResult,
    evaluate_claims,
    is_reproduced,
    load_claims,
    load_metrics,
    write_claims_json,
)
from common.report.markdown import Section, claims_table, fmt, render_page, table

__all__ = [
    "Claim",
    "ClaimResult",
    "Section",
    "claims_table",
    "evaluate_claims",
    "fmt",
    "is_reproduced",
    "load_claims",
    "load_metrics",
    "render_page",
    "table",
    "write_claims_json",
]
