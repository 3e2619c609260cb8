"""Stage ``deep_compression_imagenet@<alexnet|vgg16>``: the paper's ImageNet rows (``paper``).

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

from pathlib import Path

from torch.utils.data import Subset

from common.checkpoint import save_model
from common.compress import read_compressed
from common.data import build_dataset
from common.io import save_masks, write_json
from common.models import create_model
from common.stage import StageContext
from common.train import DistContext, evaluate_dataset, init_distributed
from papers.deep_compression.config import ImagenetConfig
from papers.deep_compression.method import (
    encode,
    iterative_prune,
    quantize_and_finetune,
    storage_rows,
)
from papers.deep_compression.stage import FLAGS, dc_stage, dense_bytes


def _subset(ds, n: int | None):
    return (
        ds
        if n is None or n >= len(ds)
        else Subset(ds, list(range(0, len(ds), max(len(ds) // n, 1)))[:n])
    )


def _evaluate(model, data) -> dict[str, float]:
    device = next(model.parameters()).device
    return evaluate_dataset(model.eval(), data, batch_size=100, device=str(device))


def _config(ctx: StageContext) -> ImagenetConfig | None:
    """The network's config; ``None`` at the profiles that do not run the ImageNet rows."""
    return ctx.entry("imagenet")


def _join(ctx: StageContext) -> DistContext:
    """The process group of the run (a plain CPU process where the network does not run)."""
    ic = _config(ctx)
    return init_distributed("cpu" if ic is None else ic.retrain.device)


@dc_stage(
    name="deep_compression_imagenet@{name}",
    flags=["name", "data", "out", "checkpoints", "metrics"],
    catalogue={
        **FLAGS,
        "name": {"required": True, "help": "alexnet or vgg16 (a key of the profile's imagenet)"},
        "data": {
            "type": Path,
            "default": None,
            "help": "ImageNet (default: $EFFML_DATA_ROOT/imagenet)",
        },
    },
    track=_config,
    distributed=_join,
)
def main(ctx: StageContext) -> None:
    """Prune, quantize and Huffman-code a pretrained ImageNet network (``paper`` profile)."""
    ic = _config(ctx)
    args = ctx.args
    if ic is None:
        if ctx.run is not None:
            ctx.run.set_tags({"status": "not run"})  # recorded, so every stage shows in MLflow
        if ctx.is_main:
            reason = "needs ImageNet; runs at the paper profile"
            status = {"status": "not run", "profile": ctx.profile, "reason": reason}
            write_json(status, args.out / "status.json")
        ctx.finish(
            {},
            summary=f"{args.name}: not run at the {ctx.profile} profile "
            "(needs ImageNet and GPUs; see the vgg analogue)",
        )
        return
    device = ctx.dist.device
    train = _subset(
        build_dataset("imagenet", "train", root=args.data, resolution=ic.resolution),
        ic.train_subset,
    )
    val = _subset(
        build_dataset("imagenet", "val", root=args.data, resolution=ic.resolution), ic.val_subset
    )
    arch = {"name": ic.model, "kwargs": {}}
    model = create_model(ic.model, weights=ic.weights).to(device)
    original_bytes = dense_bytes(model)
    ref = _evaluate(model, val)
    pruned = iterative_prune(
        model,
        ic.pruning,
        steps=ic.steps,
        retrain=ic.retrain,
        train_data=train,
        eval_data=val,
        checkpoint_dir=args.checkpoints / "prune",
        hooks=[ctx.epoch_logger()],
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
        hooks=[ctx.epoch_logger()],
    )
    if not ctx.is_main:
        return
    model = model.cpu()
    file_meta = {"network": args.name, "profile": ctx.profile}
    codec = encode(
        model, quant, args.out / "model.dcmp", index_bits=ic.index_bits, arch=arch, meta=file_meta
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
    final = _evaluate(decoded.to(device), val)
    save_model(model, args.out / "model.safetensors", arch=arch, extra={"profile": ctx.profile})
    save_masks(pruned.masks, args.out / "masks.safetensors")
    ctx.save_config(ic, args.out / "config.json")
    rows = storage_rows(codec, [name for name, _ in model.named_modules()])
    storage = write_json(
        {"rows": rows, "codec": codec.to_dict(), "codec_pq": codec_pq.to_dict()},
        args.out / "storage.json",
    )
    p = f"{args.name}/imagenet"
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
    ctx.finish(
        metrics,
        artifacts=[storage],
        summary=f"{args.name}: {metrics[f'{p}/original_mb']:.1f} MB -> "
        f"{metrics[f'{p}/size_mb']:.2f} MB, "
        f"top-1 error {ref['error']:.2f}% -> {final['error']:.2f}%",
    )


if __name__ == "__main__":
    raise SystemExit(main())
