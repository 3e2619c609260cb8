"""Stage ``once_for_all_predictor``: train the accuracy predictor (Section 3.4).

An MLP (``predictor.layers`` hidden layers of ``predictor.hidden`` units; the paper: 3 x 400) on
the one-hot encoding of each measured sub-network (:class:`common.ofa.ArchEncoder`) predicts its
held-out accuracy. A fixed fraction of the measurements is never trained on and gives the
predictor's RMSE (the paper: 0.21% with 16K samples on ImageNet) and its rank correlation, which
is what the evolutionary search relies on.
"""

from __future__ import annotations

import argparse
import time

from common.checkpoint import save_model
from common.config import to_dict
from common.io import write_json, write_metrics
from common.ofa.predictor import ArchEncoder, fit_predictor
from common.stage import run_stage
from common.tracking import stage_run
from papers.once_for_all.stage import EXPERIMENT, FLAGS, load_config, read_json

PREDICTOR_FILE = "predictor.safetensors"


def run(args: argparse.Namespace) -> dict[str, float]:
    t_start = time.perf_counter()
    profile, cfg = load_config(args.params)
    pc = cfg.predictor
    data = read_json(args.samples, fix="run `dvc repro once_for_all_measure` first")
    records = data["records"]
    encoder = ArchEncoder(cfg.space, cfg.space.resolution_choices())
    with stage_run(
        experiment=EXPERIMENT, stage="once_for_all_predictor", config=pc, profile=profile
    ) as mlrun:
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
            extra={"profile": profile, "config": to_dict(pc), "fit": vars(fit)},
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
            "time/predictor": time.perf_counter() - t_start,
        }
        write_metrics(metrics, args.metrics)
        if mlrun is not None:
            mlrun.log_metrics(metrics)
    print(
        f"accuracy predictor: held-out RMSE {fit.valid_rmse:.3f} points (spread of the data "
        f"{spread:.3f}), rank correlation {fit.valid_spearman:.3f} -> {args.out}"
    )
    return metrics


def load_predictor(directory, cfg):
    """The trained predictor as ``archs -> accuracies`` (for the search stage)."""
    from common.checkpoint import load_model
    from common.ofa.predictor import AccuracyPredictor, PredictorFn

    def build(arch):
        return AccuracyPredictor(arch["in_features"], hidden=arch["hidden"], layers=arch["layers"])

    model, meta = load_model(directory / PREDICTOR_FILE, build=build)
    encoder = ArchEncoder(cfg.space, meta["arch"]["resolutions"])
    return PredictorFn(encoder, model), meta


def main(argv: list[str] | None = None) -> int:
    return run_stage(
        __doc__.split("\n")[0], ["samples", "out", "metrics"], run, argv, catalogue=FLAGS
    )


if __name__ == "__main__":
    raise SystemExit(main())
