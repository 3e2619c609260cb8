"""Stage ``lite_transformer_compress``: the paper's compression chain on the largest Lite
Transformer, with the Deep Compression transforms of ``common/compress``.

1. **baseline**: the trained model, every tensor float32;
2. **+ quant**: k-means weight sharing at ``bits`` (8) for every linear layer and the (tied)
   embedding, no pruning: fixed-width codes plus a codebook per layer;
3. **+ quant + pruning**: fine-grained magnitude pruning with per-layer densities from a
   sensitivity scan (each layer pruned alone to each density in ``densities``; a layer takes the
   lowest density whose validation loss rises by at most ``sensitivity_drop`` nats per token),
   fine-tuning with the masks held, then weight sharing again; pruned layers are stored in the
   sparse relative-index format. The same file Huffman-coded is reported beside it.

Every size is the byte count of the file written (``<out>/<step>.dcmp``, readable with
:func:`common.compress.read_compressed`), and every step is scored by BLEU on the test set as the
training stage scores it. Fine-tuning checkpoints into ``--checkpoints`` and resumes.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
from torch import nn

from common.checkpoint import load_model
from common.compress import (
    KMeansQuantConfig,
    MagnitudePruneConfig,
    MaskHook,
    bake_,
    kmeans_quantize_,
    prune_,
    sensitivity_scan,
    shared_state,
    write_compressed,
)
from common.compress.select import select_layers
from common.config import ConfigError
from common.io import write_json
from common.models.transformer import TokenEmbedding
from common.stage import STAGE_FLAGS, StageContext, stage
from common.text.bleu import tokenized_bleu
from common.text.evaluate import perplexity, translate_dataset
from common.text.tokenizer import Tokenizer
from common.train import Trainer
from common.train.tasks import TokenTask
from papers.lite_transformer.config import LiteTransformerProfile
from papers.lite_transformer.data import load_split, tokenizer_dir
from papers.lite_transformer.models import forward_fn

FLAGS = {
    **STAGE_FLAGS,
    "name": {"required": True, "help": "the model of the profile being compressed"},
    "baseline": {"type": Path, "required": True, "help": "its training stage's folder"},
    "tokenizer": {"type": Path, "required": True, "help": "the tokenizer stage's folder"},
}


def compressible(module: nn.Module, fqn: str) -> bool:
    """Linear layers and the token embedding (which is also the output projection)."""
    return isinstance(module, (nn.Linear, TokenEmbedding))


@stage(
    section="lite_transformer",
    name="lite_transformer_compress",
    config=LiteTransformerProfile,
    flags=["name", "baseline", "data", "tokenizer", "out", "checkpoints", "metrics"],
    catalogue=FLAGS,
    track=lambda ctx: ctx.config.compress,
)
def main(ctx: StageContext) -> None:
    """Quantize, then prune and quantize, the largest Lite Transformer; size and BLEU at each step."""
    cfg, ev, args = ctx.config.compress, ctx.config.evaluation, ctx.args
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_cfg = ctx.entry("models", args.name)
    if model_cfg is None or model_cfg.task != "translation":
        raise ConfigError(
            f"{args.name} is not a translation model run at the {ctx.profile} profile: "
            "compress one that is (the stage's --name)"
        )
    tok = Tokenizer.load(tokenizer_dir(args.tokenizer, model_cfg.corpus))
    model, meta = load_model(Path(args.baseline) / "model.safetensors")
    arch = meta["arch"]
    forward = forward_fn("translation")

    def split(which: str, **kw):
        return load_split(
            ctx.config, model_cfg.corpus, "translation", which, bible=args.data, tokenizer=tok, **kw
        )

    test = split("test", subset=ev.test_subset)
    valid = split("valid", subset=cfg.valid_subset)

    def bleu(m: nn.Module) -> float:
        hyps = translate_dataset(
            m, test, tok.decode, beam=ev.beam, length_penalty=ev.length_penalty,
            batch_sentences=ev.batch_sentences, progress=False,
        )  # fmt: skip
        return tokenized_bleu(hyps, test.targets_text)

    def valid_nll(m: nn.Module) -> float:
        return perplexity(m, valid, forward=forward)["nll"]

    steps: dict[str, dict] = {}
    report = write_compressed(model, out / "baseline.dcmp", shared={}, index_bits=0, arch=arch)
    steps["baseline"] = {"bytes": report.file_bytes, "bleu": bleu(model)}
    print(f"baseline: {report.file_bytes / 1e6:.2f} MB, BLEU {steps['baseline']['bleu']:.2f}")

    # 2. weight sharing alone
    quant_cfg = KMeansQuantConfig(conv_bits=cfg.bits, fc_bits=cfg.bits)
    q = copy.deepcopy(model)
    # Nothing is pruned yet: every weight is a survivor (the embedding's zero padding row too).
    dense = {
        fqn: torch.ones_like(m.weight, dtype=torch.bool)
        for fqn, m in select_layers(q, compressible)
    }
    qreport = kmeans_quantize_(q, quant_cfg, filter_fn=compressible, masks=dense)
    bits = {r.name: r.bits for r in qreport.layers}
    shared = shared_state(q, bits)
    bake_(q)
    report = write_compressed(
        q, out / "quant.dcmp", shared=shared, index_bits=0, arch=arch, use_huffman=False
    )
    steps["quant"] = {"bytes": report.file_bytes, "bleu": bleu(q)}
    print(
        f"+ quant {cfg.bits} bits: {report.file_bytes / 1e6:.2f} MB, BLEU {steps['quant']['bleu']:.2f}"
    )

    # 3. sensitivity-driven pruning, fine-tuning, weight sharing again
    start = time.perf_counter()
    base_nll = valid_nll(model)
    scan = sensitivity_scan(model, valid_nll, list(cfg.densities), filter_fn=compressible)
    densities = {}
    for layer, curve in scan.items():
        ok = [d for d, nll in curve if nll - base_nll <= cfg.sensitivity_drop]
        densities[layer] = min(ok) if ok else 1.0
    scan_seconds = time.perf_counter() - start
    pruned = copy.deepcopy(model)
    masks, preport = prune_(
        pruned, MagnitudePruneConfig("density", 1.0, densities), filter_fn=compressible
    )
    train = split("train", max_tokens=model_cfg.max_length, subset=model_cfg.train_subset)
    Trainer(
        pruned,
        cfg.finetune,
        train_data=train,
        eval_data=valid,
        checkpoint_dir=args.checkpoints,
        task=TokenTask(max_tokens=model_cfg.max_tokens, forward=forward),
        hooks=[MaskHook(masks), ctx.epoch_logger()],
        fingerprint_extra={"compress": "finetune", "densities": densities},
    ).fit()
    steps["pruned_finetuned"] = {"bleu": bleu(pruned), "density": preport.density}
    qreport = kmeans_quantize_(pruned, quant_cfg, filter_fn=compressible, masks=masks)
    bits = {r.name: r.bits for r in qreport.layers}
    shared = shared_state(pruned, bits)
    bake_(pruned)
    report = write_compressed(
        pruned, out / "quant_prune.dcmp", shared=shared, index_bits=cfg.index_bits, arch=arch,
        use_huffman=False,
    )  # fmt: skip
    huff = write_compressed(
        pruned, out / "quant_prune_huffman.dcmp", shared=shared, index_bits=cfg.index_bits,
        arch=arch, use_huffman=True,
    )  # fmt: skip
    steps["quant_prune"] = {"bytes": report.file_bytes, "bleu": bleu(pruned)}
    steps["quant_prune_huffman"] = {"bytes": huff.file_bytes}
    print(
        f"+ quant + pruning (density {preport.density:.2f}): {report.file_bytes / 1e6:.2f} MB, "
        f"BLEU {steps['quant_prune']['bleu']:.2f}"
    )
    write_json(
        {"densities": densities, "scan": scan, "base_valid_nll": base_nll, "steps": steps},
        out / "compression.json",
    )
    p = "compress"
    metrics = {
        f"{p}/baseline_bytes": float(steps["baseline"]["bytes"]),
        f"{p}/quant_bytes": float(steps["quant"]["bytes"]),
        f"{p}/quant_prune_bytes": float(steps["quant_prune"]["bytes"]),
        f"{p}/quant_prune_huffman_bytes": float(huff.file_bytes),
        f"{p}/baseline_bleu": steps["baseline"]["bleu"],
        f"{p}/quant_bleu": steps["quant"]["bleu"],
        f"{p}/pruned_finetuned_bleu": steps["pruned_finetuned"]["bleu"],
        f"{p}/quant_prune_bleu": steps["quant_prune"]["bleu"],
        f"{p}/density": preport.density,
        f"{p}/bits": float(cfg.bits),
        f"{p}/scan_seconds": scan_seconds,
    }
    metrics["time/compress"] = ctx.seconds()
    ctx.finish(
        metrics,
        artifacts=[out / "compression.json"],
        summary=f"{steps['baseline']['bytes'] / 1e6:.2f} MB -> {steps['quant']['bytes'] / 1e6:.2f} "
        f"-> {steps['quant_prune']['bytes'] / 1e6:.2f} MB "
        f"({steps['baseline']['bytes'] / steps['quant_prune']['bytes']:.1f}x)",
    )


if __name__ == "__main__":
    raise SystemExit(main())
