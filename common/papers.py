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
