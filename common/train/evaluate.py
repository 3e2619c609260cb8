"""Evaluation of classifiers, shared by the training loop and by every paper's stages."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from common.data.loader import build_loader
from common.train.distributed import DistContext, all_reduce_sum


@torch.inference_mode()
def evaluate_classifier(
    model: nn.Module,
    loader: DataLoader,
    *,
    device: torch.device | str = "cpu",
    ctx: DistContext | None = None,
) -> dict[str, float]:
    """Top-1 ``error`` and ``accuracy``, top-5 ``error5`` (all in %) and mean cross-entropy ``loss``.

    ``error5`` is reported only when there are more than five classes. Under DDP each rank
    evaluates its shard and the sums are all-reduced, so every rank returns the metrics of the
    whole set.
    """
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, top-1, top-5 correct, count
    classes = 0
    for inputs, targets in loader:
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        logits = model(inputs)
        classes = logits.shape[1]
        sums[0] += nn.functional.cross_entropy(logits, targets, reduction="sum").double()
        sums[1] += (logits.argmax(dim=1) == targets).sum()
        top5 = logits.topk(min(5, classes), dim=1).indices
        sums[2] += (top5 == targets[:, None]).any(dim=1).sum()
        sums[3] += targets.numel()
    if ctx is not None:
        all_reduce_sum(sums, ctx)
    model.train(was_training)
    count = max(sums[3].item(), 1.0)
    accuracy = 100.0 * sums[1].item() / count
    out = {"loss": sums[0].item() / count, "accuracy": accuracy, "error": 100.0 - accuracy}
    if classes > 5:
        out["error5"] = 100.0 - 100.0 * sums[2].item() / count
    return out


def evaluate_dataset(
    model: nn.Module, dataset: Dataset, *, batch_size: int = 1000, device: str = "cpu"
) -> dict[str, float]:
    """Convenience wrapper: evaluate ``model`` on a whole dataset in one process."""
    loader = build_loader(dataset, batch_size=batch_size, shuffle=False)
    return evaluate_classifier(model.to(device), loader, device=device)
