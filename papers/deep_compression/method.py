"""Deep Compression's three stages, chained (Han, Mao, Dally, ICLR 2016, Figure 1).

1. **Pruning** (Section 2): iterative magnitude pruning with retraining,
   :func:`iterative_prune` on top of :func:`common.compress.prune_`.
2. **Trained quantization** (Section 3): per-layer k-means weight sharing with centroid
   fine-tuning, :func:`quantize_and_finetune` on top of :func:`common.compress.kmeans_quantize_`.
3. **Huffman coding** (Section 4) into the compressed file, :func:`encode` on top of
   :func:`common.compress.write_compressed`, and the per-layer storage table of Tables 2-5
   (:func:`storage_rows`).

Every step trains with the shared loop, so each retraining round checkpoints and resumes.
Deviation: where the paper fine-tunes "until convergence", the rounds here have a fixed number of
epochs from params.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from common.compress import (
    CodecReport,
    KMeansQuantConfig,
    MagnitudePruneConfig,
    MaskHook,
    PruneReport,
    bake_,
    kmeans_quantize_,
    prune_,
    shared_state,
    write_compressed,
)
from common.compress.prune import scaled_config
from common.compress.quantize import SharedLayer
from common.train import TrainConfig, Trainer, TrainHook


@dataclass
class PruneResult:
    masks: dict[str, Tensor]
    report: PruneReport
    history: list[dict[str, float]]


def iterative_prune(
    model: nn.Module,
    pruning: MagnitudePruneConfig,
    *,
    steps: int,
    retrain: TrainConfig | None,
    train_data: Dataset,
    eval_data: Dataset | None,
    checkpoint_dir: Path | None,
    hooks: list[TrainHook] | None = None,
    log: Callable[[str], None] = print,
) -> PruneResult:
    """Prune ``model`` in place to ``pruning``'s targets in ``steps`` prune-and-retrain rounds.

    Round ``i`` prunes to ``i/steps`` of the way (densities ``d^(i/steps)``), keeping what earlier
    rounds pruned, then retrains the survivors with the masks held fixed. Each round's training
    checkpoints under ``checkpoint_dir/step<i>``; an interrupted run resumes in the round it was in.
    """
    masks: dict[str, Tensor] | None = None
    history: list[dict[str, float]] = []
    report: PruneReport | None = None
    for i in range(1, steps + 1):
        masks, report = prune_(model, scaled_config(pruning, i / steps), masks=masks)
        log(f"pruning round {i}/{steps}: {100 * report.density:.2f}% of weights kept")
        if retrain is None:
            continue
        result = Trainer(
            model,
            retrain,
            train_data=train_data,
            eval_data=eval_data,
            checkpoint_dir=checkpoint_dir / f"step{i}" if checkpoint_dir else None,
            hooks=[MaskHook(masks), *(hooks or [])],
            fingerprint_extra={"prune_step": i, "density": report.density},
            log=log,
        ).fit()
        history += [{**rec, "step": float(i)} for rec in result.history]
    assert masks is not None and report is not None
    return PruneResult(masks=masks, report=report, history=history)


@dataclass
class QuantResult:
    shared: dict[str, SharedLayer]
    bits: dict[str, int]
    history: list[dict[str, float]]


def quantize_and_finetune(
    model: nn.Module,
    quantization: KMeansQuantConfig,
    *,
    masks: dict[str, Tensor] | None,
    finetune: TrainConfig | None,
    train_data: Dataset | None = None,
    eval_data: Dataset | None = None,
    checkpoint_dir: Path | None = None,
    hooks: list[TrainHook] | None = None,
    log: Callable[[str], None] = print,
) -> QuantResult:
    """Share weights by k-means, fine-tune the centroids, and bake the model (in place).

    Returns the codes and codebooks the encoder needs; afterwards ``model`` has plain weights
    equal to ``table[codes]``.
    """
    report = kmeans_quantize_(model, quantization, masks=masks)
    bits = {r.name: r.bits for r in report.layers}
    history: list[dict[str, float]] = []
    if finetune is not None:
        result = Trainer(
            model,
            finetune,
            train_data=train_data,
            eval_data=eval_data,
            checkpoint_dir=checkpoint_dir,
            hooks=hooks or [],
            fingerprint_extra={"quantization": str(quantization)},
            log=log,
        ).fit()
        history = result.history
    shared = shared_state(model, bits)
    bake_(model)
    return QuantResult(shared=shared, bits=bits, history=history)


def encode(
    model: nn.Module,
    quant: QuantResult,
    path: Path,
    *,
    index_bits: int,
    arch: dict[str, Any],
    meta: dict[str, Any] | None = None,
    use_huffman: bool = True,
) -> CodecReport:
    """Write the compressed file; its size is the compressed size we report."""
    return write_compressed(
        model,
        path,
        shared=quant.shared,
        index_bits=index_bits,
        arch=arch,
        meta=meta,
        use_huffman=use_huffman,
    )


def storage_rows(codec: CodecReport, order: list[str] | None = None) -> list[dict[str, Any]]:
    """Tables 2-5, per layer and in total, from the encoded streams.

    Columns as in the paper: weights, percentage kept after pruning, weight bits after P+Q and
    after P+Q+H, index bits after P+Q and after P+Q+H, and the compression rate (compressed bits
    over 32-bit dense bits) after P+Q and after P+Q+H. Averages over entries count the filler
    entries too, which are stored like any other. The total row weighs layers by their entries.
    """
    rows = []
    layers = list(codec.layers)
    if order is not None:  # the model's module order instead of the file's (alphabetical) one
        rank = {name: i for i, name in enumerate(order)}
        layers.sort(key=lambda x: rank.get(x.name.removesuffix(".weight"), len(rank)))
    for layer in layers:
        d = layer.to_dict()
        rows.append(
            {
                "layer": layer.name.removesuffix(".weight"),
                "weights": layer.numel,
                "kept_pct": 100 * layer.density,
                "w_bits_pq": layer.bits,
                "w_bits_pqh": d["weight_bits_huffman"],
                "idx_bits_pq": layer.index_bits,
                "idx_bits_pqh": d["index_bits_huffman"],
                "rate_pq_pct": 100 * d["rate_pq"],
                "rate_pqh_pct": 100 * d["rate_pqh"],
            }
        )
    entries = sum(x.entries for x in layers) or 1
    numel = sum(x.numel for x in layers) or 1
    rows.append(
        {
            "layer": "total",
            "weights": numel,
            "kept_pct": 100 * sum(x.kept for x in layers) / numel,
            "w_bits_pq": sum(x.bits * x.entries for x in layers) / entries,
            "w_bits_pqh": sum(x.weight_stream_bits for x in layers) / entries,
            "idx_bits_pq": sum(x.index_bits * x.entries for x in layers) / entries,
            "idx_bits_pqh": sum(x.index_stream_bits for x in layers) / entries,
            "rate_pq_pct": 100 * sum(x.pq_bits for x in layers) / (32 * numel),
            "rate_pqh_pct": 100 * sum(x.pqh_bits for x in layers) / (32 * numel),
        }
    )
    return rows


@torch.no_grad()
def masks_of(model: nn.Module, names: list[str]) -> dict[str, Tensor]:
    """Keep-masks (``weight != 0``) of the named layers of a pruned model read from disk."""
    modules = dict(model.named_modules())
    return {n: modules[n].weight != 0 for n in names}


def tune_index_bits(
    model: nn.Module,
    quant: QuantResult,
    *,
    arch: dict[str, Any],
    scratch: Path,
    candidates: range = range(2, 13),
) -> dict[str, int]:
    """Per layer, the relative-index width that makes its Huffman-coded streams smallest.

    Beyond the paper, which fixes one width per network: a narrow index needs many fillers, a wide
    one a larger code table; with Huffman coding the best width is usually wider than 5 bits.
    """
    best: dict[str, tuple[int, int]] = {}
    for width in candidates:
        codec = encode(model, quant, scratch, index_bits=width, arch=arch)
        for layer in codec.layers:
            fqn = layer.name.removesuffix(".weight")
            if fqn not in best or layer.pqh_bits < best[fqn][0]:
                best[fqn] = (layer.pqh_bits, width)
    scratch.unlink(missing_ok=True)
    return {fqn: width for fqn, (_bits, width) in best.items()}
