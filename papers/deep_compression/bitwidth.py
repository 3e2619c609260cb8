"""Stage ``deep_compression_bitwidth``: bits per layer type (Table 6) and initialisation (Fig. 8).

Table 6 quantizes the pruned AlexNet with (conv bits, fc bits) of 8/5, 8/4 and 4/2 and reports
the loss of top-1 accuracy against the unquantized network (32/32). Figure 8 compares the three
k-means initialisations (linear, density, random) across bit widths; linear wins except at
3 bits. Both are measured here on the pruned network dvc.yaml names (LeNet-5),
each point quantizing a fresh copy and fine-tuning its centroids for the same budget.
"""

from __future__ import annotations

import copy

from common.compress import KMeansQuantConfig
from common.io import load_masks
from common.stage import StageContext
from papers.deep_compression.method import quantize_and_finetune
from papers.deep_compression.stage import dc_stage, finish_analysis, network_inputs, test_error


@dc_stage(
    name="deep_compression_bitwidth",
    flags=["name", "pruned", "data", "out", "checkpoints", "metrics"],
    track=lambda ctx: ctx.config.bitwidth,
)
def main(ctx: StageContext) -> None:
    """Quantize a pruned network at several bit widths and initialisations (Table 6, Figure 8)."""
    bc = ctx.config.bitwidth
    args = ctx.args
    train, test, pruned, _ = network_inputs(ctx, args.pruned, bc.train_subset)
    masks = load_masks(args.pruned / "masks.safetensors")
    ref_error = test_error(pruned, test)

    def point(conv_bits: int, fc_bits: int, init: str, tag: str) -> float:
        model = copy.deepcopy(pruned)
        quantize_and_finetune(
            model,
            KMeansQuantConfig(conv_bits=conv_bits, fc_bits=fc_bits, init=init),
            masks=masks,
            finetune=bc.finetune,
            train_data=train,
            checkpoint_dir=args.checkpoints / tag,
            log=lambda _m: None,
        )
        error = test_error(model, test)
        print(
            f"{tag:<16} conv {conv_bits} / fc {fc_bits} bits, {init:<8} init: "
            f"error {error:.2f}% ({error - ref_error:+.2f})"
        )
        return error

    p = args.name
    metrics: dict[str, float] = {f"{p}/bitwidth/ref_error": ref_error}
    table, curves = [], []
    for conv_bits, fc_bits in bc.sweep:
        error = point(conv_bits, fc_bits, "linear", f"sweep_{conv_bits}_{fc_bits}")
        delta = error - ref_error
        table.append({"conv_bits": conv_bits, "fc_bits": fc_bits, "error": error, "delta": delta})
        metrics[f"{p}/bitwidth/{conv_bits}_{fc_bits}/test_error"] = error
        metrics[f"{p}/bitwidth/{conv_bits}_{fc_bits}/delta_error"] = delta
    by_bits: dict[int, dict[str, float]] = {}
    for init in bc.inits:
        for b in bc.init_bits:
            error = point(b, b, init, f"init_{init}_{b}")
            curves.append({"init": init, "bits": b, "error": error})
            by_bits.setdefault(b, {})[init] = error
            metrics[f"{p}/init/{init}/{b}/test_error"] = error
    if "linear" in bc.inits and len(bc.inits) > 1:
        wins = [all(errs["linear"] <= e for e in errs.values()) for errs in by_bits.values()]
        metrics[f"{p}/init/linear_best_fraction"] = sum(wins) / len(wins)
        metrics[f"{p}/init/linear_best_count"] = float(sum(wins))
    side = {"network": args.name, "ref_error": ref_error, "sweep": table, "init": curves}
    finish_analysis(ctx, bc, side, metrics)


if __name__ == "__main__":
    raise SystemExit(main())
