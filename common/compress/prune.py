"""Magnitude pruning with masks kept through retraining (Han, Pool, Tran, Dally, NIPS 2015).

"Learning both Weights and Connections" prunes every connection whose magnitude is below a
per-layer threshold, ``threshold = quality * std(layer weights)``, then retrains the survivors
with the pruned connections held at zero, and iterates. Deep Compression's first stage is exactly
this. Here:

* :class:`MagnitudePruneConfig` sets the threshold either by the paper's *quality* parameter or by
  a target *density* (the fraction of weights kept, as the paper's tables report it); either way
  the report gives both numbers for every layer.
* :func:`prune_` prunes in place and returns a :class:`PruneReport`; the masks it returns are
  applied by :class:`MaskHook` during retraining (gradients of pruned weights are zeroed and the
  mask is re-applied after every optimizer step, so momentum or weight decay cannot revive them).
* :func:`density_schedule` gives the per-step densities of iterative pruning.
* :func:`sensitivity_scan` prunes one layer at a time, without retraining, and measures the loss
  of accuracy: the per-layer sensitivity curves of the companion paper's Figure 5.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from common.compress.select import FilterFn, check_overrides, override, select_layers
from common.config import ConfigError, bounds
from common.train.trainer import TrainHook


@dataclass(frozen=True)
class MagnitudePruneConfig:
    """How much of each layer to prune.

    Attributes:
        method: ``quality``: threshold = value x std of the layer's weights (the companion
            paper's parameter); ``density``: keep the largest-magnitude fraction ``value``.
        value: the quality parameter (>= 0) or the density (0 < d <= 1) for every layer not
            listed in ``layers``.
        layers: per-layer values by fully qualified name or regex (``{"conv1": 0.66}``).
    """

    method: Literal["quality", "density"] = "density"
    value: float = field(default=0.1, metadata=bounds(ge=0))
    layers: dict[str, float] = field(default_factory=dict, metadata=bounds(ge=0))

    def __post_init__(self) -> None:
        if self.method == "density":
            for v in [self.value, *self.layers.values()]:
                if not 0 < v <= 1:
                    raise ConfigError(f"a density must be in (0, 1], got {v}")

    def value_for(self, fqn: str) -> float:
        return override(fqn, self.layers, self.value)


@dataclass
class LayerPruneReport:
    name: str
    numel: int
    kept: int
    density: float
    threshold: float
    quality: float


@dataclass
class PruneReport:
    """Per-layer outcome of :func:`prune_` (serialisable with :meth:`to_dict`)."""

    layers: list[LayerPruneReport]

    @property
    def numel(self) -> int:
        return sum(layer.numel for layer in self.layers)

    @property
    def kept(self) -> int:
        return sum(layer.kept for layer in self.layers)

    @property
    def density(self) -> float:
        return self.kept / max(self.numel, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "density": self.density,
            "numel": self.numel,
            "kept": self.kept,
            "layers": [asdict(x) for x in self.layers],
        }


def _threshold(weight: Tensor, method: str, value: float) -> float:
    magnitude = weight.detach().abs().flatten()
    if method == "quality":
        return value * float(weight.detach().float().std())
    n_keep = round(value * magnitude.numel())
    if n_keep >= magnitude.numel():
        return -1.0  # keep everything (even exact zeros)
    if n_keep <= 0:
        return float(magnitude.max()) + 1.0
    # The n_keep-th largest magnitude is the smallest kept one; prune strictly below it.
    return float(torch.topk(magnitude, n_keep, sorted=True).values[-1])


@torch.no_grad()
def prune_(
    model: nn.Module,
    config: MagnitudePruneConfig,
    *,
    filter_fn: FilterFn | None = None,
    masks: Mapping[str, Tensor] | None = None,
) -> tuple[dict[str, Tensor], PruneReport]:
    """Prune ``model`` in place by weight magnitude.

    Args:
        model: any module; layers are chosen by ``filter_fn`` (default: conv and linear).
        config: the thresholds (see :class:`MagnitudePruneConfig`).
        filter_fn: ``filter_fn(module, fqn) -> bool``.
        masks: masks of an earlier pruning step; what they pruned stays pruned.

    Returns:
        ``(masks, report)``: a boolean keep-mask per layer (keyed by fqn) and the report.
    """
    check_overrides(model, config.layers, filter_fn)
    new_masks: dict[str, Tensor] = {}
    rows = []
    for fqn, module in select_layers(model, filter_fn):
        w = module.weight
        value = config.value_for(fqn)
        std = float(w.detach().float().std()) if w.numel() > 1 else 0.0  # before this step prunes
        threshold = _threshold(w, config.method, value)
        keep = w.abs() >= threshold if threshold > 0 else torch.ones_like(w, dtype=torch.bool)
        if masks is not None and fqn in masks:
            keep &= masks[fqn].to(keep.device)
        w.mul_(keep)
        new_masks[fqn] = keep
        rows.append(
            LayerPruneReport(
                name=fqn,
                numel=w.numel(),
                kept=int(keep.sum()),
                density=float(keep.float().mean()),
                threshold=max(threshold, 0.0),
                quality=max(threshold, 0.0) / std if std > 0 else 0.0,
            )
        )
    return new_masks, PruneReport(rows)


@torch.no_grad()
def apply_masks_(model: nn.Module, masks: Mapping[str, Tensor]) -> None:
    """Zero every pruned weight (``masks`` from :func:`prune_`)."""
    modules = dict(model.named_modules())
    for fqn, mask in masks.items():
        modules[fqn].weight.mul_(mask.to(modules[fqn].weight.device))


class MaskHook(TrainHook):
    """Keeps pruned weights at exactly zero while the shared loop retrains the survivors."""

    def __init__(self, masks: Mapping[str, Tensor]) -> None:
        self.masks = dict(masks)

    def on_fit_start(self, trainer: Any) -> None:
        self._modules = dict(trainer.model.named_modules())
        apply_masks_(trainer.model, self.masks)

    def after_backward(self, trainer: Any) -> None:
        for fqn, mask in self.masks.items():
            grad = self._modules[fqn].weight.grad
            if grad is not None:
                grad.mul_(mask.to(grad.device))

    def after_step(self, trainer: Any) -> None:
        apply_masks_(trainer.model, self.masks)


def density_schedule(final: float, steps: int) -> list[float]:
    """Densities of ``steps`` pruning iterations, geometric from 1 down to ``final``."""
    if steps < 1:
        raise ValueError("steps must be >= 1")
    return [final ** ((i + 1) / steps) for i in range(steps)]


def scaled_config(config: MagnitudePruneConfig, fraction: float) -> MagnitudePruneConfig:
    """The config at ``fraction`` (0..1] of the way to its final pruning, for iterative pruning.

    Densities follow ``d ** fraction`` (geometric), qualities ``q * fraction``.
    """
    if config.method == "density":
        return MagnitudePruneConfig(
            "density", config.value**fraction, {k: v**fraction for k, v in config.layers.items()}
        )
    return MagnitudePruneConfig(
        "quality", config.value * fraction, {k: v * fraction for k, v in config.layers.items()}
    )


@torch.no_grad()
def sensitivity_scan(
    model: nn.Module,
    evaluate: Callable[[nn.Module], float],
    densities: list[float],
    *,
    filter_fn: FilterFn | None = None,
) -> dict[str, list[tuple[float, float]]]:
    """Prune each layer alone to each density, without retraining, and evaluate.

    Args:
        model: the trained network (left unchanged).
        evaluate: ``evaluate(model) -> error`` (lower is better).
        densities: fractions of weights to keep.

    Returns:
        ``{layer: [(density, error), ...]}``.
    """
    out: dict[str, list[tuple[float, float]]] = {}
    for fqn, module in list(select_layers(model, filter_fn)):
        original = module.weight.detach().clone()
        curve = []
        for d in densities:
            prune_(
                model, MagnitudePruneConfig("density", d), filter_fn=lambda m, n, _f=fqn: n == _f
            )
            curve.append((d, float(evaluate(model))))
            module.weight.copy_(original)
        out[fqn] = curve
    return out


def mask_density(masks: Mapping[str, Tensor]) -> float:
    total = sum(m.numel() for m in masks.values())
    return sum(int(m.sum()) for m in masks.values()) / max(total, 1)


def geometric(a: float, b: float, n: int) -> list[float]:
    """``n`` points from ``a`` to ``b`` evenly spaced on a log scale."""
    return [
        math.exp(math.log(a) + (math.log(b) - math.log(a)) * i / max(n - 1, 1)) for i in range(n)
    ]
