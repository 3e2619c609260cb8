"""Scaffold a new paper (or a final project) that runs from its first minute.

``python -m common.new_paper <slug> --title "..." --citation "Author et al., Venue Year" [--url ...]``

writes, from ``papers/_template/``:

* ``papers/<slug>/``: README, ``config.py`` (the profile dataclass), ``params.yaml`` (default,
  smoke = default with overrides, paper), ``dvc.yaml`` (a training stage over the profile's
  models and the report stage), ``train.py``, ``report.py`` (a ``ReportSpec``), ``claims.yaml``;
* ``tests/papers/<slug>/``: a test of the training stage and the report at the smoke profile;

and registers the paper: an entry in ``papers/registry.yaml``, ``profile.<slug>: default`` in the
root ``params.yaml``, its ``claims.json`` in the ``reports_index`` and ``course_slides`` stages
of the root ``dvc.yaml``, and the exact code dependencies of its stages (``common.pipeline.fix``). Then
``dvc repro papers/<slug>/dvc.yaml`` runs it; edit the files to make it the paper's.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from common.config import ConfigError
from common.papers import REGISTRY, papers
from common.paths import repo_root

TEMPLATE = Path("papers") / "_template"
TEST_TEMPLATE = "test.py.tmpl"


def class_prefix(slug: str) -> str:
    """``lite_transformer`` -> ``LiteTransformer``."""
    return "".join(part.capitalize() for part in slug.split("_"))


def render(text: str, *, slug: str, title: str, citation: str, url: str) -> str:
    return (
        text.replace("__PAPER__", slug)
        .replace("__Name__", class_prefix(slug))
        .replace("__TITLE__", title)
        .replace("__CITATION__", citation)
        .replace("__URL__", url or "no link yet")
    )


def _yaml_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def register(root: Path, slug: str, title: str, citation: str, url: str) -> None:
    """Add the paper to the registry, the root params.yaml, the index and the course deck."""
    registry = root / REGISTRY
    entry = (
        f"  - slug: {slug}\n    title: {_yaml_str(title)}\n    citation: {_yaml_str(citation)}\n"
        + (f"    url: {url}\n" if url else "")
        + f"    config: papers.{slug}.config:{class_prefix(slug)}Profile\n"
    )
    text = registry.read_text()
    start = text.find(f"  - slug: {slug}\n")
    if start >= 0:  # a planned entry: the paper takes its place in the course's order
        end = text.find("\n  - slug: ", start + 1)
        end = len(text) if end < 0 else end + 1
        registry.write_text(text[:start] + entry + text[end:])
    else:
        registry.write_text(text.rstrip("\n") + "\n" + entry)

    params = root / "params.yaml"
    lines = params.read_text().splitlines()
    start = lines.index("profile:")
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    lines.insert(end, f"  {slug}: default")
    params.write_text("\n".join(lines) + "\n")

    # the stages over every paper's claims.json: the index of reports and the course deck
    dvc = root / "dvc.yaml"
    text = dvc.read_text()
    claims = f"reports/{slug}/claims.json"
    for stage in ("reports_index", "course_slides"):
        if f"  {stage}:" not in text:
            continue
        index = text.index(f"  {stage}:")
        head, tail = text[:index], text[index:]
        cmd_end = tail.index("\n    deps:")
        tail = tail[:cmd_end] + f" {claims}" + tail[cmd_end:]
        deps_at = tail.index("\n    deps:\n") + len("\n    deps:\n")
        tail = tail[:deps_at] + f"      - {claims}\n" + tail[deps_at:]
        text = head + tail
    dvc.write_text(text)


def scaffold(
    slug: str, *, title: str, citation: str, url: str = "", root: Path | None = None
) -> list[Path]:
    """Write the paper's files and register it; returns the files written."""
    root = root or repo_root()
    if not re.fullmatch(r"[a-z][a-z0-9_]*", slug) or slug.startswith("_"):
        raise ConfigError(
            f"{slug!r} is not a paper slug: use lowercase letters, digits and underscores "
            "(a Python package name), e.g. lite_transformer"
        )
    known = {p.slug for p in papers(root, planned=True)}
    folder = root / "papers" / slug
    if folder.exists():
        raise ConfigError(f"papers/{slug} exists already: pick another slug or edit that folder")
    planned = {p.slug for p in papers(root, planned=True) if p.status == "planned"}
    if slug in known and slug not in planned:
        raise ConfigError(
            f"{slug!r} is in {REGISTRY} already: pick another slug or edit papers/{slug}"
        )
    values = {"slug": slug, "title": title, "citation": citation, "url": url}
    written = []
    for tmpl in sorted((root / TEMPLATE).glob("*.tmpl")):
        text = render(tmpl.read_text(), **values)
        if tmpl.name == TEST_TEMPLATE:
            target = root / "tests" / "papers" / slug / f"test_{slug}.py"
            (target.parent / "__init__.py").parent.mkdir(parents=True, exist_ok=True)
            (target.parent / "__init__.py").write_text("")
        else:
            target = folder / tmpl.name.removesuffix(".tmpl")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(target)
    register(root, slug, title, citation, url)
    from common.pipeline import fix

    fix(root, [folder.relative_to(root) / "dvc.yaml"])
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common.new_paper", description=__doc__.split("\n")[0]
    )
    parser.add_argument("slug", help="the paper's folder and params section, e.g. lite_transformer")
    parser.add_argument("--title", required=True, help='e.g. "Lite Transformer"')
    parser.add_argument("--citation", required=True, help='e.g. "Wu et al., ICLR 2020"')
    parser.add_argument("--url", default="", help="the paper's page, e.g. an arXiv link")
    args = parser.parse_args(argv)
    try:
        written = scaffold(args.slug, title=args.title, citation=args.citation, url=args.url)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    root = repo_root()
    for path in written:
        print(f"wrote {path.relative_to(root)}")
    print(
        f"registered {args.slug} in {REGISTRY}, params.yaml (profile.{args.slug}: default) and the "
        f"reports_index and course_slides stages of dvc.yaml\n\nNext:\n"
        f"  dvc exp run -S profile.{args.slug}=smoke papers/{args.slug}/dvc.yaml   # runs in seconds\n"
        f"  make test                                                        # includes tests/papers/{args.slug}\n"
        f"then make it the paper's: config.py and params.yaml (its settings), train.py and new stages\n"
        f"(dvc.yaml; `python -m common.pipeline fix` keeps their code dependencies exact), claims.yaml\n"
        f"(its numbers), report.py (its tables and figures), README.md."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
