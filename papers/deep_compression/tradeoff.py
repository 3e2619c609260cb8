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

import copy
import tempfile
from pathlib import Path

import numpy as np
from torch import Tensor, nn

from common.compress import KMeansQuantConfig, MagnitudePruneConfig
from common.compress.sparse import encode_positions
from common.stage import StageContext
from papers.deep_compression.method import encode, iterative_prune, quantize_and_finetune
from papers.deep_compression.stage import dc_stage, finish_analysis, network_inputs, test_error


def _pruned_size_pct(masks: dict[str, Tensor], index_bits: int) -> float:
    bits = dense = 0
    for mask in masks.values():
        relative, _ = encode_positions(mask.cpu().numpy().ravel(), index_bits)
        bits += relative.size * (32 + index_bits)
        dense += 32 * mask.numel()
    return 100 * bits / dense


@dc_stage(
    name="deep_compression_tradeoff",
    flags=["name", "baseline", "data", "out", "checkpoints", "metrics"],
    track=lambda ctx: ctx.config.tradeoff,
)
def main(ctx: StageContext) -> None:
    """Error against size for pruning only, quantization only, and both (Figure 6)."""
    tc = ctx.config.tradeoff
    args = ctx.args
    train, test, baseline, meta = network_inputs(ctx, args.baseline, tc.train_subset)
    base_error = test_error(baseline, test)
    points: list[dict] = []

    def record(method: str, label: str, size_pct: float, model: nn.Module, **extra) -> None:
        error = test_error(model, test)
        points.append(
            {"method": method, "label": label, "size_pct": size_pct, "error": error, **extra}
        )
        print(f"{method:<14} {label:<10} size {size_pct:6.2f}%  error {error:.2f}%")

    def prune(model: nn.Module, density: float, tag: str) -> dict[str, Tensor]:
        return iterative_prune(
            model,
            MagnitudePruneConfig("density", density),
            steps=1,
            retrain=tc.retrain,
            train_data=train,
            eval_data=None,
            checkpoint_dir=args.checkpoints / tag,
            log=lambda _m: None,
        ).masks

    def quantize(model: nn.Module, bits: int, masks: dict | None, tag: str, file: str) -> float:
        """Quantize in place; the size (%) of the compressed layers in the fixed-width file."""
        quant = quantize_and_finetune(
            model,
            KMeansQuantConfig(conv_bits=bits, fc_bits=bits),
            masks=masks,
            finetune=tc.finetune,
            train_data=train,
            checkpoint_dir=args.checkpoints / tag,
            log=lambda _m: None,
        )
        codec = encode(
            model,
            quant,
            scratch / file,
            index_bits=tc.index_bits,
            arch=meta["arch"],
            use_huffman=False,
        )
        return 100 * sum(x.pq_bits for x in codec.layers) / sum(32 * x.numel for x in codec.layers)

    with tempfile.TemporaryDirectory() as tmp:  # the compressed files are only measured
        scratch = Path(tmp)
        for d in tc.densities:
            model = copy.deepcopy(baseline)
            masks = prune(model, d, f"prune_{d:g}")
            record("pruning", f"d={d:g}", _pruned_size_pct(masks, tc.index_bits), model, density=d)
        for b in tc.bits:
            model = copy.deepcopy(baseline)
            size = quantize(model, b, None, f"quant_{b}", "q.dcmp")
            record("quantization", f"{b} bits", size, model, bits=b)
        for d, b in tc.combined:
            model = copy.deepcopy(baseline)
            masks = prune(model, d, f"both_{d:g}_{b}_prune")
            size = quantize(model, b, masks, f"both_{d:g}_{b}_quant", "pq.dcmp")
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
    side = {
        "network": args.name,
        "baseline_error": base_error,
        "no_loss_tolerance": tc.no_loss_tolerance,
        "points": points,
    }
    finish_analysis(ctx, tc, side, metrics)


if __name__ == "__main__":
    raise SystemExit(main())
