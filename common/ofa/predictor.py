"""Once-for-All's accuracy predictor (Cai et al., ICLR 2020, Section 3.4).

A sub-network is encoded as in the reference implementation: for every elastic block a one-hot
kernel size and a one-hot expand ratio (all zeros when the block is skipped by elastic depth),
followed by a one-hot input resolution. A small MLP (three hidden layers in the paper, 400 units)
maps the encoding to accuracy; it predicts the difference to ``base_accuracy`` (the mean of its
training set), which makes the regression better conditioned.

Measured ``(arch, accuracy)`` pairs come from :func:`common.ofa.training.evaluate_arch`; once
trained, the predictor ranks thousands of candidates per second for the evolutionary search.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from common.ofa.supernet import OFAMobileNetV3Config

Arch = dict[str, Any]


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run a tiny model on one thread: on a two-core machine that is busy with anything else,
    intra-op threads spin-wait on each other and a 1-ms step takes hundreds (measured here:
    a 3 x 400 MLP trained in 250 s with two threads and 13 s with one)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class ArchEncoder:
    """Fixed-length feature vector of an arch (see the module docstring).

    Args:
        config: the supernet's space.
        resolutions: the resolutions that can occur (one-hot over them).
    """

    def __init__(self, config: OFAMobileNetV3Config, resolutions: Sequence[int]) -> None:
        self.config = config
        self.kernel_sizes = tuple(sorted(config.kernel_sizes))
        self.expand_ratios = tuple(sorted(config.expand_ratios))
        self.resolutions = tuple(sorted(int(r) for r in resolutions))
        self.per_stage = max(config.depths)
        self.n_blocks = config.num_stages * self.per_stage
        self.block_width = len(self.kernel_sizes) + len(self.expand_ratios)

    @property
    def size(self) -> int:
        return self.n_blocks * self.block_width + len(self.resolutions)

    def encode(self, arch: Arch) -> Tensor:
        """The ``(size,)`` float feature vector of ``arch``."""
        v = torch.zeros(self.size)
        nk = len(self.kernel_sizes)
        for s, depth in enumerate(arch["d"]):
            for i in range(depth):
                b = s * self.per_stage + i
                base = b * self.block_width
                v[base + self.kernel_sizes.index(int(arch["ks"][b]))] = 1.0
                v[base + nk + self.expand_ratios.index(int(arch["e"][b]))] = 1.0
        r = int(arch["r"])
        if r not in self.resolutions:
            raise ValueError(f"resolution {r} is not one of {self.resolutions}")
        v[self.n_blocks * self.block_width + self.resolutions.index(r)] = 1.0
        return v

    def encode_many(self, archs: Sequence[Arch]) -> Tensor:
        return torch.stack([self.encode(a) for a in archs]) if archs else torch.zeros(0, self.size)


class AccuracyPredictor(nn.Module):
    """MLP from an arch encoding to accuracy (%): ``base_accuracy + mlp(encoding)``.

    Args:
        in_features: encoding size (:attr:`ArchEncoder.size`).
        hidden: units per hidden layer.
        layers: number of hidden layers.
        base_accuracy: the offset the MLP's output is added to.
    """

    def __init__(
        self, in_features: int, *, hidden: int = 400, layers: int = 3, base_accuracy: float = 0.0
    ) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        width = in_features
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            width = hidden
        mods.append(nn.Linear(width, 1, bias=False))
        self.mlp = nn.Sequential(*mods)
        self.register_buffer("base_accuracy", torch.tensor(float(base_accuracy)))

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x).squeeze(-1) + self.base_accuracy


@dataclass
class PredictorFit:
    """What :func:`fit_predictor` returns besides the model."""

    train_rmse: float
    valid_rmse: float
    valid_mae: float
    valid_spearman: float
    n_train: int
    n_valid: int
    valid_measured: list[float]
    valid_predicted: list[float]


def rank_correlation(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (ties get their average rank)."""

    def ranks(xs: Sequence[float]) -> list[float]:
        order = sorted(range(len(xs)), key=lambda i: xs[i])
        r = [0.0] * len(xs)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2.0
            i = j + 1
        return r

    ra, rb = ranks(a), ranks(b)
    n = len(a)
    if n < 2:
        return float("nan")
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va = math.sqrt(sum((x - ma) ** 2 for x in ra))
    vb = math.sqrt(sum((y - mb) ** 2 for y in rb))
    return cov / (va * vb) if va > 0 and vb > 0 else float("nan")


def fit_predictor(
    encoder: ArchEncoder,
    archs: Sequence[Arch],
    accuracies: Sequence[float],
    *,
    valid_fraction: float = 0.2,
    hidden: int = 400,
    layers: int = 3,
    epochs: int = 300,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 64,
    seed: int = 0,
) -> tuple[AccuracyPredictor, PredictorFit]:
    """Train an :class:`AccuracyPredictor` on measured pairs, holding out ``valid_fraction``.

    Adam on the mean squared error, full determinism from ``seed``. The held-out RMSE is the
    paper's figure of merit (0.21% on ImageNet with 16K measured sub-networks).
    """
    if len(archs) != len(accuracies) or len(archs) < 5:
        raise ValueError(f"need at least 5 (arch, accuracy) pairs, got {len(archs)}")
    with single_thread():
        return _fit(
            encoder,
            archs,
            accuracies,
            valid_fraction=valid_fraction,
            hidden=hidden,
            layers=layers,
            epochs=epochs,
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            seed=seed,
        )


def _fit(
    encoder: ArchEncoder,
    archs: Sequence[Arch],
    accuracies: Sequence[float],
    *,
    valid_fraction: float,
    hidden: int,
    layers: int,
    epochs: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    seed: int,
) -> tuple[AccuracyPredictor, PredictorFit]:
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(archs), generator=g).tolist()
    n_valid = max(1, round(valid_fraction * len(archs)))
    valid_idx, train_idx = order[:n_valid], order[n_valid:]
    x = encoder.encode_many(archs)
    y = torch.tensor([float(a) for a in accuracies])
    base = float(y[train_idx].mean())
    torch.manual_seed(seed)
    model = AccuracyPredictor(x.shape[1], hidden=hidden, layers=layers, base_accuracy=base)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    xt, yt = x[train_idx], y[train_idx]
    rng = random.Random(seed)
    for _ in range(epochs):
        perm = list(range(len(train_idx)))
        rng.shuffle(perm)
        for start in range(0, len(perm), batch_size):
            b = perm[start : start + batch_size]
            loss = nn.functional.mse_loss(model(xt[b]), yt[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pt, pv = model(xt), model(x[valid_idx])
    yv = y[valid_idx]
    fit = PredictorFit(
        train_rmse=float(((pt - yt) ** 2).mean().sqrt()),
        valid_rmse=float(((pv - yv) ** 2).mean().sqrt()),
        valid_mae=float((pv - yv).abs().mean()),
        valid_spearman=rank_correlation(pv.tolist(), yv.tolist()),
        n_train=len(train_idx),
        n_valid=n_valid,
        valid_measured=yv.tolist(),
        valid_predicted=pv.tolist(),
    )
    return model, fit


class PredictorFn:
    """Callable ``archs -> predicted accuracies`` for the search."""

    def __init__(self, encoder: ArchEncoder, model: AccuracyPredictor) -> None:
        self.encoder = encoder
        self.model = model.eval()

    @torch.no_grad()
    def __call__(self, archs: Sequence[Arch]) -> list[float]:
        if not archs:
            return []
        with single_thread():
            return self.model(self.encoder.encode_many(archs)).tolist()
