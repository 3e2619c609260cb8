"""Trained quantization by weight sharing (Deep Compression, Section 3).

Each selected layer's surviving weights are clustered by 1-D k-means
(:mod:`common.compress.kmeans`) into ``2^bits`` shared values; the layer then stores a ``bits``-bit
index per weight and a small codebook. The layer is re-parametrised as
``W = table[codes]`` (:class:`SharedWeights`), so during fine-tuning autograd delivers exactly the
paper's centroid gradient (Eq. 3),

    dL/dC_k = sum_ij dL/dW_ij * 1(I_ij = k),

i.e. the gradients of the weights of one cluster are summed and the shared value moves; the
indices stay fixed. ``centroid_grad: mean`` (the default) divides that sum by the cluster's size
before the optimizer sees it: a per-centroid learning rate of ``lr / n_k``, so a centroid moves
like the average of its weights would under plain SGD. With the raw sum (``centroid_grad: sum``)
the step grows with the cluster, and a learning rate that suits a pruned layer (hundreds of
weights per cluster) makes an unpruned one (tens of thousands) diverge. Pruned weights keep code 0, which decodes to 0.0 and never moves: with
pruning, one of the ``2^bits`` codes is this zero (used by the sparse format's filler entries), so
k-means forms ``2^bits - 1`` clusters; without pruning, all ``2^bits`` codes are clusters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from common.compress.kmeans import Init, kmeans_1d, wcss
from common.compress.select import FilterFn, check_overrides, is_conv, override, select_layers
from common.config import bounds


@dataclass(frozen=True)
class KMeansQuantConfig:
    """Bits per layer and how to initialise the clusters.

    Attributes:
        conv_bits: index bits of convolution layers (the paper: 8 on AlexNet and LeNet-5).
        fc_bits: index bits of fully connected layers (the paper: 5 on AlexNet, 6 on LeNet-300-100).
        layers: per-layer bits by fully qualified name or regex; wins over the two above.
        init: centroid initialisation, ``linear`` (the paper's), ``density`` or ``random``.
        max_iter: k-means iterations.
        seed: seed of the ``random`` initialisation.
    """

    conv_bits: int = field(default=8, metadata=bounds(ge=1, le=12))
    fc_bits: int = field(default=5, metadata=bounds(ge=1, le=12))
    layers: dict[str, int] = field(default_factory=dict, metadata=bounds(ge=1, le=12))
    init: Init = "linear"
    max_iter: int = field(default=100, metadata=bounds(ge=1))
    seed: int = 0
    centroid_grad: Literal["mean", "sum"] = "mean"

    def bits_for(self, fqn: str, module: nn.Module) -> int:
        return override(fqn, self.layers, self.conv_bits if is_conv(module) else self.fc_bits)


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; multiplies the incoming gradient by ``scale`` on the way back."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: Tensor) -> Tensor:
        ctx.save_for_backward(scale)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (scale,) = ctx.saved_tensors
        return grad * scale, None


class SharedWeights(nn.Module):
    """Parametrization ``W = table[codes]`` with trainable centroids and fixed codes.

    ``table`` is ``[0, *centroids]`` when ``zero_code`` (code 0 is a pruned weight) and
    ``centroids`` otherwise. With ``mean_grad`` each centroid's gradient is divided by the size of
    its cluster (see the module docstring).
    """

    def __init__(
        self, centroids: Tensor, codes: Tensor, *, zero_code: bool, mean_grad: bool = True
    ) -> None:
        super().__init__()
        self.centroids = nn.Parameter(centroids.float().clone())
        self.register_buffer("codes", codes.to(torch.int64))
        self.zero_code = zero_code
        counts = torch.bincount(
            self.codes.flatten(), minlength=centroids.numel() + int(zero_code)
        ).float()
        counts = counts[1:] if zero_code else counts
        scale = 1.0 / counts.clamp(min=1) if mean_grad else torch.ones_like(counts)
        self.register_buffer("grad_scale", scale, persistent=False)

    def table(self) -> Tensor:
        centroids = _ScaleGrad.apply(self.centroids, self.grad_scale)
        if self.zero_code:
            return torch.cat([centroids.new_zeros(1), centroids])
        return centroids

    def forward(self, original: Tensor) -> Tensor:
        return self.table()[self.codes]


@dataclass
class LayerQuantReport:
    name: str
    bits: int
    clusters: int
    survivors: int
    distinct_values: int
    wcss: float


@dataclass
class QuantReport:
    layers: list[LayerQuantReport]

    def to_dict(self) -> dict[str, Any]:
        return {"layers": [asdict(x) for x in self.layers]}


@torch.no_grad()
def kmeans_quantize_(
    model: nn.Module,
    config: KMeansQuantConfig,
    *,
    filter_fn: FilterFn | None = None,
    masks: Mapping[str, Tensor] | None = None,
) -> QuantReport:
    """Share the weights of every selected layer in place (see the module docstring).

    Args:
        model: any module; pruned layers keep their zeros.
        config: bits and initialisation.
        filter_fn: ``filter_fn(module, fqn) -> bool`` (default: conv and linear layers).
        masks: keep-masks from pruning; when absent, exact zeros count as pruned.

    Returns:
        A :class:`QuantReport`; the model's selected layers are now :class:`SharedWeights`-
        parametrised (train them to fine-tune the centroids; :func:`bake_` removes the
        parametrisation, :func:`shared_state` extracts codes and tables).
    """
    check_overrides(model, config.layers, filter_fn)
    rows = []
    for fqn, module in list(select_layers(model, filter_fn)):
        if parametrize.is_parametrized(module, "weight"):
            raise ValueError(f"{fqn} is already quantized")
        w = module.weight.detach()
        keep = masks[fqn].to(w.device).bool() if masks is not None and fqn in masks else w != 0
        zero_code = bool((~keep).any())
        bits = config.bits_for(fqn, module)
        k = 2**bits - (1 if zero_code else 0)
        if k < 1:
            raise ValueError(
                f"{fqn}: {bits} bit(s) leave no code for weights besides the pruned zero"
            )
        survivors = w[keep]
        centroids, assignment = kmeans_1d(
            survivors, k, init=config.init, max_iter=config.max_iter, seed=config.seed
        )
        codes = torch.zeros_like(w, dtype=torch.int64)
        codes[keep] = assignment.to(w.device) + (1 if zero_code else 0)
        shared = SharedWeights(
            centroids.to(w.device),
            codes,
            zero_code=zero_code,
            mean_grad=config.centroid_grad == "mean",
        )
        parametrize.register_parametrization(module, "weight", shared, unsafe=True)
        module.parametrizations.weight.original.requires_grad_(False)
        rows.append(
            LayerQuantReport(
                name=fqn,
                bits=bits,
                clusters=k,
                survivors=int(keep.sum()),
                distinct_values=int(torch.unique(module.weight[keep]).numel()),
                wcss=wcss(survivors, centroids, assignment),
            )
        )
    return QuantReport(rows)


def quantized_layers(model: nn.Module) -> dict[str, SharedWeights]:
    """``{fqn: SharedWeights}`` of every weight-shared layer of ``model``."""
    out = {}
    for fqn, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            p = module.parametrizations.weight[0]
            if isinstance(p, SharedWeights):
                out[fqn] = p
    return out


@dataclass
class SharedLayer:
    """What the encoder needs of one weight-shared layer."""

    table: Tensor  # (2^bits,) or fewer float32 values; code c decodes to table[c]
    codes: Tensor  # int64, the weight's shape
    zero_code: bool
    bits: int


def shared_state(model: nn.Module, bits: Mapping[str, int]) -> dict[str, SharedLayer]:
    """Codes and tables of every weight-shared layer (``bits`` from the :class:`QuantReport`)."""
    return {
        fqn: SharedLayer(
            table=p.table().detach().float().cpu(),
            codes=p.codes.cpu(),
            zero_code=p.zero_code,
            bits=bits[fqn],
        )
        for fqn, p in quantized_layers(model).items()
    }


def bake_(model: nn.Module) -> nn.Module:
    """Replace every :class:`SharedWeights` parametrisation by its current plain weight."""
    for fqn, module in model.named_modules():
        if fqn in quantized_layers(model) or (
            parametrize.is_parametrized(module, "weight")
            and isinstance(module.parametrizations.weight[0], SharedWeights)
        ):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            module.weight.requires_grad_(True)
    return model
