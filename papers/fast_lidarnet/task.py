"""Training of the control networks on the shared loop: evidential regression of the curvature
now and at the future steps (:class:`ControlTask`), and its evaluation (open-loop error).

The loss is the official evidential-regression loss (:func:`common.evidential.evidential_loss`:
NIG negative log-likelihood + ``coeff`` |y - gamma| (2 nu + alpha)), over every predicted step.
Curvatures are in 1/m; errors are reported in 1/km (1e-3 / m) to read as whole numbers.
"""

from __future__ import annotations

from typing import Any

import torch

from common.evidential import evidential_loss, nig_nll
from common.train.tasks import Sums, Task, _clip, add_
from papers.fast_lidarnet.data import FrameBatch

PER_KM = 1000.0  # curvature 1/m -> 1/km


class ControlTask(Task):
    """``FrameBatch`` batches; one evidential loss over all ``horizon + 1`` outputs."""

    kind = "evidential_control"

    def __init__(self, coeff: float) -> None:
        self.coeff = coeff

    def fingerprint(self) -> Any:
        return {"kind": self.kind, "coeff": self.coeff}

    def train_step(self, trainer: Any, batch: FrameBatch, sums: Sums) -> float:
        batch = batch.to(trainer.ctx.device)
        trainer.optimizer.zero_grad(set_to_none=True)
        p = trainer.ddp_model(batch.points, batch.maps)
        loss = evidential_loss(batch.labels, p, self.coeff)
        loss.backward()
        _clip(trainer, trainer.model)
        trainer.optimizer.step()
        n = len(batch)
        add_(sums, "loss", loss.detach().double() * n)
        add_(sums, "abs_now", (p.gamma[:, 0] - batch.labels[:, 0]).detach().abs().sum().double())
        add_(sums, "count", n)
        return loss.item()

    def epoch_record(self, sums: dict[str, float]) -> dict[str, float]:
        count = max(sums.get("count", 0.0), 1.0)
        return {
            "train_loss": sums.get("loss", 0.0) / count,
            "train_mae_now": PER_KM * sums.get("abs_now", 0.0) / count,
        }

    def evaluate(self, trainer: Any, loader: Any) -> dict[str, float]:
        return evaluate_control(trainer.model, loader, trainer.ctx.device)


@torch.no_grad()
def predict(model: torch.nn.Module, loader: Any, device: torch.device | str = "cpu") -> dict:
    """Every frame's NIG parameters and labels, ``(F, K + 1)`` tensors."""
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in
                                            ("gamma", "nu", "alpha", "beta", "labels")}  # fmt: skip
    for batch in loader:
        batch = batch.to(device)
        p = model(batch.points, batch.maps)
        for k in ("gamma", "nu", "alpha", "beta"):
            parts[k].append(getattr(p, k).cpu())
        parts["labels"].append(batch.labels.cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


def control_metrics(out: dict[str, torch.Tensor]) -> dict[str, float]:
    """Open-loop errors (1/km), NLL and mean uncertainties from :func:`predict`'s output."""
    from common.evidential import NIG

    p = NIG(out["gamma"], out["nu"], out["alpha"], out["beta"])
    y = out["labels"]
    err = (p.gamma - y).abs()
    return {
        "mae_now": PER_KM * err[:, 0].mean().item(),
        "mae_all": PER_KM * err.mean().item(),
        "mae_last": PER_KM * err[:, -1].mean().item(),
        "rmse_now": PER_KM * err[:, 0].pow(2).mean().sqrt().item(),
        "nll": nig_nll(y, p).mean().item(),
        "epistemic": p.epistemic[:, 0].mean().item(),
        "aleatoric": p.aleatoric[:, 0].mean().item(),
        "label_std": PER_KM * y[:, 0].std().item(),
    }


def evaluate_control(model: torch.nn.Module, loader: Any, device: torch.device | str) -> dict:
    return control_metrics(predict(model, loader, device))
