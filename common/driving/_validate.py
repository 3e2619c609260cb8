"""Range checks of the driving configs, run in ``__post_init__``.

The fields declare their ranges with :func:`common.config.bounds`, which
:func:`common.config.from_dict` enforces for configs read from YAML; checking the same metadata
here also catches configs built in code (``LidarConfig(beams=0)``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from common.config import ConfigError

_OPS = (
    ("gt", ">", float.__gt__),
    ("ge", ">=", float.__ge__),
    ("lt", "<", float.__lt__),
    ("le", "<=", float.__le__),
)


def check_bounds(config: Any) -> None:
    """Raise :class:`ConfigError` naming the first field outside its declared ``bounds``."""
    name = type(config).__name__
    for f in dataclasses.fields(config):
        spec = f.metadata.get("bounds")
        value = getattr(config, f.name)
        if spec is None or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}.{f.name}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{name}.{f.name}: expected a finite number, got {value!r}")
        for op, _, fn in _OPS:
            if spec.get(op) is not None and not fn(float(value), float(spec[op])):
                allowed = " and ".join(
                    f"{s} {spec[o]}" for o, s, _ in _OPS if spec.get(o) is not None
                )
                raise ConfigError(f"{name}.{f.name}: {value!r} is out of range; allowed: {allowed}")
