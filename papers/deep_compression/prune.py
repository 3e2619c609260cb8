"""Stage ``deep_compression_prune@<network>``: iterative magnitude pruning (Section 2).

Loads the trained baseline, scans each layer's sensitivity to pruning (the companion paper's
Figure 5), then prunes to the per-layer densities in params.yaml (by default the "Weights %" of
Tables 2 and 3) in a few prune-and-retrain rounds, the pruned weights held at zero throughout.

Outputs: ``<out>/model.safetensors`` (+ JSON), ``<out>/masks.safetensors``, ``<out>/prune.json``
(per-layer densities, thresholds and quality parameters), ``<out>/sensitivity.json``, metrics and
a per-epoch history of the retraining.
"""

from __future__ import annotations

from common.checkpoint import save_model
from common.compress import sensitivity_scan
from common.config import to_dict
from common.io import save_masks, write_json
from common.stage import StageContext
from papers.deep_compression.method import iterative_prune
from papers.deep_compression.stage import dc_stage, network_inputs, test_error


@dc_stage(
    name="deep_compression_prune@{name}",
    flags=["name", "baseline", "data", "out", "checkpoints", "metrics", "history"],
    track=lambda ctx: ctx.entry("prune"),
)
def main(ctx: StageContext) -> None:
    """Prune a trained baseline (``--name``) to the per-layer densities of the profile."""
    cfg = ctx.entry("prune")
    args = ctx.args
    train, test, model, meta = network_inputs(ctx, args.baseline)
    error_before = test_error(model, test)
    sensitivity = {}
    if cfg.sensitivity_densities:
        scan_data = (
            test if cfg.sensitivity_subset is None else test.subset(cfg.sensitivity_subset, seed=0)
        )
        sensitivity = sensitivity_scan(
            model, lambda m: test_error(m, scan_data), cfg.sensitivity_densities
        )
    result = iterative_prune(
        model,
        cfg.pruning,
        steps=cfg.steps,
        retrain=cfg.retrain,
        train_data=train,
        eval_data=test,
        checkpoint_dir=args.checkpoints,
        hooks=[ctx.epoch_logger()],
    )
    error = test_error(model, test)
    extra = {"profile": ctx.profile, "config": to_dict(cfg)}
    save_model(model, args.out / "model.safetensors", arch=meta["arch"], extra=extra)
    save_masks(result.masks, args.out / "masks.safetensors")
    files = [
        ctx.save_config(cfg, args.out / "config.json"),
        write_json(result.report.to_dict(), args.out / "prune.json"),
        write_json(
            {k: [list(p) for p in v] for k, v in sensitivity.items()}, args.out / "sensitivity.json"
        ),
    ]
    p = f"{args.name}/pruned"
    layers = result.report.layers
    metrics = {
        f"{p}/test_error": error,
        f"{p}/test_error_before": error_before,
        f"{p}/kept_pct": 100 * result.report.density,
        f"{p}/weights": float(result.report.numel),
        **{f"{p}/{layer.name}/kept_pct": 100 * layer.density for layer in layers},
        **{f"{p}/{layer.name}/quality": layer.quality for layer in layers},
    }
    ctx.finish(
        metrics,
        artifacts=files,
        history=result.history,
        summary=f"{args.name}: pruned to {metrics[f'{p}/kept_pct']:.2f}% of weights, "
        f"test error {error:.2f}% (was {error_before:.2f}%)",
    )


if __name__ == "__main__":
    raise SystemExit(main())
