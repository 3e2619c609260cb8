from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from common.config import ConfigError, bounds, from_dict, load_profile, profile_overrides, to_dict
from common.papers import check_params
from common.train import TrainConfig
from tests.params import repo_profiles, write_params

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Inner:
    lr: float = field(default=0.1, metadata=bounds(gt=0))
    name: Literal["sgd", "adam"] = "sgd"


@dataclass(frozen=True)
class Outer:
    epochs: int = field(metadata=bounds(ge=1))
    inner: Inner = Inner()
    sizes: list[int] = field(default_factory=list)
    maybe: int | None = None
    flag: bool = False


def test_valid_config_round_trips() -> None:
    cfg = from_dict(
        Outer, {"epochs": 3, "inner": {"lr": 1, "name": "adam"}, "sizes": [1, 2], "maybe": None}
    )
    assert cfg == Outer(epochs=3, inner=Inner(lr=1.0, name="adam"), sizes=[1, 2])
    assert isinstance(cfg.inner.lr, float)
    assert from_dict(Outer, to_dict(cfg)) == cfg


def test_unknown_key_names_key_file_and_allowed_keys() -> None:
    with pytest.raises(ConfigError) as exc:
        from_dict(
            Outer,
            {"epochs": 3, "inner": {"lrr": 0.1}},
            file="params.yaml",
            prefix="paper.profiles.default",
        )
    msg = str(exc.value)
    assert "params.yaml" in msg
    assert "paper.profiles.default.inner.lrr" in msg
    assert "unknown key" in msg
    assert "lr, name" in msg


def test_wrong_type_is_rejected_with_expected_type() -> None:
    with pytest.raises(ConfigError) as exc:
        from_dict(Outer, {"epochs": "ten"}, file="params.yaml")
    assert "params.yaml: epochs: expected int, got str ('ten')" in str(exc.value)


def test_bool_is_not_an_int_and_int_is_a_float() -> None:
    with pytest.raises(ConfigError, match="expected int, got bool"):
        from_dict(Outer, {"epochs": True})
    assert from_dict(Inner, {"lr": 2}).lr == 2.0


def test_out_of_range_names_the_allowed_range() -> None:
    with pytest.raises(ConfigError) as exc:
        from_dict(Outer, {"epochs": 0}, file="f.yaml")
    assert "f.yaml: epochs: 0 is out of range; allowed: >= 1" in str(exc.value)


def test_literal_lists_allowed_values() -> None:
    with pytest.raises(ConfigError) as exc:
        from_dict(Inner, {"name": "sgdd"})
    assert "'sgdd' is not allowed; allowed values: 'sgd', 'adam'" in str(exc.value)


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match="epochs: missing required key"):
        from_dict(Outer, {})


def test_list_must_be_a_yaml_list_not_a_string() -> None:
    with pytest.raises(ConfigError, match="expected a YAML list"):
        from_dict(Outer, {"epochs": 1, "sizes": "3,5,7"})


def test_cross_field_check_mentions_file() -> None:
    with pytest.raises(ConfigError) as exc:
        from_dict(
            TrainConfig,
            {"epochs": 2, "schedule": {"warmup_epochs": 3}},
            file="p.yaml",
            prefix="x.train",
        )
    assert "p.yaml: x.train" in str(exc.value) and "warmup_epochs" in str(exc.value)


def test_typo_in_real_params_fails_before_work(tmp_path: Path) -> None:
    from papers.deep_compression.config import DeepCompressionProfile

    data = repo_profiles("deep_compression")
    data["default"]["baseline"]["lenet5"]["train"]["epochz"] = 3
    path = write_params(tmp_path, {"deep_compression": "default"}, {"deep_compression": data})
    with pytest.raises(ConfigError) as exc:
        load_profile(DeepCompressionProfile, path, "deep_compression")
    assert str(tmp_path / "papers" / "deep_compression" / "params.yaml") in str(exc.value)
    assert "default.baseline.lenet5.train.epochz: unknown key" in str(exc.value)


def test_a_typo_in_a_profile_that_is_not_selected_fails_too(tmp_path: Path) -> None:
    from papers.deep_compression.config import DeepCompressionProfile

    data = repo_profiles("deep_compression")
    data["paper"]["baseline"]["lenet5"]["train"]["lr"] = 0.1  # belongs under optimizer
    path = write_params(tmp_path, {"deep_compression": "smoke"}, {"deep_compression": data})
    with pytest.raises(ConfigError, match=r"paper\.baseline\.lenet5\.train\.lr: unknown key"):
        load_profile(DeepCompressionProfile, path, "deep_compression")


def test_typo_inside_an_optional_section_names_the_key() -> None:
    """``X | None`` sections report the inner key, not "expected X | null, got dict"."""

    @dataclass(frozen=True)
    class WithOptional:
        inner: Inner | None = None

    with pytest.raises(ConfigError, match=r"inner\.lrr: unknown key; allowed keys here: lr, name"):
        from_dict(WithOptional, {"inner": {"lrr": 0.1}})


def test_bad_profile_name_lists_profiles(tmp_path: Path) -> None:
    from papers.deep_compression.config import DeepCompressionProfile

    path = write_params(tmp_path, {"deep_compression": "fast"})
    with pytest.raises(
        ConfigError, match="'fast' is not allowed; allowed values: 'smoke', 'default', 'paper'"
    ):
        load_profile(DeepCompressionProfile, path, "deep_compression")


def test_unknown_root_key_and_unknown_section_fail(tmp_path: Path) -> None:
    from papers.deep_compression.config import DeepCompressionProfile

    path = write_params(tmp_path)
    root = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**root, "profle": {"deep_compression": "paper"}}))
    with pytest.raises(
        ConfigError, match="profle: unknown key; allowed keys here: launch, profile"
    ):
        load_profile(DeepCompressionProfile, path, "deep_compression")
    root["profile"]["deep_compresion"] = "paper"
    path.write_text(yaml.safe_dump(root))
    with pytest.raises(ConfigError, match=r"profile\.deep_compresion: no section"):
        load_profile(DeepCompressionProfile, path, "deep_compression")


def test_profile_overrides_cover_every_section() -> None:
    overrides = profile_overrides(REPO / "params.yaml", "smoke")
    assert "profile.data=smoke" in overrides
    assert "profile.deep_compression=smoke" in overrides
    with pytest.raises(ConfigError):
        profile_overrides(REPO / "params.yaml", "fast")


def _tree(tmp_path: Path, sections: dict | None = None) -> Path:
    """A params tree plus the paper registry, as `python -m common.papers check` reads them."""
    path = write_params(tmp_path, None, sections)
    (tmp_path / "papers" / "registry.yaml").write_text((REPO / "papers/registry.yaml").read_text())
    return path


def test_launch_settings_are_validated(tmp_path: Path) -> None:
    path = _tree(tmp_path)
    root = yaml.safe_load(path.read_text())
    for launch, message in [
        ({"nproc_per_node": "two"}, r"launch\.nproc_per_node: expected int, got str \('two'\)"),
        ({"nproc_per_node": 0}, r"launch\.nproc_per_node: 0 is out of range"),
        ({"nproc": 2}, r"launch\.nproc: unknown key; allowed keys here: nproc_per_node"),
    ]:
        path.write_text(yaml.safe_dump({**root, "launch": launch}))
        with pytest.raises(ConfigError, match=message):
            check_params(path)


def test_launcher_names_the_params_key_for_a_bad_process_count() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "common.launch", "--nproc", "two", "papers.x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: params.yaml: launch.nproc_per_node: 'two' is not allowed; allowed: an integer "
        ">= 1 (the processes each stage runs)"
    ]


def test_model_kwargs_are_checked_against_the_model_signature(tmp_path: Path) -> None:
    data = repo_profiles("deep_compression")
    data["smoke"]["baseline"]["lenet5"]["model_kwargs"] = {"in_chanels": 3}
    path = _tree(tmp_path, {"deep_compression": data})
    with pytest.raises(
        ConfigError,
        match=r"smoke\.baseline\.lenet5: model_kwargs\.in_chanels: not an argument of model "
        r"'lenet5'; allowed: num_classes, in_channels, input_size",
    ):
        check_params(path)
    data["smoke"]["baseline"]["lenet5"]["model_kwargs"] = {"in_channels": 3}
    _tree(tmp_path, {"deep_compression": data})
    check_params(path)


def test_check_params_validates_every_section_and_profile(tmp_path: Path) -> None:
    from common.papers import papers

    assert check_params(_tree(tmp_path)) == ["data", *(p.slug for p in papers())]
    data = repo_profiles("mcunet")
    data["paper"]["deploy"]["emulat"] = False  # a profile no one selected
    path = _tree(tmp_path, {"mcunet": data})
    with pytest.raises(ConfigError, match=r"paper\.deploy\.emulat: unknown key"):
        check_params(path)
    proc = subprocess.run(
        [sys.executable, "-m", "common.papers", "check", "--params", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "paper.deploy.emulat" in proc.stderr
