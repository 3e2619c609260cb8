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
        kind: result                            # result | setting | architecture
        scale: same data and architecture       # what differs from the paper for this claim

``kind`` says what agreeing with the paper would show:

* ``result``: something the method produced (an error, a size after compression, a speed-up).
  Only results count in a report's headline, the index and MLflow's ``claims/reproduced``.
* ``setting``: a value we set in ``params.yaml`` to the paper's (kept %, bit widths); shown in
  the tables so the reader sees the setting was the paper's, never counted as reproduced.
* ``architecture``: a property of the network as the paper defines it (a weight count); a check
  that we built the same thing, not a result.

``source`` is the paper or its official repository. Goals of our own (e.g. an engine's speed-up
target) are not claims: they go under ``targets:`` in the same file, with the same fields but
``goal`` instead of ``paper`` (and optionally ``paper`` and ``paper_source`` for the paper's
related number); the report shows them in a benchmark section, and they never reach
``claims.json`` or a headline.

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

SCHEMA_VERSION = 2
KINDS = ("result", "setting", "architecture")
RECORD_FIELDS = (
    "id",
    "kind",
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
    kind: Literal["result", "setting", "architecture"]
    check: Literal["within", "at_most", "at_least"] = "within"
    scale: str = ""
    note: str = ""


@dataclass(frozen=True)
class Target:
    """A goal of our own (not the paper's): shown in the report's benchmark section, beside the
    paper's related number when there is one, and never counted as a claim."""

    id: str
    description: str
    metric: str
    unit: str
    goal: float
    check: Literal["within", "at_most", "at_least"] = "at_least"
    tolerance: float = field(default=0.0, metadata=bounds(ge=0))
    paper: float | None = None
    paper_source: str = ""
    note: str = ""


@dataclass(frozen=True)
class ClaimsFile:
    claims: list[Claim]
    targets: list[Target] = field(default_factory=list)

    def __post_init__(self) -> None:
        seen = set()
        for c in [*self.claims, *self.targets]:
            if c.id in seen:
                raise ConfigError(f"claim id {c.id!r} appears twice")
            seen.add(c.id)


@dataclass
class ClaimResult:
    """A claim evaluated against our metrics: one record of ``claims.json``."""

    id: str
    kind: str
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
    """Read and validate a ``claims.yaml`` (its claims)."""
    return load_claims_file(path).claims


def load_claims_file(path: str | Path) -> ClaimsFile:
    """Read and validate a ``claims.yaml``: claims and targets."""
    return from_dict(ClaimsFile, read_yaml(path), file=str(path))


def count_results(records: list[Any]) -> tuple[int, int]:
    """``(reproduced, total)`` over the claims of kind ``result`` (records or ClaimResults)."""

    def get(r: Any, key: str) -> Any:
        return r[key] if isinstance(r, Mapping) else getattr(r, key)

    results = [r for r in records if get(r, "kind") == "result"]
    return sum(bool(get(r, "reproduced")) for r in results), len(results)


@dataclass
class TargetResult:
    """A target evaluated against our metrics."""

    target: Target
    ours: float | None
    met: bool


def evaluate_targets(targets: list[Target], metrics: Mapping[str, float]) -> list[TargetResult]:
    out = []
    for t in targets:
        value = metrics.get(t.metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(TargetResult(t, None, False))
            continue
        out.append(
            TargetResult(t, float(value), is_reproduced(t.check, t.goal, float(value), t.tolerance))
        )
    return out


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
        "kind": c.kind,
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
