"""The pipeline's wiring: params files, every dvc.yaml, the registry, the profiles, the declared
code dependencies of every stage, the two commands and CI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

from common.config import PROFILES, load_profiles, read_root, section_file
from common.imports import code_files
from common.papers import load_class, papers, sections
from common.pipeline import Stage, stages, undeclared

REPO = Path(__file__).resolve().parents[1]
ROOT_PARAMS = REPO / "params.yaml"
_MISSING = object()


@cache
def _stages() -> list[Stage]:
    return stages(REPO)


def test_every_section_with_profiles_is_registered() -> None:
    """The root params.yaml selects a profile for exactly the registered sections."""
    assert set(read_root(ROOT_PARAMS)["profile"]) == set(sections(REPO))


@pytest.mark.parametrize("section", sorted(sections(REPO)))
def test_every_profile_validates(section: str) -> None:
    """Profiles that CI never runs (paper) are still type- and range-checked."""
    cls = load_class(sections(REPO)[section])
    assert set(load_profiles(cls, ROOT_PARAMS, section)) == set(PROFILES)


def _lookup(data: object, dotted: str) -> object:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


@pytest.mark.parametrize("profile", PROFILES)
def test_dvc_params_exist_in_every_profile(profile: str) -> None:
    root = yaml.safe_load(ROOT_PARAMS.read_text())
    for stage in _stages():
        for entry in stage.params:
            if isinstance(entry, str):
                assert _lookup(root, entry) is not _MISSING, (stage.name, entry)
                continue
            (file, keys), *_ = entry.items()
            data = yaml.safe_load((REPO / file).read_text())
            for key in keys:
                key = re.sub(r"^\$\{profile\.\w+\}", profile, key)
                key = key.replace("${key}", stage.name.split("@")[-1])
                if "${" in key:  # a foreach item field: checked through the stage's command
                    continue
                assert _lookup(data, key) is not _MISSING, (stage.name, file, key)


def test_dvc_commands_pass_the_paths_they_declare() -> None:
    """Paths a command writes are declared outputs and paths it reads are declared dependencies."""
    for stage in _stages():
        for flag in ("--out", "--metrics", "--history", "--checkpoints"):
            m = re.search(rf"{flag} (\S+)", stage.cmd)
            if m:
                path = m.group(1)
                assert any(o == path or o.startswith(path + "/") for o in stage.outs), (
                    stage.name,
                    flag,
                    path,
                )
        for flag in (
            "--data",
            "--baseline",
            "--pruned",
            "--raw",
            "--mnist",
            "--claims",
            "--mcu-table",
            "--model",
            "--supernet",
            "--init",
            "--teacher",
        ):
            m = re.search(rf"{flag} (\S+)", stage.cmd)
            if m:
                assert m.group(1) in stage.deps, (stage.name, flag, m.group(1))


def test_stages_declare_the_code_they_import() -> None:
    """Every repository module a stage can load (imports anywhere in the code it reaches, and
    the package data those modules read) is covered by a declared dependency, so DVC reruns the
    stage when that code changes. `python -m common.pipeline fix` rewrites them."""
    problems = [f"{s.file}: {s.name}: {', '.join(undeclared(s, REPO))}" for s in _stages()]
    problems = [p for p in problems if not p.endswith(": ")]
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_stage_modules_load_only_declared_code_when_imported() -> None:
    """Each stage module imported in a fresh interpreter: every repository file it loads is a
    declared dependency of each stage running it."""
    modules = sorted({s.module for s in _stages() if s.module})
    # One interpreter loads the heavy third-party libraries once; every module is then imported
    # in a fork of it, which starts with no repository module loaded (as a fresh interpreter
    # would) without paying torch's import again (about 2 s per module).
    probe = (
        "import json, os, sys\n"
        "import numpy, torch  # third-party only\n"
        "assert not [m for m in sys.modules if m == 'common' or m.startswith(('common.', 'papers'))]\n"
        "for m in sys.argv[1:]:\n"
        "    r, w = os.pipe()\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os.close(r)\n"
        "        import importlib\n"
        "        importlib.import_module(m)\n"
        "        files = sorted({getattr(v, '__file__', None) or '' for v in list(sys.modules.values())})\n"
        "        with os.fdopen(w, 'w') as out:\n"
        "            out.write(json.dumps(files))\n"
        "        os._exit(0)\n"
        "    os.close(w)\n"
        "    with os.fdopen(r) as inp:\n"
        "        data = inp.read()\n"
        "    if os.waitpid(pid, 0)[1] != 0:\n"
        "        sys.exit(f'importing {m} failed')\n"
        "    print(json.dumps({m: json.loads(data)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *modules],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    found = {}
    for line in out.stdout.splitlines():
        found.update(json.loads(line))
    assert set(found) == set(modules)
    for module, files in found.items():
        paths = [Path(f).resolve() for f in files if f]
        loaded = {
            str(p.relative_to(REPO))
            for p in paths
            if p.is_relative_to(REPO / "common") or p.is_relative_to(REPO / "papers")
        }
        for stage in (s for s in _stages() if s.module == module):
            missing = [
                f
                for f in sorted(loaded)
                if not any(f == d or f.startswith(d + "/") for d in stage.deps)
            ]
            assert not missing, (stage.name, missing)


def test_the_dependency_check_catches_an_undeclared_import() -> None:
    """A stage that leaves out one file its module imports fails the check, naming the file."""
    real = next(s for s in _stages() if s.name == "deep_compression_baseline@lenet5")
    files = code_files(real.module, REPO)
    dropped = "common/train/trainer.py"
    assert dropped in files
    deps = tuple(f for f in files if f != dropped)
    broken = Stage(real.name, real.file, real.cmd, deps, real.outs, real.params)
    assert undeclared(broken, REPO) == [dropped]
    # A folder dependency covers every file below it.
    whole = Stage(real.name, real.file, real.cmd, (*deps, "common/train"), real.outs, real.params)
    assert undeclared(whole, REPO) == []


def test_every_registered_paper_has_its_files_and_is_indexed() -> None:
    index = next(s for s in _stages() if s.name == "reports_index")
    course = next(s for s in _stages() if s.name == "course_slides")
    for paper in papers(REPO):
        folder = REPO / paper.folder
        for name in ("README.md", "claims.yaml", "dvc.yaml", "params.yaml", "config.py"):
            assert (folder / name).is_file(), (paper.slug, name)
        assert section_file(ROOT_PARAMS, paper.slug) == folder / "params.yaml"
        assert f"reports/{paper.slug}/claims.json" in index.deps, paper.slug
        assert f"reports/{paper.slug}/claims.json" in index.cmd, paper.slug
        names = [s.name for s in _stages() if s.file == paper.folder / "dvc.yaml"]
        assert f"{paper.slug}_report" in names, paper.slug
        # its deck, from its report; the course deck has a slide for it
        deck = next(s for s in _stages() if s.name == f"{paper.slug}_slides")
        report = next(s for s in _stages() if s.name == f"{paper.slug}_report")
        assert {o for o in report.outs if o.startswith("reports/")} <= set(deck.deps), paper.slug
        assert f"reports/{paper.slug}/claims.json" in course.deps, paper.slug
        assert f"reports/{paper.slug}/claims.json" in course.cmd, paper.slug


def test_report_stages_read_every_metric_of_their_paper() -> None:
    """A report depends on each metrics file its paper's stages write (not on the folder, where it
    writes derived.json itself) and declares derived.json as its own metric."""
    for paper in papers(REPO):
        own = [s for s in _stages() if s.file == paper.folder / "dvc.yaml"]
        report = next(s for s in own if s.name == f"{paper.slug}_report")
        derived = f"metrics/{paper.slug}/derived.json"
        assert derived in report.outs, paper.slug
        assert f"metrics/{paper.slug}" not in report.deps, paper.slug
        written = {
            o
            for s in own
            if s is not report
            for o in s.outs
            if o.startswith(f"metrics/{paper.slug}/") and o.endswith(".json")
        }
        assert written <= set(report.deps), sorted(written - set(report.deps))


def test_the_two_commands_and_ci() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make repro" in readme and "make test" in readme
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^test: .*\n\t.*pytest", makefile, re.M)


def test_an_empty_dependency_entry_is_named(tmp_path: Path) -> None:
    """A bare ``-`` in a stage's deps (DVC refuses the whole file) is reported with its stage."""
    (tmp_path / "params.yaml").write_text("profile: {}\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  s:\n    cmd: python -m x\n    deps:\n      -\n      - a.txt\n"
    )
    with pytest.raises(ValueError, match=r"dvc\.yaml: s\.deps: an empty entry"):
        stages(tmp_path)
