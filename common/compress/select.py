"""Which layers a compression transform touches, and per-layer overrides.

Following torchao's convention, a transform takes a ``filter_fn(module, fqn) -> bool`` saying
*where* it applies (default: the weights of every ``Conv``/``Linear`` layer) and a config saying
*what* to do, with a per-layer override map keyed by the layer's fully qualified name or by a
regular expression over it (``"features\\.[0-9]+"``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

from torch import nn

FilterFn = Callable[[nn.Module, str], bool]
V = TypeVar("V")

PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.ConvTranspose2d)


def default_filter(module: nn.Module, fqn: str) -> bool:
    """Convolution and fully connected layers."""
    return isinstance(module, PRUNABLE)


def is_conv(module: nn.Module) -> bool:
    return isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d))


def select_layers(
    model: nn.Module, filter_fn: FilterFn | None = None
) -> Iterator[tuple[str, nn.Module]]:
    """``(fqn, module)`` for every module with a ``weight`` that ``filter_fn`` accepts, in order."""
    keep = filter_fn or default_filter
    for fqn, module in model.named_modules():
        has_weight = isinstance(
            getattr(module, "weight", None), nn.Parameter
        ) or _parametrized_weight(module)
        if has_weight and keep(module, fqn):
            yield fqn, module


def _parametrized_weight(module: nn.Module) -> bool:
    return hasattr(module, "parametrizations") and "weight" in module.parametrizations


def override(fqn: str, overrides: Mapping[str, V], default: V) -> V:
    """The value for layer ``fqn``: an exact key first, then the first regex that fully matches."""
    if fqn in overrides:
        return overrides[fqn]
    for pattern, value in overrides.items():
        if re.fullmatch(pattern, fqn):
            return value
    return default


def check_overrides(
    model: nn.Module, overrides: Mapping[str, object], filter_fn: FilterFn | None = None
) -> None:
    """Raise if an override key matches no selected layer (a typo would silently do nothing)."""
    names = [fqn for fqn, _ in select_layers(model, filter_fn)]
    for key in overrides:
        if key not in names and not any(re.fullmatch(key, n) for n in names):
            raise KeyError(
                f"per-layer override {key!r} matches no layer; layers: {', '.join(names)}"
            )
