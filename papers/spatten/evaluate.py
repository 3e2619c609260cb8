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
    """Per example, whether ``model`` (with ``pruning``) classifies it right (SQuAD: the F1 of
    its answer, 0-1); each batch's :class:`Trace` is appended to ``traces``."""
    was = model.training
    model.eval()
    model.pruning, model.trace = pruning, None
    device = next(model.parameters()).device
    out = []
    try:
        for x, y in DataLoader(data, batch_size=batch_size, shuffle=False):
            model.trace = Trace() if traces is not None else None
            logits = model(x.to(device)).float().cpu()
            out.append(logits if hasattr(data, "scores") else (logits.argmax(-1) == y).numpy())
            if traces is not None:
                traces.append(model.trace)
    finally:
        model.pruning, model.trace = None, None
        model.train(was)
    if hasattr(data, "scores"):  # SQuAD: the answers of each example's windows, by F1
        return data.scores(torch.cat(out))[0]
    return np.concatenate(out)


def paired_std(a: np.ndarray, b: np.ndarray, samples: int, seed: int = 0) -> float:
    """Bootstrap standard deviation of ``mean(a) - mean(b)`` over paired examples (x 100 for
    accuracies given as 0/1)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(samples, len(a)))
    diff = a.astype(float)[idx].mean(1) - b.astype(float)[idx].mean(1)
    return float(100.0 * diff.std(ddof=1))


def not_run(ctx) -> None:
    """A row the profile sets to null (the paper's rows at the default profile): recorded as not
    run (a status file, an MLflow tag), nothing measured."""
    from pathlib import Path

    from common.io import write_json

    reason = "set to null in this profile (the paper's rows: papers/spatten/README.md)"
    if ctx.run is not None:
        ctx.run.set_tags({"status": "not run"})
    write_json(
        {"status": "not run", "profile": ctx.profile, "reason": reason},
        Path(ctx.args.out) / "status.json",
    )
    ctx.finish(
        {},
        history=[] if getattr(ctx.args, "history", None) else None,
        summary=f"{ctx.args.name}: not run at the {ctx.profile} profile: {reason}",
    )
