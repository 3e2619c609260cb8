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

import argparse

from common.compress import read_compressed
from common.config import save_resolved
from common.io import load_masks, write_history, write_json, write_metrics
from common.tracking import epoch_logger, stage_run
from papers.deep_compression import stage
from papers.deep_compression.method import (
    encode,
    quantize_and_finetune,
    storage_rows,
    tune_index_bits,
)


def run(args: argparse.Namespace) -> dict[str, float]:
    profile, cfg = stage.load_config(args.params)
    comp = stage.network_config(args.params, cfg, "compress", args.name)
    base = stage.network_config(args.params, cfg, "baseline", args.name)
    train, test = stage.datasets(base, args.data)
    model, meta = stage.load_network(args.pruned)
    masks = load_masks(args.pruned / "masks.safetensors")
    original_bytes = stage.dense_bytes(model)
    name = f"deep_compression_compress@{args.name}"
    with stage_run(experiment=stage.EXPERIMENT, stage=name, config=comp, profile=profile) as mlrun:
        quant = quantize_and_finetune(
            model,
            comp.quantization,
            masks=masks,
            finetune=comp.finetune,
            train_data=train,
            eval_data=test,
            checkpoint_dir=args.checkpoints,
            hooks=[epoch_logger(mlrun)],
        )
        error_memory = stage.test_error(model, test)
        file_meta = {"network": args.name, "profile": profile}  # the full config is in config.json
        codec = encode(
            model,
            quant,
            args.out / "model.dcmp",
            index_bits=comp.index_bits,
            arch=meta["arch"],
            meta=file_meta,
        )
        codec_pq = encode(
            model,
            quant,
            args.out / "model_pq.dcmp",
            index_bits=comp.index_bits,
            arch=meta["arch"],
            meta=file_meta,
            use_huffman=False,
        )
        tuned_bits = tune_index_bits(
            model, quant, arch=meta["arch"], scratch=args.out / "scratch.dcmp"
        )
        codec_tuned = encode(
            model,
            quant,
            args.out / "model_tuned.dcmp",
            index_bits=tuned_bits,
            arch=meta["arch"],
            meta=file_meta,
        )
        decoded, _ = read_compressed(args.out / "model.dcmp")
        error_file = stage.test_error(decoded, test)
        order = [name for name, _ in model.named_modules()]
        rows = storage_rows(codec, order)
        rows_pq = storage_rows(codec_pq, order)
        for row, row_pq in zip(rows, rows_pq, strict=True):
            # The fixed-width file measures the P+Q columns; the Huffman file the P+Q+H ones.
            row["rate_pq_pct"] = row_pq["rate_pq_pct"]
        write_json(
            {"rows": rows, "codec": codec.to_dict(), "codec_pq": codec_pq.to_dict()},
            args.out / "storage.json",
        )
        save_resolved(comp, args.out / "config.json", profile=profile, stage=name)
        write_history(quant.history, args.history)
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
        }
        for row in rows:
            for key in (
                "weights",
                "kept_pct",
                "w_bits_pq",
                "w_bits_pqh",
                "idx_bits_pq",
                "idx_bits_pqh",
                "rate_pq_pct",
                "rate_pqh_pct",
            ):
                metrics[f"{p}/{row['layer']}/{key}"] = float(row[key])
        write_metrics(metrics, args.metrics)
        mlrun.log_metrics(metrics)
        mlrun.log_artifact(args.out / "storage.json")
        mlrun.log_artifact(args.out / "model.dcmp")
    if error_file != error_memory:
        raise RuntimeError(
            f"decoded model errs {error_file}% but the in-memory model {error_memory}%: codec bug"
        )
    print(
        f"{args.name}: {codec.file_bytes / 1000:.1f} KB ({metrics[f'{p}/rate']:.1f}x smaller than {original_bytes / 1000:.0f} KB), "
        f"test error {error_file:.2f}%"
    )
    return metrics


def main(argv: list[str] | None = None) -> int:
    return stage.run_main(
        __doc__.split("\n")[0],
        ["name", "pruned", "data", "out", "checkpoints", "metrics", "history"],
        run,
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
