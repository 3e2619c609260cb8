"""Stage ``once_for_all_predictor``: train the accuracy predictor (Section 3.4).

An MLP (``predictor.layers`` hidden layers of ``predictor.hidden`` units; the paper: 3 x 400) on
the one-hot encoding of each measured sub-network (:class:`common.ofa.ArchEncoder`) predicts its
held-out accuracy. A fixed fraction of the measurements is never trained on and gives the
predictor's RMSE (the paper: 0.21% with 16K samples on ImageNet) and its rank correlation, which
is what the evolutionary search relies on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from common.checkpoint import load_model, save_model
from common.config import to_dict
from common.io import write_json
from common.ofa.predictor import AccuracyPredictor, ArchEncoder, PredictorFn, fit_predictor
from common.stage import StageContext
from papers.once_for_all.config import OFAProfile
from papers.once_for_all.stage import ofa_stage, read_json

PREDICTOR_FILE = "predictor.safetensors"


@ofa_stage(
    name="once_for_all_predictor",
    flags=["samples", "out", "metrics"],
    track=lambda ctx: ctx.config.predictor,
)
def main(ctx: StageContext) -> None:
    cfg, args = ctx.config, ctx.args
    pc = cfg.predictor
    data = read_json(args.samples, fix="run `dvc repro once_for_all_measure` first")
    records = data["records"]
    encoder = ArchEncoder(cfg.space, cfg.space.resolution_choices())
    t0 = time.perf_counter()
    model, fit = fit_predictor(
        encoder,
        [r["arch"] for r in records],
        [r["accuracy"] for r in records],
        valid_fraction=pc.valid_fraction,
        hidden=pc.hidden,
        layers=pc.layers,
        epochs=pc.epochs,
        lr=pc.lr,
        weight_decay=pc.weight_decay,
        batch_size=pc.batch_size,
        seed=cfg.seed,
    )
    seconds = time.perf_counter() - t0
    save_model(
        model,
        args.out / PREDICTOR_FILE,
        arch={
            "name": "ofa_accuracy_predictor",
            "in_features": encoder.size,
            "hidden": pc.hidden,
            "layers": pc.layers,
            "space": cfg.space.to_dict(),
            "resolutions": list(encoder.resolutions),
        },
        extra={"profile": ctx.profile, "config": to_dict(pc), "fit": vars(fit)},
    )
    write_json(
        {
            "valid": [
                {"measured": a, "predicted": b}
                for a, b in zip(fit.valid_measured, fit.valid_predicted, strict=True)
            ]
        },
        args.out / "validation.json",
    )
    accs = [r["accuracy"] for r in records]
    spread = (sum((a - sum(accs) / len(accs)) ** 2 for a in accs) / len(accs)) ** 0.5
    metrics = {
        "predictor/train_rmse": fit.train_rmse,
        "predictor/valid_rmse": fit.valid_rmse,
        "predictor/valid_mae": fit.valid_mae,
        "predictor/valid_spearman": fit.valid_spearman,
        "predictor/n_train": float(fit.n_train),
        "predictor/n_valid": float(fit.n_valid),
        "predictor/accuracy_std": spread,
        "predictor/fit_seconds": seconds,
        "time/predictor": ctx.seconds(),
    }
    ctx.finish(
        metrics,
        summary=f"accuracy predictor: held-out RMSE {fit.valid_rmse:.3f} points (spread of the "
        f"data {spread:.3f}), rank correlation {fit.valid_spearman:.3f} -> {args.out}",
    )


def load_predictor(directory: Path, cfg: OFAProfile) -> tuple[PredictorFn, dict[str, Any]]:
    """The trained predictor as ``archs -> accuracies`` (for the search stage)."""

    def build(arch: dict[str, Any]) -> AccuracyPredictor:
        return AccuracyPredictor(arch["in_features"], hidden=arch["hidden"], layers=arch["layers"])

    model, meta = load_model(directory / PREDICTOR_FILE, build=build)
    encoder = ArchEncoder(cfg.space, meta["arch"]["resolutions"])
    return PredictorFn(encoder, model), meta


if __name__ == "__main__":
    raise SystemExit(main())
