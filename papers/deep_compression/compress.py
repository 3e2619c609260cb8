"""Stage ``deep_compression_compress@<network>``: trained quantization and Huffman coding.

Loads the pruned network and its masks, shares each layer's surviving weights by k-means
(Section 3; linear initialisation by default), fine-tunes the centroids, and writes two files:

* ``model.dcmp``: Huffman-coded (P+Q+H), the compressed model whose size Table 1 reports;
* ``model_pq.dcmp``: the same with fixed-width codes (P+Q), for the tables' P+Q columns;
* ``model_tuned.dcmp``: beyond the paper, Huffman-coded with the relative-index width tuned per
  layer instead of the paper's single width.

The compressed file is then decoded into a fresh model and evaluated: the error reported is the
decoded file's, and it must equal the in-memory model's. ``storage.json`` holds the per-layer
accounting of Tables 2 and 3.
"""

from __future__ import annotations

from common.compress import read_compressed
from common.io import load_masks, write_json
from common.stage import StageContext
from papers.deep_compression.method import (
    encode,
    quantize_and_finetune,
    storage_rows,
    tune_index_bits,
)
from papers.deep_compression.stage import dc_stage, dense_bytes, network_inputs, test_error

# The per-layer columns of Tables 2 and 3 (storage_rows), each also a metric.
STORAGE_COLUMNS = (
    "weights",
    "kept_pct",
    "w_bits_pq",
    "w_bits_pqh",
    "idx_bits_pq",
    "idx_bits_pqh",
    "rate_pq_pct",
    "rate_pqh_pct",
)


@dc_stage(
    name="deep_compression_compress@{name}",
    flags=["name", "pruned", "data", "out", "checkpoints", "metrics", "history"],
    track=lambda ctx: ctx.entry("compress"),
)
def main(ctx: StageContext) -> None:
    """Quantize and Huffman-code a pruned network (``--name``), then decode and evaluate it."""
    cfg = ctx.entry("compress")
    args = ctx.args
    train, test, model, meta = network_inputs(ctx, args.pruned)
    masks = load_masks(args.pruned / "masks.safetensors")
    original_bytes = dense_bytes(model)
    quant = quantize_and_finetune(
        model,
        cfg.quantization,
        masks=masks,
        finetune=cfg.finetune,
        train_data=train,
        eval_data=test,
        checkpoint_dir=args.checkpoints,
        hooks=[ctx.epoch_logger()],
    )
    error_memory = test_error(model, test)
    file_meta = {"network": args.name, "profile": ctx.profile}  # the full config is in config.json

    def write(file: str, index_bits: int | dict[str, int], **kw: object):
        return encode(model, quant, args.out / file, index_bits=index_bits, arch=meta["arch"], **kw)

    codec = write("model.dcmp", cfg.index_bits, meta=file_meta)
    codec_pq = write("model_pq.dcmp", cfg.index_bits, meta=file_meta, use_huffman=False)
    tuned_bits = tune_index_bits(model, quant, arch=meta["arch"], scratch=args.out / "scratch.dcmp")
    codec_tuned = write("model_tuned.dcmp", tuned_bits, meta=file_meta)
    decoded, _ = read_compressed(args.out / "model.dcmp")
    error_file = test_error(decoded, test)
    order = [module for module, _ in model.named_modules()]
    rows = storage_rows(codec, order)
    for row, row_pq in zip(rows, storage_rows(codec_pq, order), strict=True):
        # The fixed-width file measures the P+Q columns; the Huffman file the P+Q+H ones.
        row["rate_pq_pct"] = row_pq["rate_pq_pct"]
    storage = write_json(
        {"rows": rows, "codec": codec.to_dict(), "codec_pq": codec_pq.to_dict()},
        args.out / "storage.json",
    )
    ctx.save_config(cfg, args.out / "config.json")
    p = f"{args.name}/compressed"
    metrics = {
        f"{p}/test_error": error_file,
        f"{p}/test_error_in_memory": error_memory,
        f"{p}/original_kb": original_bytes / 1000,
        f"{p}/size_kb": codec.file_bytes / 1000,
        f"{p}/size_pq_kb": codec_pq.file_bytes / 1000,
        f"{p}/rate": original_bytes / codec.file_bytes,
        f"{p}/rate_pq": original_bytes / codec_pq.file_bytes,
        # The paper's accounting (Tables 2-5): only the compressed layers' weights, indices,
        # codebooks (and here Huffman tables); no biases, header or checksum.
        f"{p}/size_weights_kb": sum(x.pqh_bits for x in codec.layers) / 8000,
        f"{p}/rate_weights": 100 / rows[-1]["rate_pqh_pct"],
        # Beyond the paper: the relative-index width tuned per layer (model_tuned.dcmp).
        f"{p}/tuned/size_kb": codec_tuned.file_bytes / 1000,
        f"{p}/tuned/rate": original_bytes / codec_tuned.file_bytes,
        **{f"{p}/tuned/{k}/index_bits": float(v) for k, v in tuned_bits.items()},
        **{f"{p}/{row['layer']}/{k}": float(row[k]) for row in rows for k in STORAGE_COLUMNS},
    }
    ctx.finish(metrics, artifacts=[storage, args.out / "model.dcmp"], history=quant.history)
    if error_file != error_memory:
        raise RuntimeError(
            f"decoded model errs {error_file}% but the in-memory model {error_memory}%: codec bug"
        )
    print(
        f"{args.name}: {codec.file_bytes / 1000:.1f} KB ({metrics[f'{p}/rate']:.1f}x smaller than "
        f"{original_bytes / 1000:.0f} KB), test error {error_file:.2f}%"
    )


if __name__ == "__main__":
    raise SystemExit(main())
