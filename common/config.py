"""Typed, validated configuration loaded from ``params.yaml``.

Configs are frozen dataclasses. :func:`from_dict` builds one from plain YAML data and rejects, with
a message naming the file, the full key and what is allowed:

* unknown keys (a typo must never be silently ignored),
* missing required keys,
* wrong types (``epochs: "ten"``; an ``int`` is accepted where a ``float`` is expected, a ``bool``
  never passes for a number),
* values outside a declared range (``bounds(ge=1)`` in the field metadata) or outside a
  ``Literal[...]``.

Profiles: every paper section of ``params.yaml`` looks like::

    deep_compression:
      profile: default          # smoke | default | paper
      profiles:
        smoke:   {...}
        default: {...}
        paper:   {...}

and :func:`load_profile` validates the *whole* selected profile before a stage does any work, so a
typo anywhere in it fails at once rather than twenty minutes later.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

PROFILES = ("smoke", "default", "paper")

C = TypeVar("C")


class ConfigError(ValueError):
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
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, key, file)
            except ConfigError as exc:
                errors.append(str(exc))
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


def select_profile(params: Mapping[str, Any], section: str, *, file: str) -> str:
    """Return the profile name selected by ``<section>.profile``, validated."""
    if section not in params or not isinstance(params[section], Mapping):
        raise ConfigError(f"{file}: missing section {section!r}")
    profile = params[section].get("profile")
    if profile not in PROFILES:
        raise ConfigError(
            f"{file}: {section}.profile: {profile!r} is not allowed; allowed values: "
            + ", ".join(repr(p) for p in PROFILES)
        )
    return profile


def profile_data(params: Mapping[str, Any], section: str, profile: str, *, file: str) -> Any:
    try:
        return params[section]["profiles"][profile]
    except (KeyError, TypeError):
        raise ConfigError(f"{file}: missing key {section}.profiles.{profile}") from None


def load_profile(cls: type[C], params_file: str | Path, section: str) -> tuple[str, C]:
    """Load and validate the selected profile of ``section`` as the dataclass ``cls``.

    Returns:
        ``(profile_name, config)``.
    """
    file = str(params_file)
    params = read_yaml(params_file) or {}
    profile = select_profile(params, section, file=file)
    data = profile_data(params, section, profile, file=file)
    config = from_dict(cls, data, file=file, prefix=f"{section}.profiles.{profile}")
    return profile, config


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
    params = read_yaml(params_file) or {}
    sections = [k for k, v in params.items() if isinstance(v, Mapping) and "profile" in v]
    return [f"{s}.profile={profile}" for s in sections]


def main(argv: list[str] | None = None) -> int:
    """``python -m common.config profile-args smoke``: print the -S overrides for a profile."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m common.config")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("profile-args", help="print `-S <section>.profile=<name>` for dvc exp run")
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
