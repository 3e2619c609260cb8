"""The pipeline's wiring: params.yaml, dvc.yaml, the profiles, the two commands and CI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from common.config import PROFILES, from_dict
from common.data.prepare import DataProfile
from papers.deep_compression.config import DeepCompressionProfile

REPO = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())
# Every params.yaml section with profiles, and the class that validates a profile of it.
SECTION_CLASSES = {"data": DataProfile, "deep_compression": DeepCompressionProfile}


def test_every_section_with_profiles_has_a_validator() -> None:
    sections = {k for k, v in PARAMS.items() if isinstance(v, dict) and "profile" in v}
    assert sections == set(SECTION_CLASSES)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("section", sorted(SECTION_CLASSES))
def test_every_profile_validates(section: str, profile: str) -> None:
    """Profiles that CI never runs (paper) are still type- and range-checked."""
    from_dict(
        SECTION_CLASSES[section],
        PARAMS[section]["profiles"][profile],
        file="params.yaml",
        prefix=f"{section}.profiles.{profile}",
    )


def _lookup(data: dict, dotted: str) -> object:
    for part in dotted.split("."):
        assert isinstance(data, dict) and part in data, f"params.yaml has no {dotted}"
        data = data[part]
    return data


def _stages() -> list[tuple[str, dict, str | None]]:
    out = []
    for name, stage in DVC["stages"].items():
        if "foreach" in stage:
            out += [(f"{name}@{item}", stage["do"], item) for item in stage["foreach"]]
        else:
            out.append((name, stage, None))
    return out


@pytest.mark.parametrize("profile", PROFILES)
def test_dvc_params_exist_in_every_profile(profile: str) -> None:
    for name, stage, item in _stages():
        for key in stage.get("params", []):
            key = key.replace("${item}", item or "")
            key = re.sub(r"\$\{[a-z_]+\.profile\}", profile, key)
            _lookup(PARAMS, key), name


def test_dvc_commands_pass_paths_they_declare() -> None:
    """Outputs named in a command are declared as outputs (convention: paths live in dvc.yaml)."""
    for name, stage, item in _stages():
        cmd = stage["cmd"].replace("${item}", item or "")
        declared = []
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                declared.append(next(iter(entry)) if isinstance(entry, dict) else entry)
        for flag in ("--out", "--metrics", "--history", "--checkpoints"):
            m = re.search(rf"{flag} (\S+)", cmd)
            if m:
                path = m.group(1)
                declared_paths = [d.replace("${item}", item or "") for d in declared]
                assert any(d == path or d.startswith(path + "/") for d in declared_paths), (
                    name,
                    flag,
                    path,
                )


def test_the_two_commands_and_ci() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make repro" in readme and "make test" in readme
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^test: .*\n\t.*pytest", makefile, re.M)
