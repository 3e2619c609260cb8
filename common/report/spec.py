"""Reports as data: a paper's report is a :class:`ReportSpec` (sections of claim grids, metric
tables, figures and text) that :func:`build_report` renders from the pipeline's outputs.

A paper's ``report.py`` declares what to show; this module does the reading, the derived numbers,
the claim evaluation, the rendering and the publishing, once for every paper::

    SPEC = ReportSpec(
        paper="deep_compression", title="...", intro="...",
        derive=derive,                       # ratios/differences -> metrics/<paper>/derived.json
        sections=[
            ClaimGrid("Table 2: LeNet-300-100", prefix="table2.lenet300",
                      columns=[Col("kept_pct", "Weights %"), Col("rate_pqh", "Size %")]),
            MetricTable("The networks", rows=lambda r: [(m.label, k) for k, m in r.config.models.items()],
                        columns=[Col("{row}/macs", "MMACs", scale=1e-6)]),
            Figure("Error against size", "tradeoff.png", draw=draw_tradeoff),
            Text("Run time", lambda r: ...),
        ],
        scaled_down=scaled_down,
    )

    def main(argv=None):
        return report_main(SPEC, argv)

Claim ids encode ``table.row.column``: a :class:`ClaimGrid` lays the claims under ``prefix`` out as
a table, one row per ``row``, one column per ``column``, each cell "ours (paper)" with a mark
(✓ reproduced, ✗ not, "(set)" for settings, "(arch)" for architecture checks).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.report.claims import (
    ClaimResult,
    TargetResult,
    evaluate_claims,
    evaluate_targets,
    load_claims_file,
)
from common.report.markdown import Section, fmt, mark, table

DERIVED_FILE = "derived.json"


STAGE_SECONDS = "pipeline/stage_seconds"


def stage_seconds(metrics: Mapping[str, float]) -> dict[str, float]:
    """``{STAGE_SECONDS: the sum of every stage's ``time/*`` metric}`` for a paper's derived
    numbers (empty when no stage recorded a time)."""
    times = [v for k, v in metrics.items() if k.startswith("time/")]
    return {STAGE_SECONDS: float(sum(times))} if times else {}


# ---------------------------------------------------------------------- what a section sees
@dataclass
class ReportData:
    """Everything a section can read: the resolved profile, the merged metrics (stage metrics
    plus derived), the evaluated claims and targets, side files, and where figures go."""

    paper: str
    profile: str
    config: Any
    metrics: dict[str, float]
    results: list[ClaimResult]
    targets: list[TargetResult]
    args: argparse.Namespace
    figures: Path
    files: dict[str, Any] = field(default_factory=dict)

    @property
    def claims(self) -> dict[str, ClaimResult]:
        return {r.id: r for r in self.results}

    def paper_value(self, claim_id: str) -> float | None:
        c = self.claims.get(claim_id)
        return None if c is None else c.paper

    def m(self, key: str) -> float | None:
        """A metric, or ``None`` when the pipeline did not produce it at this profile."""
        v = self.metrics.get(key)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    def json(self, path: str | Path) -> Any:
        """A JSON file written by a stage, or ``None`` when that stage did not run."""
        path = Path(path)
        return json.loads(path.read_text()) if path.is_file() else None


Content = str | Callable[[ReportData], str]


def _text(content: Content, r: ReportData) -> str:
    return content(r) if callable(content) else content


# ---------------------------------------------------------------------- cells and columns
def cell(ours: float | None, paper: float | None = None, digits: int = 4, unit: str = "") -> str:
    """``ours (paper)`` in one cell; a dash where a value is missing."""
    o = (
        "–"
        if ours is None or (isinstance(ours, float) and math.isnan(ours))
        else f"{fmt(float(ours), digits)}{unit}"
    )
    return o if paper is None else f"{o} ({fmt(float(paper), digits)}{unit})"


def kb(value: float | None) -> str:
    """Bytes as kB (1024) with one decimal."""
    return "–" if value is None else f"{value / 1024:,.1f}"


@dataclass(frozen=True)
class Col:
    """A column. In a :class:`ClaimGrid`, ``key`` is the claim id's last part; in a
    :class:`MetricTable`, a metric key template with ``{row}`` (or a function of the row key and
    the report data returning the cell's text or number)."""

    key: str | Callable[[str, ReportData], Any]
    header: str
    digits: int = 4
    unit: str = ""
    scale: float = 1.0
    format: Callable[[float], str] | None = None

    def render(self, value: Any) -> str:
        if value is None or isinstance(value, str):
            return "–" if value is None else value
        if self.format is not None:
            return self.format(value)
        return f"{fmt(float(value) * self.scale, self.digits)}{self.unit}"


# ---------------------------------------------------------------------- sections
@dataclass
class Text:
    """Free text (Markdown), fixed or computed from the report data."""

    title: str
    body: Content

    def render(self, r: ReportData) -> str:
        return _text(self.body, r)


@dataclass
class RunTime:
    """How long the paper's stages took (:func:`stage_seconds`, which ``derive`` must add),
    against the issue's budget for the default profile; ``after`` is appended."""

    budget_minutes: float
    after: str = ""
    title: str = "Run time"

    def render(self, r: ReportData) -> str:
        total = r.m(STAGE_SECONDS)
        if total is None:
            return "No stage times recorded."
        text = (
            f"The stages of this profile took {total / 60:.1f} minutes on this machine (sum of "
            "the stages' own timers, without process start-up; the issue's budget for the "
            f"default profile is {self.budget_minutes:g} minutes on 2 CPU cores)."
        )
        return f"{text} {self.after}" if self.after else text


@dataclass
class ClaimGrid:
    """The claims whose ids start with ``prefix.`` laid out as ``prefix.<row>.<column>``.

    Rows default to the order the claims file gives them. Each cell is "ours (paper) mark"; a row
    or column with no claim shows the metric ``fallback(row, column)`` when given, else a dash.
    """

    title: str
    prefix: str
    columns: Sequence[Col]
    rows: Sequence[str] | None = None
    row_label: Callable[[str], str] = str
    row_header: str = ""
    intro: Content = ""
    note: Content = ""
    fallback: Callable[[str, str, ReportData], float | None] | None = None

    def row_keys(self, r: ReportData) -> list[str]:
        if self.rows is not None:
            return list(self.rows)
        keys: list[str] = []
        start = f"{self.prefix}."
        for res in r.results:
            if res.id.startswith(start):
                row = res.id[len(start) :].rsplit(".", 1)[0]
                if row not in keys:
                    keys.append(row)
        return keys

    def render(self, r: ReportData) -> str:
        claims = r.claims
        lines = []
        for row in self.row_keys(r):
            cells = [self.row_label(row)]
            for col in self.columns:
                res = claims.get(f"{self.prefix}.{row}.{col.key}")
                if res is not None:
                    ours = None if res.ours is None else res.ours * col.scale
                    text = f"{cell(ours, res.paper * col.scale, col.digits, col.unit)} {mark(res)}"
                elif self.fallback is not None:
                    text = col.render(self.fallback(row, str(col.key), r))
                else:
                    text = "–"
                cells.append(text)
            lines.append(cells)
        body = table([self.row_header or "", *(c.header for c in self.columns)], lines)
        return _join(_text(self.intro, r), body, _text(self.note, r))


@dataclass
class MetricTable:
    """Rows of metrics: ``rows`` gives ``(label, row key)`` pairs (or a function of the report
    data returning them); each column's key template reads ``metrics[key.format(row=...)]``."""

    title: str
    rows: Sequence[tuple[str, str]] | Callable[[ReportData], Sequence[tuple[str, str]]]
    columns: Sequence[Col]
    row_header: str = ""
    intro: Content = ""
    note: Content = ""

    def render(self, r: ReportData) -> str:
        rows = self.rows(r) if callable(self.rows) else self.rows
        lines = []
        for label, key in rows:
            cells = [label]
            for col in self.columns:
                value = col.key(key, r) if callable(col.key) else r.m(col.key.format(row=key))
                cells.append(col.render(value))
            lines.append(cells)
        body = table([self.row_header or "", *(c.header for c in self.columns)], lines)
        return _join(_text(self.intro, r), body, _text(self.note, r))


@dataclass
class Figure:
    """A PNG drawn by ``draw(r, path)`` into ``figures/<file>``; ``draw`` returns ``False`` when
    the data behind it is missing at this profile (the page says so instead of a broken image)."""

    title: str
    file: str
    draw: Callable[[ReportData, Path], bool | None]
    alt: str = ""
    intro: Content = ""
    note: Content = ""

    def render(self, r: ReportData) -> str:
        path = r.figures / self.file
        drawn = self.draw(r, path)
        image = (
            f"![{self.alt or self.title}](figures/{self.file})"
            if drawn is not False and path.is_file()
            else "(figure not available: the stage behind it did not run at this profile)"
        )
        return _join(_text(self.intro, r), image, _text(self.note, r))


@dataclass
class Group:
    """Several parts under one heading (e.g. a table followed by its figure)."""

    title: str
    parts: Sequence[Any]

    def render(self, r: ReportData) -> str:
        return _join(*(p.render(r) for p in self.parts))


@dataclass
class When:
    """``part`` when ``ready(r)`` is true, else the sentence ``otherwise`` (e.g. "the ablation
    stage did not run at this profile"), instead of a table of dashes."""

    ready: Callable[[ReportData], Any]
    part: Any
    otherwise: str
    title: str = ""

    def render(self, r: ReportData) -> str:
        return self.part.render(r) if self.ready(r) else self.otherwise


@dataclass
class Targets:
    """The benchmark section: goals of our own beside the paper's related numbers, from the
    ``targets:`` of ``claims.yaml``. Never counted as claims."""

    title: str = "Benchmarks: goals of our own"
    intro: Content = (
        "Targets we set ourselves for our own code (not the paper's claims; not counted in the "
        "headline). The paper's related number, where there is one, is beside the goal."
    )

    def render(self, r: ReportData) -> str:
        if not r.targets:
            return ""
        rows = []
        for t in r.targets:
            tg = t.target
            unit = "×" if tg.unit == "x" else (f" {tg.unit}" if tg.unit else "")
            sign = {"within": "=", "at_most": "≤", "at_least": "≥"}[tg.check]
            rows.append(
                [
                    f"{tg.description} (`{tg.id}`)",
                    f"{sign} {fmt(tg.goal)}{unit}",
                    "–" if t.ours is None else f"{fmt(t.ours)}{unit}",
                    "**met**" if t.met else "**not met**",
                    "–" if tg.paper is None else f"{fmt(tg.paper)}{unit} ({tg.paper_source})",
                    tg.note,
                ]
            )
        body = table(
            ["Target", "Goal", "Ours", "Verdict", "Paper's related number", "Note"],
            rows,
            align="lrrlll",
        )
        return _join(_text(self.intro, r), body)


def _join(*parts: str) -> str:
    return "\n\n".join(p.strip() for p in parts if p and p.strip())


# ---------------------------------------------------------------------- the spec
@dataclass
class ReportSpec:
    """A paper's report as data. ``derive(metrics, r)`` returns the derived numbers (ratios,
    differences) that the claims compare; they are written to ``metrics/<paper>/derived.json``
    so that ``dvc metrics diff`` shows every headline number. ``scale(claim, r)`` says how a
    claim's run differs from the paper; ``scaled_down(r)`` lists what was scaled down."""

    paper: str
    title: str
    intro: str
    sections: Sequence[Any]
    config: type | None = None
    derive: Callable[[dict[str, float], ReportData], Mapping[str, float]] | None = None
    scale: Callable[[Any, ReportData], str] | None = None
    scaled_down: Callable[[ReportData], Sequence[str]] = lambda r: [f"Profile: {r.profile}."]
    track: Callable[[Any], Any] | None = None  # the part of the config MLflow records
    flags: Sequence[tuple[str, dict[str, Any]]] = ()  # extra inputs, e.g. ("runs", {...})

    @property
    def stage(self) -> str:
        return f"{self.paper}_report"


def read_stage_metrics(directory: Path) -> dict[str, float]:
    """Every flat ``{key: number}`` JSON a stage wrote in ``directory`` (not ``derived.json``,
    which the report writes itself); a key defined twice is an error."""
    merged: dict[str, float] = {}
    for path in sorted(Path(directory).glob("*.json")):
        if path.name == DERIVED_FILE:
            continue
        data = json.loads(path.read_text())
        if isinstance(data, dict) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in data.values()
        ):
            for k, v in data.items():
                if k in merged:
                    raise ValueError(f"metric {k!r} appears in two files (second: {path})")
                merged[k] = v
    return merged


def build_report(
    spec: ReportSpec, args: argparse.Namespace, profile: str, config: Any, run: Any = None
) -> Path:
    """Read the metrics, derive, evaluate the claims and targets, render and publish (recording
    the page, ``claims.json`` and the figures in the MLflow ``run`` when given)."""
    from common.io import write_metrics
    from common.report.publish import publish_report

    metrics = read_stage_metrics(args.metrics_dir)
    claims_file = load_claims_file(args.claims)
    r = ReportData(
        paper=spec.paper,
        profile=profile,
        config=config,
        metrics=metrics,
        results=[],
        targets=[],
        args=args,
        figures=Path(args.out) / "figures",
    )
    derived = dict(spec.derive(metrics, r)) if spec.derive else {}
    clash = sorted(set(derived) & set(metrics))
    if clash:
        raise ValueError(f"derived metric {clash[0]!r} is also a stage metric")
    write_metrics(derived, Path(args.metrics_dir) / DERIVED_FILE)
    r.metrics = {**metrics, **derived}
    scale = (lambda c: spec.scale(c, r)) if spec.scale else (lambda c: f"{profile} profile")
    r.results = evaluate_claims(claims_file.claims, r.metrics, scale=scale)
    r.targets = evaluate_targets(claims_file.targets, r.metrics)
    sections = []
    for s in spec.sections:
        body = s.render(r)
        if body.strip():
            sections.append(Section(s.title, body))
    return publish_report(
        args.out,
        paper=spec.paper,
        title=spec.title,
        stage=spec.stage,
        intro=spec.intro,
        profile=profile,
        results=r.results,
        sections=sections,
        scaled_down=list(spec.scaled_down(r)),
        run=run,
    )


REPORT_FLAGS: dict[str, dict[str, Any]] = {
    "claims": {"type": Path, "required": True, "help": "the paper's claims.yaml"},
    "metrics-dir": {
        "type": Path,
        "required": True,
        "help": "metrics/<paper>: the stages' metrics; derived.json is written there",
    },
    "out": {"type": Path, "required": True, "help": "reports/<paper>"},
}


def report_main(spec: ReportSpec, argv: list[str] | None = None) -> int:
    """The report stage of ``spec``: ``python -m papers.<paper>.report --params params.yaml
    --claims ... --metrics-dir ... --out ...`` (plus the spec's own flags)."""
    from common.stage import StageContext, stage

    def flags(parser: argparse.ArgumentParser) -> None:
        for flag, kwargs in [*REPORT_FLAGS.items(), *spec.flags]:
            parser.add_argument(f"--{flag}", **kwargs)

    def body(ctx: StageContext) -> None:
        build_report(spec, ctx.args, ctx.profile, ctx.config, run=ctx.run)

    body.__module__ = f"papers.{spec.paper}.report"
    main = stage(
        section=spec.paper,
        name=spec.stage,
        config=spec.config,
        flags=flags,
        description=f"Stage {spec.stage}: render reports/{spec.paper}/ from the metrics and claims.",
        track=(lambda ctx: spec.track(ctx.config)) if spec.track else None,
    )(body)
    return main(argv)
