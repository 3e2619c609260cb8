"""The paper registry: ``papers/registry.yaml``, read as data (``common`` never imports a paper
until it is asked to, by name).

Every list of papers the repository needs (the index of reports, the pipeline and profile tests,
``python -m common.new_paper``) comes from here, so a new paper is added in one place.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from common.config import ConfigError, from_dict, read_yaml
from common.paths import repo_root

REGISTRY = Path("papers") / "registry.yaml"
# Sections of params.yaml that are not papers: their profile classes, as "module:Class".
SHARED_SECTIONS = {"data": "common.data.prepare:DataProfile"}


@dataclass(frozen=True)
class Paper:
    slug: str
    title: str
    citation: str
    url: str = ""
    config: str = ""  # "module:Class" of the profile dataclass
    status: Literal["replicated", "planned"] = "replicated"

    @property
    def folder(self) -> Path:
        return Path("papers") / self.slug

    def profile_class(self) -> type:
        return load_class(self.config)


@dataclass(frozen=True)
class _Registry:
    papers: list[Paper]


def load_class(spec: str) -> type:
    """``"package.module:Class"`` -> the class."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def papers(root: str | Path | None = None, *, planned: bool = False) -> list[Paper]:
    """The registered papers in order (``planned=True`` includes the ones not yet replicated)."""
    path = Path(root or repo_root()) / REGISTRY
    reg = from_dict(_Registry, read_yaml(path), file=str(path))
    slugs = [p.slug for p in reg.papers]
    if len(set(slugs)) != len(slugs):
        raise ConfigError(f"{path}: a slug appears twice")
    return [p for p in reg.papers if planned or p.status == "replicated"]


def sections(root: str | Path | None = None) -> dict[str, str]:
    """Every params section with profiles and its profile class (``"module:Class"``)."""
    return {**SHARED_SECTIONS, **{p.slug: p.config for p in papers(root)}}


def find(slug: str, root: str | Path | None = None) -> Paper:
    for p in papers(root, planned=True):
        if p.slug == slug:
            return p
    raise ConfigError(f"no paper {slug!r} in {REGISTRY}")


def as_dict(paper: Paper) -> dict[str, Any]:
    return {k: getattr(paper, k) for k in ("slug", "title", "citation", "url", "config", "status")}


def check_params(params_file: str | Path = "params.yaml", profile: str | None = None) -> list[str]:
    """Validate the whole parameter tree before any work: the root file (``launch``, the
    profile selection, unknown keys) and every profile of every section (selected or not) with its
    config class; with ``profile``, that name too. Returns the sections checked."""
    from common.config import PROFILES, load_profiles, read_root

    params_file = Path(params_file)
    root = read_root(params_file)
    known = sections(params_file.parent)
    selected = root["profile"]
    for section in known:
        if section not in selected:
            raise ConfigError(
                f"{params_file}: profile.{section}: missing; add `{section}: default` under `profile:`"
            )
    for section in selected:
        if section not in known:
            raise ConfigError(
                f"{params_file}: profile.{section}: not a registered section "
                f"({REGISTRY} lists {', '.join(known)})"
            )
    if profile is not None and profile not in PROFILES:
        raise ConfigError(
            f"profile {profile!r} is not allowed; allowed values: {', '.join(PROFILES)}"
        )
    for section, spec in known.items():
        load_profiles(load_class(spec), params_file, section)
    return list(known)


def main(argv: list[str] | None = None) -> int:
    """``python -m common.papers check [--params F] [--profile P]``: validate every profile of
    every section in one go (``make repro`` runs it first); one line and exit 2 on an error."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m common.papers")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("check", help="validate params.yaml and every section's profiles")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--profile", default=None, help="also check this profile name")
    args = parser.parse_args(argv)
    try:
        checked = check_params(args.params, args.profile or None)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.params}: launch, profiles and every profile of {', '.join(checked)}: valid")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
