"""Scoring the classifiers with and without pruning, and the noise of a difference."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from papers.spatten.bert import Pruning, Trace


@torch.inference_mode()
def correct(
    model: nn.Module,
    data,
    batch_size: int = 64,
    *,
    pruning: Pruning | None = None,
    traces: list[Trace] | None = None,
) -> np.ndarray:
    """Per example, whether ``model`` (with ``pruning``) classifies it right; each batch's
    :class:`Trace` is appended to ``traces``."""
    was = model.training
    model.eval()
    model.pruning, model.trace = pruning, None
    device = next(model.parameters()).device
    out = []
    try:
        for x, y in DataLoader(data, batch_size=batch_size, shuffle=False):
            model.trace = Trace() if traces is not None else None
            pred = model(x.to(device)).argmax(-1).cpu()
            out.append((pred == y).numpy())
            if traces is not None:
                traces.append(model.trace)
    finally:
        model.pruning, model.trace = None, None
        model.train(was)
    return np.concatenate(out)


def paired_std(a: np.ndarray, b: np.ndarray, samples: int, seed: int = 0) -> float:
    """Bootstrap standard deviation of ``mean(a) - mean(b)`` over paired examples (x 100 for
    accuracies given as 0/1)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(samples, len(a)))
    diff = a.astype(float)[idx].mean(1) - b.astype(float)[idx].mean(1)
    return float(100.0 * diff.std(ddof=1))
