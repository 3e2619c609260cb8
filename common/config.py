"""Typed, validated configuration loaded from ``params.yaml``.

Configs are frozen dataclasses. :func:`from_dict` builds one from plain YAML data and rejects, with
a message naming the file, the full key and what is allowed:

* unknown keys (a typo must never be silently ignored),
* missing required keys,
* wrong types (``epochs: "ten"``; an ``int`` is accepted where a ``float`` is expected, a ``bool``
  never passes for a number),
* values outside a declared range (``bounds(ge=1)`` in the field metadata) or outside a
  ``Literal[...]``.

Profiles: the root ``params.yaml`` says which profile each section runs::

    profile:
      deep_compression: default   # smoke | default | paper

and each section keeps its three profiles in its own file, ``papers/<slug>/params.yaml`` (or
``data/params.yaml``)::

    default: &default {...}       # the laptop-scale replication
    smoke:                        # default with overrides (YAML merge keys: ``<<: *anchor``)
      <<: *default
      ...
    paper: {...}

:func:`load_profile` validates every profile of the section before a stage does any work, so a
typo anywhere fails at once rather than twenty minutes (or one profile switch) later.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from common.errors import InputError

PROFILES = ("smoke", "default", "paper")

C = TypeVar("C")


class ConfigError(InputError, ValueError):
    """A config value is unknown, missing, of the wrong type or out of range."""


def bounds(
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> dict[str, Any]:
    """Field metadata declaring the allowed numeric range, e.g. ``field(default=1, metadata=bounds(ge=1))``."""
    return {"bounds": {"ge": ge, "gt": gt, "le": le, "lt": lt}}


def _describe_range(spec: Mapping[str, float | None]) -> str:
    parts = []
    for op, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if spec.get(op) is not None:
            parts.append(f"{sym} {spec[op]}")
    return " and ".join(parts)


def _in_range(value: float, spec: Mapping[str, float | None]) -> bool:
    checks = {
        "ge": lambda b: value >= b,
        "gt": lambda b: value > b,
        "le": lambda b: value <= b,
        "lt": lambda b: value < b,
    }
    return all(spec.get(op) is None or fn(spec[op]) for op, fn in checks.items())


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in get_args(tp) if a is not Ellipsis)
        return f"{getattr(origin, '__name__', origin)}[{args}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _where(file: str | None, key: str) -> str:
    return f"{file}: {key}" if file else key


def _convert(tp: Any, value: Any, key: str, file: str | None) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert YAML containers."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, file=file, prefix=key)
    if origin is Literal:
        allowed = get_args(tp)
        # Compare types too: YAML `true` must not pass for the literal 1.
        if not any(value == a and type(value) is type(a) for a in allowed):
            raise ConfigError(
                f"{_where(file, key)}: {value!r} is not allowed; allowed values: "
                + ", ".join(repr(a) for a in allowed)
            )
        return value
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors: list[ConfigError] = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, key, file)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1 and value is not None:
            raise errors[0]  # one real option (``X | None``): its own error names the key
        raise ConfigError(
            f"{_where(file, key)}: expected {_type_name(tp)}, got {type(value).__name__} ({value!r})"
        )
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"{_where(file, key)}: expected a YAML list ({_type_name(tp)}), "
                f"got {type(value).__name__} ({value!r})"
            )
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(
                    f"{_where(file, key)}: expected a list of {len(args)} items, got {len(value)}"
                )
            items = [
                _convert(a, v, f"{key}[{i}]", file)
                for i, (a, v) in enumerate(zip(args, value, strict=True))
            ]
        else:
            item_tp = args[0] if args else Any
            items = [_convert(item_tp, v, f"{key}[{i}]", file) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{_where(file, key)}: expected a mapping, got {type(value).__name__} ({value!r})"
            )
        key_tp, val_tp = get_args(tp) or (str, Any)
        return {
            _convert(key_tp, k, f"{key}.<key>", file): _convert(val_tp, v, f"{key}.{k}", file)
            for k, v in value.items()
        }
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(
                f"{_where(file, key)}: expected float, got {type(value).__name__} ({value!r})"
            )
        if not math.isfinite(float(value)):
            raise ConfigError(f"{_where(file, key)}: expected a finite float, got {value!r}")
        return float(value)
    if tp in (int, str, bool):
        if (isinstance(value, bool) and tp is not bool) or not isinstance(value, tp):
            raise ConfigError(
                f"{_where(file, key)}: expected {tp.__name__}, got {type(value).__name__} ({value!r})"
            )
        return value
    raise TypeError(f"config annotation {tp!r} at {key} is not supported")


def from_dict(cls: type[C], data: Any, *, file: str | None = None, prefix: str = "") -> C:
    """Build the dataclass ``cls`` from YAML data, validating every field.

    Args:
        cls: a (frozen) dataclass type.
        data: the mapping read from YAML.
        file: the file the data came from, named in error messages.
        prefix: the dotted key of ``data`` inside that file, named in error messages.
    """
    name = prefix or cls.__name__
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{_where(file, name)}: expected a mapping of {cls.__name__} fields, "
            f"got {type(data).__name__} ({data!r})"
        )
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else str(unknown[0])
        raise ConfigError(
            f"{_where(file, key)}: unknown key; allowed keys here: {', '.join(fields)}"
        )
    kwargs = {}
    for fname, f in fields.items():
        key = f"{prefix}.{fname}" if prefix else fname
        if fname not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(
                    f"{_where(file, key)}: missing required key ({_type_name(hints[fname])})"
                )
            continue
        value = _convert(hints[fname], data[fname], key, file)
        spec = f.metadata.get("bounds")
        if spec and value is not None:
            if isinstance(value, Mapping):
                values = list(value.values())
            elif isinstance(value, (list, tuple)):
                values = list(value)
            else:
                values = [value]
            for v in values:
                if not _in_range(v, spec):
                    raise ConfigError(
                        f"{_where(file, key)}: {v!r} is out of range; allowed: {_describe_range(spec)}"
                    )
        kwargs[fname] = value
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        # __post_init__ cross-field checks raise without knowing the file/prefix; add them.
        raise ConfigError(f"{_where(file, name)}: {exc}") from None


def to_dict(config: Any) -> Any:
    """A plain (YAML/JSON-serialisable) copy of a config dataclass."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, Mapping):
        return {k: to_dict(v) for k, v in config.items()}
    if isinstance(config, Path):
        return str(config)
    return config


def flatten(data: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists are kept as values)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key, sep))
        else:
            out[key] = v
    return out


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file, turning a parse error into a :class:`ConfigError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None


ROOT_KEYS = ("launch", "profile")


@dataclass(frozen=True)
class LaunchConfig:
    """``launch:`` in the root ``params.yaml``: how every stage is started (common/launch.py)."""

    nproc_per_node: int = field(default=1, metadata=bounds(ge=1, le=1024))


def section_file(params_file: str | Path, section: str) -> Path:
    """The file holding ``section``'s profiles: ``papers/<section>/params.yaml`` for a paper,
    ``<section>/params.yaml`` otherwise (``data/params.yaml``), beside the root ``params_file``."""
    root = Path(params_file).parent
    for candidate in (root / "papers" / section / "params.yaml", root / section / "params.yaml"):
        if candidate.is_file():
            return candidate
    return root / "papers" / section / "params.yaml"


def read_root(params_file: str | Path) -> dict[str, Any]:
    """The root ``params.yaml``: ``launch`` and the ``profile`` each section runs, validated."""
    file = str(params_file)
    params = read_yaml(params_file) or {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"{file}: expected a mapping with keys {', '.join(ROOT_KEYS)}")
    unknown = sorted(set(params) - set(ROOT_KEYS))
    if unknown:
        raise ConfigError(
            f"{file}: {unknown[0]}: unknown key; allowed keys here: {', '.join(ROOT_KEYS)}"
        )
    from_dict(LaunchConfig, params.get("launch"), file=file, prefix="launch")
    selection = params.get("profile")
    if not isinstance(selection, Mapping):
        raise ConfigError(
            f"{file}: profile: expected a mapping of section: smoke | default | paper"
        )
    for section, profile in selection.items():
        if profile not in PROFILES:
            raise ConfigError(
                f"{file}: profile.{section}: {profile!r} is not allowed; allowed values: "
                + ", ".join(repr(p) for p in PROFILES)
            )
        if not section_file(params_file, section).is_file():
            raise ConfigError(
                f"{file}: profile.{section}: no section {section!r} (expected its profiles in "
                f"papers/{section}/params.yaml or {section}/params.yaml)"
            )
    return dict(params)


def select_profile(params_file: str | Path, section: str) -> str:
    """The profile the root ``params_file`` selects for ``section`` (``profile.<section>``)."""
    selection = read_root(params_file)["profile"]
    if section not in selection:
        raise ConfigError(
            f"{params_file}: profile.{section}: missing; add `{section}: default` under `profile:`"
        )
    return selection[section]


def load_profiles(cls: type[C], params_file: str | Path, section: str) -> dict[str, C]:
    """Every profile of ``section``, each validated as ``cls`` (a typo in a profile that is not
    selected must not wait for the day someone selects it)."""
    path = section_file(params_file, section)
    data = read_yaml(path)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping with the profiles {', '.join(PROFILES)}")
    unknown = sorted(set(data) - set(PROFILES))
    if unknown:
        raise ConfigError(
            f"{path}: {unknown[0]}: unknown profile; allowed here: {', '.join(PROFILES)}"
        )
    missing = [p for p in PROFILES if p not in data]
    if missing:
        raise ConfigError(
            f"{path}: missing profile {missing[0]!r} (every section has {', '.join(PROFILES)})"
        )
    return {p: from_dict(cls, data[p], file=str(path), prefix=p) for p in PROFILES}


def load_profile(cls: type[C], params_file: str | Path, section: str) -> tuple[str, C]:
    """Load the profile of ``section`` that ``params_file`` selects, as the dataclass ``cls``.

    The root ``params_file`` says which profile runs (``profile.<section>``); the profiles live in
    the section's own file (:func:`section_file`). All of them are validated, the selected one is
    returned.

    Returns:
        ``(profile_name, config)``.
    """
    profile = select_profile(params_file, section)
    return profile, load_profiles(cls, params_file, section)[profile]


def save_resolved(config: Any, path: str | Path, **extra: Any) -> Path:
    """Write the resolved config (plus ``extra`` fields such as the profile) as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**extra, "config": to_dict(config)}
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def profile_overrides(params_file: str | Path, profile: str) -> list[str]:
    """``dvc exp run`` ``-S`` arguments that switch every section of ``params_file`` to ``profile``."""
    if profile not in PROFILES:
        raise ConfigError(
            f"profile {profile!r} is not allowed; allowed values: {', '.join(PROFILES)}"
        )
    return [f"profile.{s}={profile}" for s in read_root(params_file)["profile"]]


def main(argv: list[str] | None = None) -> int:
    """``python -m common.config profile-args smoke``: print the ``-S profile.<section>=smoke``
    overrides that switch every section of the root params.yaml."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m common.config")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("profile-args", help="print `-S profile.<section>=<name>` for dvc exp run")
    p.add_argument("profile")
    p.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    try:
        overrides = profile_overrides(args.params, args.profile)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(" ".join(f"-S {o}" for o in overrides))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
