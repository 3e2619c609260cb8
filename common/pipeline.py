"""The DVC pipeline as data: its stages across every ``dvc.yaml``, and the repository code each
stage runs.

``dvc repro`` reruns a stage when a declared dependency changes, so a stage that imports code it
does not declare can silently keep a stale result. :func:`~common.imports.code_files` follows a
stage module's imports through the repository and :func:`undeclared` lists what a stage imports
but does not declare.

``python -m common.pipeline check`` prints, for every stage, the repository files it imports and
does not declare (exit 1 if any); ``python -m common.pipeline deps <stage>`` prints what a stage
imports, as the shortest list of files and folders to declare; ``python -m common.pipeline fix``
rewrites the code dependencies of every stage in the ``dvc.yaml`` files to exactly that (data,
model and config dependencies are kept as they are).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common.imports import CODE_ROOTS, code_files, covered, data_files
from common.paths import repo_root


@dataclass(frozen=True)
class Stage:
    """One expanded stage (``foreach`` items become ``name@key``)."""

    name: str
    file: Path  # the dvc.yaml, relative to the repository
    cmd: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    params: tuple[Any, ...]

    @property
    def module(self) -> str | None:
        """The Python module the command runs (through ``common.launch`` or directly)."""
        m = re.search(r"python -m common\.launch (?:--nproc \S+ )?([\w.]+)", self.cmd)
        m = m or re.search(r"python -m ([\w.]+)", self.cmd)
        return m.group(1) if m else None


def dvc_files(root: Path | None = None) -> list[Path]:
    """The root ``dvc.yaml`` and every ``papers/<paper>/dvc.yaml``, relative to ``root``."""
    root = root or repo_root()
    return [Path("dvc.yaml"), *sorted(p.relative_to(root) for p in root.glob("papers/*/dvc.yaml"))]


def _interpolate(text: str, variables: dict[str, Any]) -> str:
    def lookup(m: re.Match[str]) -> str:
        value: Any = variables
        for part in m.group(1).split("."):
            if not isinstance(value, dict) or part not in value:
                return m.group(0)
            value = value[part]
        return str(value)

    return re.sub(r"\$\{([\w.]+)\}", lookup, text)


def _entries(items: Any, where: str = "") -> list[str]:
    out = []
    for entry in items or []:
        value = next(iter(entry)) if isinstance(entry, dict) else entry
        if value is None or not str(value).strip():
            # DVC refuses the whole file for this; say where it is before anything else runs.
            raise ValueError(f"{where}: an empty entry (a bare '-'): remove it or name a path")
        out.append(str(value))
    return out


def stages(root: Path | None = None) -> list[Stage]:
    """Every stage of the pipeline, ``foreach`` expanded and ``${...}`` filled from the root
    ``params.yaml`` (``launch``, ``profile``) and the foreach items."""
    root = root or repo_root()
    params = yaml.safe_load((root / "params.yaml").read_text()) or {}
    out = []
    for file in dvc_files(root):
        doc = yaml.safe_load((root / file).read_text()) or {}
        for name, spec in (doc.get("stages") or {}).items():
            foreach = spec.get("foreach")
            if foreach is None:
                expanded = [(name, spec, {})]
            else:
                body = spec["do"]
                items = foreach.items() if isinstance(foreach, dict) else ((k, k) for k in foreach)
                expanded = [(f"{name}@{k}", body, {"key": k, "item": v}) for k, v in items]
            for stage_name, body, local in expanded:
                variables = {**params, **local}

                def fill(text: str, variables: dict[str, Any] = variables) -> str:
                    return _interpolate(str(text), variables)

                outs = [
                    fill(e)
                    for kind in ("outs", "metrics", "plots")
                    for e in _entries(body.get(kind), f"{file}: {stage_name}.{kind}")
                ]
                out.append(
                    Stage(
                        name=stage_name,
                        file=file,
                        cmd=" ".join(fill(body["cmd"]).split()),
                        deps=tuple(
                            fill(d)
                            for d in _entries(body.get("deps"), f"{file}: {stage_name}.deps")
                        ),
                        outs=tuple(outs),
                        params=tuple(body.get("params") or ()),
                    )
                )
    return out


def undeclared(stage: Stage, root: Path | None = None) -> list[str]:
    """Repository files ``stage``'s module imports (and the package data they read) that none of
    its deps covers. A package ``__init__.py`` counts: Python runs it on the way in."""
    if stage.module is None:
        return []
    files = code_files(stage.module, root)
    return [f for f in [*files, *data_files(files)] if not covered(f, stage.deps)]


FOLD = 0.5  # fold a package into one folder dependency when a stage loads this share of it


def minimal_deps(files: list[str], fold: float = FOLD) -> list[str]:
    """``files`` as dependencies to declare: a package folder of ``common/`` replaces its files
    when the stage loads at least ``fold`` of the package's ``.py`` files (``__init__.py``
    included). Folding declares a little more than
    the stage imports (a change to the rest of the package reruns it too) and keeps dvc.yaml
    readable; ``fold=1`` declares exactly what is imported."""
    root = repo_root()
    chosen = set(files)
    folders = sorted({str(Path(f).parent) for f in files}, key=lambda d: -d.count("/"))
    for folder in folders:
        if not folder.startswith("common/"):
            continue  # a paper's folder also holds its dvc.lock, params and claims
        everything = {
            str(p.relative_to(root))
            for p in (root / folder).rglob("*.py")
            if "__pycache__" not in p.parts
        }
        used = {c for c in chosen if c == folder or c.startswith(folder + "/")}
        covered = {e for e in everything if any(e == u or e.startswith(u + "/") for u in used)}
        if everything and len(covered) >= fold * len(everything):
            chosen = (chosen - used) | {folder}
    return sorted(chosen)


def _is_code(dep: str, root: Path) -> bool:
    """A dependency on repository code (a ``.py`` file or a folder of them under common/ or
    papers/), as opposed to data, models or configs (``claims.yaml``)."""
    if dep.split("/")[0] not in CODE_ROOTS:
        return False
    path = root / dep
    return dep.endswith(".py") or (path.is_dir() and any(path.rglob("*.py")))


def fix(root: Path | None = None, files: list[Path] | None = None) -> list[str]:
    """Rewrite each stage's code dependencies to :func:`minimal_deps` of what it imports (for a
    ``foreach`` stage, of what any of its items imports), in ``files`` (default: every
    ``dvc.yaml``). Returns the files changed."""
    root = root or repo_root()
    by_stage: dict[tuple[Path, str], set[str]] = {}
    for s in stages(root):
        if s.module is not None:
            key = (s.file, s.name.split("@")[0])
            by_stage.setdefault(key, set()).update(code_files(s.module, root))
    changed = []
    for file in files if files is not None else dvc_files(root):
        lines = (root / file).read_text().splitlines()
        out: list[str] = []
        stage = None
        i = 0
        while i < len(lines):
            line = lines[i]
            m = re.match(r"^  (\w[\w-]*):\s*$", line)
            if m:
                stage = m.group(1)
            dm = re.match(r"^(\s+)deps:\s*$", line)
            if dm and stage and (file, stage) in by_stage:
                out.append(line)
                indent = len(dm.group(1))
                items = []
                i += 1
                while i < len(lines) and re.match(rf"^\s{{{indent},}}- ", lines[i]):
                    items.append(lines[i])
                    i += 1
                item_indent = (
                    items[0][: len(items[0]) - len(items[0].lstrip())]
                    if items
                    else " " * (indent + 2)
                )
                files = sorted(by_stage[(file, stage)])
                code = minimal_deps(files)
                code += data_files(files, code)
                kept = [
                    it
                    for it in items
                    if not _is_code(it.strip()[2:].strip(), root)
                    and it.strip()[2:].strip() not in code
                ]
                out += kept + [f"{item_indent}- {d}" for d in code]
                continue
            out.append(line)
            i += 1
        text = "\n".join(out) + "\n"
        if text != (root / file).read_text():
            (root / file).write_text(text)
            changed.append(str(file))
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common.pipeline", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="list undeclared code dependencies of every stage (exit 1 if any)")
    d = sub.add_parser("deps", help="what a stage imports, as files and folders to declare")
    d.add_argument("stage")
    sub.add_parser("fix", help="rewrite every stage's code dependencies to what it imports")
    args = parser.parse_args(argv)
    if args.cmd == "fix":
        for file in fix():
            print(f"rewrote the code dependencies in {file}")
        return 0
    all_stages = stages()
    if args.cmd == "deps":
        match = [s for s in all_stages if s.name == args.stage]
        if not match or match[0].module is None:
            print(f"error: no stage {args.stage!r} running a Python module", file=sys.stderr)
            return 2
        files = code_files(match[0].module)
        code = minimal_deps(files)
        print("\n".join(code + data_files(files, code)))
        return 0
    bad = 0
    for s in all_stages:
        missing = undeclared(s)
        if missing:
            bad += 1
            print(f"{s.file}: {s.name}: imports but does not declare: {', '.join(missing)}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
