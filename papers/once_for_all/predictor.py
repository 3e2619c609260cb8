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

import torch

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
    model, fit = fit_records(encoder, records, pc, valid_fraction=pc.valid_fraction, seed=cfg.seed)
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
    curve = size_curve(encoder, records, pc, seed=cfg.seed)
    write_json(curve, args.out / "size_curve.json")
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
        **{f"predictor/curve/n{c['n_train']}/valid_rmse": c["valid_rmse"] for c in curve},
        "time/predictor": ctx.seconds(),
    }
    ctx.finish(
        metrics,
        summary=f"accuracy predictor: held-out RMSE {fit.valid_rmse:.3f} points (spread of the "
        f"data {spread:.3f}), rank correlation {fit.valid_spearman:.3f} -> {args.out}",
    )


def fit_records(
    encoder: ArchEncoder,
    records: list[dict[str, Any]],
    pc: Any,
    *,
    valid_fraction: float,
    seed: int,
) -> tuple[AccuracyPredictor, Any]:
    """:func:`common.ofa.predictor.fit_predictor` on measured records with ``predictor``'s settings."""
    return fit_predictor(
        encoder,
        [r["arch"] for r in records],
        [r["accuracy"] for r in records],
        valid_fraction=valid_fraction,
        hidden=pc.hidden,
        layers=pc.layers,
        epochs=pc.epochs,
        lr=pc.lr,
        weight_decay=pc.weight_decay,
        batch_size=pc.batch_size,
        seed=seed,
    )


CURVE_FRACTIONS = (0.125, 0.25, 0.5, 1.0)


def size_curve(
    encoder: ArchEncoder, records: list[dict[str, Any]], pc: Any, *, seed: int
) -> list[dict[str, float]]:
    """Held-out RMSE against the number of measured sub-networks trained on: the predictor
    refitted on the first 1/8, 1/4, 1/2 and all of its training measurements, always scored on
    the same held-out ones (those of the main fit).

    :func:`common.ofa.predictor.fit_predictor` picks its held-out set by a seeded permutation of
    the list's length; each subset is laid out so that this permutation puts the main fit's
    held-out records in the held-out positions.
    """
    n = len(records)
    n_valid = max(1, round(pc.valid_fraction * n))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    valid = [records[i] for i in order[:n_valid]]
    train = [records[i] for i in order[n_valid:]]
    out = []
    for frac in CURVE_FRACTIONS:
        k = max(5, round(frac * len(train)))
        if k > len(train) or (out and out[-1]["n_train"] == k):
            continue
        size = n_valid + k
        perm = torch.randperm(size, generator=torch.Generator().manual_seed(seed)).tolist()
        laid: list[dict[str, Any]] = [{}] * size
        for pos, rec in zip(perm[:n_valid], valid, strict=True):
            laid[pos] = rec
        for pos, rec in zip(perm[n_valid:], train[:k], strict=True):
            laid[pos] = rec
        _, fit = fit_records(encoder, laid, pc, valid_fraction=n_valid / size, seed=seed)
        held = sorted(round(float(a), 3) for a in fit.valid_measured)
        if fit.n_valid != n_valid or held != sorted(round(r["accuracy"], 3) for r in valid):
            raise RuntimeError("size curve: the held-out set moved (fit_predictor's split changed)")
        out.append(
            {
                "n_train": float(k),
                "valid_rmse": fit.valid_rmse,
                "valid_spearman": fit.valid_spearman,
            }
        )
    mean = sum(r["accuracy"] for r in train) / len(train)
    baseline = (sum((r["accuracy"] - mean) ** 2 for r in valid) / len(valid)) ** 0.5
    for c in out:
        c["mean_baseline_rmse"] = baseline  # predicting the training mean for every network
    return out


def load_predictor(directory: Path, cfg: OFAProfile) -> tuple[PredictorFn, dict[str, Any]]:
    """The trained predictor as ``archs -> accuracies`` (for the search stage)."""

    def build(arch: dict[str, Any]) -> AccuracyPredictor:
        return AccuracyPredictor(arch["in_features"], hidden=arch["hidden"], layers=arch["layers"])

    model, meta = load_model(directory / PREDICTOR_FILE, build=build)
    encoder = ArchEncoder(cfg.space, meta["arch"]["resolutions"])
    return PredictorFn(encoder, model), meta


if __name__ == "__main__":
    raise SystemExit(main())
