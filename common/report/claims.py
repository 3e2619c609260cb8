"""Claims as data: what a paper reports, what we measured, and whether it reproduces.

Each paper keeps ``papers/<slug>/claims.yaml``::

    claims:
      - id: table1.lenet5.ref_error
        source: Table 1
        description: LeNet-5 reference top-1 error on MNIST
        metric: lenet5/baseline/test_error      # a key of the pipeline's flat metrics
        unit: "%"
        paper: 0.80
        tolerance: 0.10
        check: at_most                          # within | at_most | at_least
        scale: same data and architecture       # what differs from the paper for this claim

``check`` says what "reproduced" means:

* ``within``: ``|ours - paper| <= tolerance``;
* ``at_most``: ``ours <= paper + tolerance`` (errors, sizes: lower is at least as good);
* ``at_least``: ``ours >= paper - tolerance`` (accuracies, compression rates).

The report stage evaluates the claims against the metrics and writes
``reports/<slug>/claims.json``, one record per claim with the same schema for every paper
(:data:`RECORD_FIELDS`). The rendered report and ``python -m common.report.verify`` read that file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from common.config import ConfigError, bounds, from_dict, read_yaml

SCHEMA_VERSION = 1
RECORD_FIELDS = (
    "id",
    "source",
    "description",
    "metric",
    "unit",
    "paper",
    "ours",
    "difference",
    "tolerance",
    "check",
    "reproduced",
    "scale",
    "note",
)


@dataclass(frozen=True)
class Claim:
    """One number a paper reports, and how close ours must be to count as reproduced."""

    id: str
    source: str
    description: str
    metric: str
    unit: str
    paper: float
    tolerance: float = field(metadata=bounds(ge=0))
    check: Literal["within", "at_most", "at_least"] = "within"
    scale: str = ""
    note: str = ""


@dataclass(frozen=True)
class ClaimsFile:
    claims: list[Claim]

    def __post_init__(self) -> None:
        seen = set()
        for c in self.claims:
            if c.id in seen:
                raise ConfigError(f"claim id {c.id!r} appears twice")
            seen.add(c.id)


@dataclass
class ClaimResult:
    """A claim evaluated against our metrics: one record of ``claims.json``."""

    id: str
    source: str
    description: str
    metric: str
    unit: str
    paper: float
    ours: float | None
    difference: float | None
    tolerance: float
    check: str
    reproduced: bool
    scale: str
    note: str = ""

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def load_claims(path: str | Path) -> list[Claim]:
    """Read and validate a ``claims.yaml``."""
    return from_dict(ClaimsFile, read_yaml(path), file=str(path)).claims


def is_reproduced(check: str, paper: float, ours: float, tolerance: float) -> bool:
    """The single definition of "reproduced" (also used by the verifier)."""
    eps = 1e-9 * max(1.0, abs(paper))  # float noise must not flip a verdict at the boundary
    if check == "within":
        return abs(ours - paper) <= tolerance + eps
    if check == "at_most":
        return ours <= paper + tolerance + eps
    if check == "at_least":
        return ours >= paper - tolerance - eps
    raise ValueError(f"unknown check {check!r}")


def _reason(claim: Claim, ours: float) -> str:
    u = f" {claim.unit}" if claim.unit else ""
    if claim.check == "at_most":
        return f"ours is {ours - claim.paper:+.4g}{u} from the paper, above its tolerance of +{claim.tolerance:g}{u}"
    if claim.check == "at_least":
        return f"ours is {ours - claim.paper:+.4g}{u} from the paper, below its tolerance of -{claim.tolerance:g}{u}"
    return f"ours differs by {ours - claim.paper:+.4g}{u}, beyond the tolerance of ±{claim.tolerance:g}{u}"


def evaluate_claims(
    claims: list[Claim],
    metrics: Mapping[str, float],
    *,
    scale: str | Callable[[Claim], str] = "",
) -> list[ClaimResult]:
    """Compare each claim with ``metrics[claim.metric]``.

    Args:
        claims: the paper's claims.
        metrics: flat metrics produced by the pipeline.
        scale: how the run differs from the paper (generated from the resolved profile), as text
            or as a function of the claim; prefixed to the claim's own ``scale`` note.

    A claim whose metric is absent is reported as not reproduced, saying so.
    """
    results = []
    for c in claims:
        value = metrics.get(c.metric)
        run_scale = scale(c) if callable(scale) else scale
        scale_text = "; ".join(s for s in (run_scale, c.scale) if s)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            results.append(
                ClaimResult(
                    **_base(c),
                    ours=None,
                    difference=None,
                    reproduced=False,
                    scale=scale_text,
                    note=f"not measured: the pipeline produced no metric {c.metric!r}",
                )
            )
            continue
        ours = float(value)
        ok = is_reproduced(c.check, c.paper, ours, c.tolerance)
        note = c.note if ok else "; ".join(s for s in (_reason(c, ours), c.note) if s)
        results.append(
            ClaimResult(
                **_base(c),
                ours=ours,
                difference=ours - c.paper,
                reproduced=ok,
                scale=scale_text,
                note=note,
            )
        )
    return results


def _base(c: Claim) -> dict[str, Any]:
    return {
        "id": c.id,
        "source": c.source,
        "description": c.description,
        "metric": c.metric,
        "unit": c.unit,
        "paper": c.paper,
        "tolerance": c.tolerance,
        "check": c.check,
    }


def write_claims_json(
    results: list[ClaimResult], path: str | Path, *, paper: str, profile: str, generated_by: str
) -> Path:
    """Write ``claims.json``: metadata plus one record per claim (fields: :data:`RECORD_FIELDS`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "schema_version": SCHEMA_VERSION,
        "paper": paper,
        "profile": profile,
        "generated_by": generated_by,
        "claims": [r.to_record() for r in results],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def read_claims_json(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def load_metrics(paths: list[str | Path]) -> dict[str, float]:
    """Merge flat metrics JSON files; a key defined twice is an error."""
    merged: dict[str, float] = {}
    for p in paths:
        data = json.loads(Path(p).read_text())
        for k, v in data.items():
            if k in merged:
                raise ValueError(f"metric {k!r} is defined in more than one file (second: {p})")
            merged[k] = v
    return merged
