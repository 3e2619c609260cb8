"""Stage ``deep_compression_tradeoff``: error against model size, Figure 6.

The paper (Figure 6, AlexNet) compares pruning only, quantization only and both: each alone
loses accuracy below about 8% of the original size, together they reach about 3% without loss.
Here the same three curves are measured on the network dvc.yaml names (LeNet-300-100, where a
point costs seconds). Every point starts from the trained baseline and is
retrained for the same number of epochs:

* pruning only: one prune to the density, retraining with masks; size = stored entries x
  (32-bit weight + relative index), fillers included;
* quantization only: k-means weight sharing of every layer at ``bits``, centroid fine-tuning
  (``finetune``);
  size = ``bits`` per weight plus the codebook;
* both: pruning, then quantization of the survivors; size = the fixed-width (P+Q) file's layers.

Sizes count the weights of the compressed layers (not biases), as the paper's compression rates.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import numpy as np

from common.compress import KMeansQuantConfig, MagnitudePruneConfig
from common.compress.sparse import encode_positions
from common.config import save_resolved
from common.io import write_json, write_metrics
from common.tracking import stage_run
from papers.deep_compression import stage
from papers.deep_compression.method import encode, iterative_prune, quantize_and_finetune


def _pruned_size_pct(masks: dict, index_bits: int) -> float:
    bits = dense = 0
    for mask in masks.values():
        relative, _ = encode_positions(mask.cpu().numpy().ravel(), index_bits)
        bits += relative.size * (32 + index_bits)
        dense += 32 * mask.numel()
    return 100 * bits / dense


def run(args: argparse.Namespace) -> dict[str, float]:
    profile, cfg = stage.load_config(args.params)
    tc = cfg.tradeoff
    base_cfg = stage.network_config(args.params, cfg, "baseline", args.name)
    train, test = stage.datasets(base_cfg, args.data)
    if tc.train_subset is not None:
        train = train.subset(tc.train_subset, seed=0)
    baseline, meta = stage.load_network(args.baseline)
    base_error = stage.test_error(baseline, test)
    points: list[dict] = []
    name = "deep_compression_tradeoff"

    def record(method: str, label: str, size_pct: float, model, **extra) -> None:
        error = stage.test_error(model, test)
        points.append(
            {"method": method, "label": label, "size_pct": size_pct, "error": error, **extra}
        )
        print(f"{method:<14} {label:<10} size {size_pct:6.2f}%  error {error:.2f}%")

    with (
        stage_run(experiment=stage.EXPERIMENT, stage=name, config=tc, profile=profile) as mlrun,
        tempfile.TemporaryDirectory() as tmp,
    ):
        for d in tc.densities:
            model = copy.deepcopy(baseline)
            result = iterative_prune(
                model,
                MagnitudePruneConfig("density", d),
                steps=1,
                retrain=tc.retrain,
                train_data=train,
                eval_data=None,
                checkpoint_dir=args.checkpoints / f"prune_{d:g}",
                log=lambda _m: None,
            )
            record(
                "pruning",
                f"d={d:g}",
                _pruned_size_pct(result.masks, tc.index_bits),
                model,
                density=d,
            )
        for b in tc.bits:
            model = copy.deepcopy(baseline)
            quant = quantize_and_finetune(
                model,
                KMeansQuantConfig(conv_bits=b, fc_bits=b),
                masks=None,
                finetune=tc.finetune,
                train_data=train,
                checkpoint_dir=args.checkpoints / f"quant_{b}",
                log=lambda _m: None,
            )
            codec = encode(
                model,
                quant,
                Path(tmp) / "q.dcmp",
                index_bits=tc.index_bits,
                arch=meta["arch"],
                use_huffman=False,
            )
            size = (
                100 * sum(x.pq_bits for x in codec.layers) / sum(32 * x.numel for x in codec.layers)
            )
            record("quantization", f"{b} bits", size, model, bits=b)
        for d, b in tc.combined:
            model = copy.deepcopy(baseline)
            result = iterative_prune(
                model,
                MagnitudePruneConfig("density", d),
                steps=1,
                retrain=tc.retrain,
                train_data=train,
                eval_data=None,
                checkpoint_dir=args.checkpoints / f"both_{d:g}_{b}_prune",
                log=lambda _m: None,
            )
            quant = quantize_and_finetune(
                model,
                KMeansQuantConfig(conv_bits=b, fc_bits=b),
                masks=result.masks,
                finetune=tc.finetune,
                train_data=train,
                checkpoint_dir=args.checkpoints / f"both_{d:g}_{b}_quant",
                log=lambda _m: None,
            )
            codec = encode(
                model,
                quant,
                Path(tmp) / "pq.dcmp",
                index_bits=tc.index_bits,
                arch=meta["arch"],
                use_huffman=False,
            )
            size = (
                100 * sum(x.pq_bits for x in codec.layers) / sum(32 * x.numel for x in codec.layers)
            )
            record("both", f"d={d:g}, {b} bits", size, model, density=d, bits=b)

        p = f"{args.name}/tradeoff"
        metrics = {f"{p}/baseline_error": base_error}
        for method in ("pruning", "quantization", "both"):
            lossless = [
                pt["size_pct"]
                for pt in points
                if pt["method"] == method and pt["error"] <= base_error + tc.no_loss_tolerance
            ]
            if lossless:
                metrics[f"{p}/{method}/min_size_pct_no_loss"] = float(np.min(lossless))
        write_json(
            {
                "network": args.name,
                "baseline_error": base_error,
                "no_loss_tolerance": tc.no_loss_tolerance,
                "points": points,
            },
            args.out,
        )
        save_resolved(
            tc, args.out.with_name(args.out.stem + "_config.json"), profile=profile, stage=name
        )
        write_metrics(metrics, args.metrics)
        mlrun.log_metrics(metrics)
        mlrun.log_artifact(args.out)
    return metrics


def main(argv: list[str] | None = None) -> int:
    return stage.run_main(
        __doc__.split("\n")[0],
        ["name", "baseline", "data", "out", "checkpoints", "metrics"],
        run,
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
