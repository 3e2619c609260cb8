"""The pipeline's wiring: params.yaml, dvc.yaml, the profiles, the two commands and CI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from common.config import PROFILES, from_dict
from common.data.prepare import DataProfile
from papers.deep_compression.config import DeepCompressionProfile
from papers.mcunet.config import MCUNetProfile
from papers.once_for_all.config import OFAProfile

REPO = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())
# Every params.yaml section with profiles, and the class that validates a profile of it.
SECTION_CLASSES = {
    "data": DataProfile,
    "deep_compression": DeepCompressionProfile,
    "mcunet": MCUNetProfile,
    "once_for_all": OFAProfile,
}
_MISSING = object()


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


def _lookup(data: object, dotted: str) -> object:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _expand(text: str, key: str | None, item: object) -> str:
    """Substitute DVC's foreach variables (``${item}``, ``${key}``, ``${item.field}``)."""
    if key is None:
        return text
    text = text.replace("${key}", key)
    if isinstance(item, dict):
        for field, value in item.items():
            text = text.replace("${item." + field + "}", str(value))
        return text
    return text.replace("${item}", str(item))


def _stages() -> list[tuple[str, dict, str | None, object]]:
    out = []
    for name, stage in DVC["stages"].items():
        foreach = stage.get("foreach")
        if isinstance(foreach, dict):
            out += [(f"{name}@{k}", stage["do"], k, v) for k, v in foreach.items()]
        elif isinstance(foreach, list):
            out += [(f"{name}@{k}", stage["do"], k, k) for k in foreach]
        else:
            out.append((name, stage, None, None))
    return out


@pytest.mark.parametrize("profile", PROFILES)
def test_dvc_params_exist_in_every_profile(profile: str) -> None:
    for name, stage, key, item in _stages():
        for param in stage.get("params", []):
            param = re.sub(r"\$\{[a-z_]+\.profile\}", profile, _expand(param, key, item))
            assert _lookup(PARAMS, param) is not _MISSING, (name, param)


def test_dvc_commands_pass_the_paths_they_declare() -> None:
    """Paths a command writes are declared outputs and paths it reads are declared dependencies."""
    for name, stage, key, item in _stages():
        cmd = _expand(stage["cmd"], key, item)
        declared = []
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                declared.append(
                    _expand(next(iter(entry)) if isinstance(entry, dict) else entry, key, item)
                )
        deps = [_expand(d, key, item) for d in stage.get("deps", [])]
        for flag in ("--out", "--metrics", "--history", "--checkpoints"):
            m = re.search(rf"{flag} (\S+)", cmd)
            if m:
                path = m.group(1)
                assert any(d == path or d.startswith(path + "/") for d in declared), (
                    name,
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
            "--metrics-dir",
            "--mcu-table",
        ):
            m = re.search(rf"{flag} (\S+)", cmd)
            if m:
                assert m.group(1) in deps, (name, flag, m.group(1))


def test_the_two_commands_and_ci() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make repro" in readme and "make test" in readme
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^test: .*\n\t.*pytest", makefile, re.M)
