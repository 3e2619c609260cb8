"""Stage ``deep_compression_prune@<network>``: iterative magnitude pruning (Section 2).

Loads the trained baseline, scans each layer's sensitivity to pruning (the companion paper's
Figure 5), then prunes to the per-layer densities in params.yaml (by default the "Weights %" of
Tables 2 and 3) in a few prune-and-retrain rounds, the pruned weights held at zero throughout.

Outputs: ``<out>/model.safetensors`` (+ JSON), ``<out>/masks.safetensors``, ``<out>/prune.json``
(per-layer densities, thresholds and quality parameters), ``<out>/sensitivity.json``, metrics and
a per-epoch history of the retraining.
"""

from __future__ import annotations

import argparse

from common.checkpoint import save_model
from common.compress import sensitivity_scan
from common.config import save_resolved, to_dict
from common.io import save_masks, write_history, write_json, write_metrics
from common.tracking import epoch_logger, stage_run
from papers.deep_compression import stage
from papers.deep_compression.method import iterative_prune


def run(args: argparse.Namespace) -> dict[str, float]:
    profile, cfg = stage.load_config(args.params)
    prune_cfg = stage.network_config(args.params, cfg, "prune", args.name)
    base = stage.network_config(args.params, cfg, "baseline", args.name)
    train, test = stage.datasets(base, args.data)
    model, meta = stage.load_network(args.baseline)
    name = f"deep_compression_prune@{args.name}"
    with stage_run(
        experiment=stage.EXPERIMENT, stage=name, config=prune_cfg, profile=profile
    ) as mlrun:
        error_before = stage.test_error(model, test)
        sensitivity = {}
        if prune_cfg.sensitivity_densities:
            scan_data = (
                test
                if prune_cfg.sensitivity_subset is None
                else test.subset(prune_cfg.sensitivity_subset, seed=0)
            )
            sensitivity = sensitivity_scan(
                model, lambda m: stage.test_error(m, scan_data), prune_cfg.sensitivity_densities
            )
        result = iterative_prune(
            model,
            prune_cfg.pruning,
            steps=prune_cfg.steps,
            retrain=prune_cfg.retrain,
            train_data=train,
            eval_data=test,
            checkpoint_dir=args.checkpoints,
            hooks=[epoch_logger(mlrun)],
        )
        error = stage.test_error(model, test)
        save_model(
            model,
            args.out / "model.safetensors",
            arch=meta["arch"],
            extra={"profile": profile, "config": to_dict(prune_cfg)},
        )
        save_masks(result.masks, args.out / "masks.safetensors")
        save_resolved(prune_cfg, args.out / "config.json", profile=profile, stage=name)
        write_json(result.report.to_dict(), args.out / "prune.json")
        write_json(
            {k: [list(p) for p in v] for k, v in sensitivity.items()}, args.out / "sensitivity.json"
        )
        write_history(result.history, args.history)
        p = f"{args.name}/pruned"
        metrics = {
            f"{p}/test_error": error,
            f"{p}/test_error_before": error_before,
            f"{p}/kept_pct": 100 * result.report.density,
            f"{p}/weights": float(result.report.numel),
            **{f"{p}/{layer.name}/kept_pct": 100 * layer.density for layer in result.report.layers},
            **{f"{p}/{layer.name}/quality": layer.quality for layer in result.report.layers},
        }
        write_metrics(metrics, args.metrics)
        mlrun.log_metrics(metrics)
        for f in ("prune.json", "sensitivity.json", "config.json"):
            mlrun.log_artifact(args.out / f)
    print(
        f"{args.name}: pruned to {metrics[f'{p}/kept_pct']:.2f}% of weights, test error {error:.2f}% (was {error_before:.2f}%)"
    )
    return metrics


def main(argv: list[str] | None = None) -> int:
    return stage.run_main(
        __doc__.split("\n")[0],
        ["name", "baseline", "data", "out", "checkpoints", "metrics", "history"],
        run,
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
