"""Temporary copies of the repository's params for tests: the root ``params.yaml`` (which profile
each section runs) and each section's own ``params.yaml`` (its three profiles)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from common.config import PROFILES, section_file

REPO = Path(__file__).resolve().parents[1]


def repo_profiles(section: str) -> dict[str, Any]:
    """A deep copy of the repository's profiles of ``section`` (``{"smoke": ..., ...}``)."""
    return copy.deepcopy(yaml.safe_load(section_file(REPO / "params.yaml", section).read_text()))


def write_params(
    directory: str | Path,
    profile: Mapping[str, str] | str | None = None,
    sections: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write ``<directory>/params.yaml`` and every section's file below ``directory``.

    Args:
        profile: the profile every section runs (a name), or per section (a mapping); the rest
            keep the repository's selection.
        sections: replacement profiles per section (``{"once_for_all": {"paper": {...}}}``);
            profiles not given are the repository's.

    Returns the root ``params.yaml`` to pass as ``--params``.
    """
    directory = Path(directory)
    root = yaml.safe_load((REPO / "params.yaml").read_text())
    if isinstance(profile, str):
        root["profile"] = {s: profile for s in root["profile"]}
    elif profile:
        root["profile"].update(profile)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "params.yaml"
    path.write_text(yaml.safe_dump(root, sort_keys=False))
    for section in root["profile"]:
        data = repo_profiles(section)
        for name, value in ((sections or {}).get(section) or {}).items():
            assert name in PROFILES, name
            data[name] = copy.deepcopy(value)
        target = directory / section_file(REPO / "params.yaml", section).relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
