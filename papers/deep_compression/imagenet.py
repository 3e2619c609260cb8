"""Stage ``deep_compression_imagenet@<alexnet|vgg16>``: the paper's ImageNet rows (``paper`` profile).

Runs the same three stages as the MNIST networks on torchvision's pretrained AlexNet or VGG-16:
evaluate the reference network on the ImageNet validation set, prune it to the per-layer
densities of Tables 4 and 5 with retraining on the training set, quantize with 8-bit conv / 5-bit
fc codebooks and fine-tune the centroids, Huffman-code it into the compressed file, decode the
file and evaluate it. ImageNet must be under ``$EFFML_DATA_ROOT/imagenet/{train,val}``.

At the ``smoke`` and ``default`` profiles the config for these networks is ``null``: the stage
writes empty metrics and says so, and the report marks the AlexNet and VGG-16 rows as not run
(the laptop-scale analogue is the ``vgg`` network). Multi-GPU: ``launch.nproc_per_node``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from torch.utils.data import Subset

from common.checkpoint import save_model
from common.compress import read_compressed
from common.config import save_resolved
from common.data import build_dataset
from common.io import save_masks, write_json, write_metrics
from common.models import create_model
from common.tracking import epoch_logger, stage_run
from common.train import evaluate_dataset, init_distributed
from common.train.distributed import cleanup
from papers.deep_compression import stage
from papers.deep_compression.method import (
    encode,
    iterative_prune,
    quantize_and_finetune,
    storage_rows,
)


def _subset(ds, n: int | None):
    return (
        ds
        if n is None or n >= len(ds)
        else Subset(ds, list(range(0, len(ds), max(len(ds) // n, 1)))[:n])
    )


def _evaluate(model, data) -> dict[str, float]:
    device = next(model.parameters()).device
    return evaluate_dataset(model.eval(), data, batch_size=100, device=str(device))


def run(args: argparse.Namespace) -> dict[str, float]:
    profile, cfg = stage.load_config(args.params)
    ic = stage.network_config(args.params, cfg, "imagenet", args.name)
    name = f"deep_compression_imagenet@{args.name}"
    if ic is None:
        with stage_run(
            experiment=stage.EXPERIMENT, stage=name, profile=profile, tags={"status": "not run"}
        ):
            pass  # recorded, so every stage of a pipeline run shows up in MLflow
        write_metrics({}, args.metrics)
        write_json(
            {
                "status": "not run",
                "profile": profile,
                "reason": "needs ImageNet; runs at the paper profile",
            },
            args.out / "status.json",
        )
        print(
            f"{args.name}: not run at the {profile} profile (needs ImageNet and GPUs; see the vgg analogue)"
        )
        return {}
    ctx = init_distributed(ic.retrain.device)
    train = _subset(
        build_dataset("imagenet", "train", root=args.data, resolution=ic.resolution),
        ic.train_subset,
    )
    val = _subset(
        build_dataset("imagenet", "val", root=args.data, resolution=ic.resolution), ic.val_subset
    )
    arch = {"name": ic.model, "kwargs": {}}
    model = create_model(ic.model, weights=ic.weights).to(ctx.device)
    original_bytes = stage.dense_bytes(model)
    p = f"{args.name}/imagenet"
    with stage_run(
        experiment=stage.EXPERIMENT, stage=name, config=ic, profile=profile, enabled=ctx.is_main
    ) as mlrun:
        ref = _evaluate(model, val)
        pruned = iterative_prune(
            model,
            ic.pruning,
            steps=ic.steps,
            retrain=ic.retrain,
            train_data=train,
            eval_data=val,
            checkpoint_dir=args.checkpoints / "prune",
            hooks=[epoch_logger(mlrun)],
        )
        after_prune = _evaluate(model, val)
        quant = quantize_and_finetune(
            model,
            ic.quantization,
            masks=pruned.masks,
            finetune=ic.finetune,
            train_data=train,
            eval_data=val,
            checkpoint_dir=args.checkpoints / "quantize",
            hooks=[epoch_logger(mlrun)],
        )
        if not ctx.is_main:
            cleanup(ctx)
            return {}
        model = model.cpu()
        codec = encode(
            model,
            quant,
            args.out / "model.dcmp",
            index_bits=ic.index_bits,
            arch=arch,
            meta={"network": args.name, "profile": profile},
        )
        codec_pq = encode(
            model,
            quant,
            args.out / "model_pq.dcmp",
            index_bits=ic.index_bits,
            arch=arch,
            use_huffman=False,
        )
        decoded, _ = read_compressed(args.out / "model.dcmp")
        final = _evaluate(decoded.to(ctx.device), val)
        save_model(model, args.out / "model.safetensors", arch=arch, extra={"profile": profile})
        save_masks(pruned.masks, args.out / "masks.safetensors")
        save_resolved(ic, args.out / "config.json", profile=profile, stage=name)
        rows = storage_rows(codec, [name for name, _ in model.named_modules()])
        write_json(
            {"rows": rows, "codec": codec.to_dict(), "codec_pq": codec_pq.to_dict()},
            args.out / "storage.json",
        )
        metrics = {
            f"{p}/ref_top1_error": ref["error"],
            f"{p}/ref_top5_error": ref.get("error5", float("nan")),
            f"{p}/pruned_top1_error": after_prune["error"],
            f"{p}/compressed_top1_error": final["error"],
            f"{p}/compressed_top5_error": final.get("error5", float("nan")),
            f"{p}/original_mb": original_bytes / 1e6,
            f"{p}/size_mb": codec.file_bytes / 1e6,
            f"{p}/size_pq_mb": codec_pq.file_bytes / 1e6,
            f"{p}/rate": original_bytes / codec.file_bytes,
            f"{p}/rate_pq": original_bytes / codec_pq.file_bytes,
            f"{p}/kept_pct": 100 * pruned.report.density,
            f"{p}/total/kept_pct": rows[-1]["kept_pct"],
            f"{p}/total/rate_pq_pct": storage_rows(codec_pq)[-1]["rate_pq_pct"],
            f"{p}/total/rate_pqh_pct": rows[-1]["rate_pqh_pct"],
        }
        write_metrics(metrics, args.metrics)
        if mlrun is not None:
            mlrun.log_metrics(metrics)
            mlrun.log_artifact(args.out / "storage.json")
    cleanup(ctx)
    print(
        f"{args.name}: {metrics[f'{p}/original_mb']:.1f} MB -> {metrics[f'{p}/size_mb']:.2f} MB, top-1 error {ref['error']:.2f}% -> {final['error']:.2f}%"
    )
    return metrics


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--name", required=True, help="alexnet or vgg16 (a key of the profile's imagenet section)"
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="ImageNet root (default: $EFFML_DATA_ROOT/imagenet)"
    )
    for flag in ("out", "checkpoints", "metrics"):
        parser.add_argument(f"--{flag}", **stage.FLAGS[flag])


def main(argv: list[str] | None = None) -> int:
    return stage.run_main(__doc__.split("\n")[0], _args, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
