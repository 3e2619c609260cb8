"""Stage ``spatten_prune@<row>``: SpAtten on a fine-tuned encoder. Runs under ``torchrun``
(``python -m common.launch``): every rank searches (the same result), the fine-tune is data
parallel, rank 0 tests and writes. Accuracy is SQuAD's F1 on its rows.

1. **Search** (validation set): the smallest final keep fraction of tokens, then of heads, then of
   V rows, each with the earlier choices in place, whose accuracy stays within ``prune.noise``
   paired-bootstrap standard deviations of the dense model's ("no accuracy loss", the tolerance
   being the noise of the measurement). K and V are quantized statically to ``k_bits``/``v_bits``.
2. **Curves** (test set) for the report: accuracy against the final token keep fraction, SpAtten's
   cascade (importance accumulated over layers, removed tokens gone for good) beside layer-local
   pruning (each layer's keys chosen from the previous layer's attention alone, tokens coming
   back); accuracy against the head keep fraction.
3. The chosen network is **fine-tuned** with its pruning in the forward pass, then tested: its
   accuracy beside the dense one with the paired-bootstrap noise of the difference, and what it
   ran: tokens, heads and V rows per layer, the DRAM traffic of attention (our counter,
   :mod:`papers.spatten.traffic`, dense 16-bit as the baseline), the multiply-accumulates, and
   batch-1 CPU wall-clock against the dense encoder.
4. The paper's teaser: the tokens of one sentence that each layer keeps.

Outputs in ``--out``: ``search.json`` (every candidate), ``curves.json``, ``example.json``,
``model.safetensors``; the flat metrics JSON.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from common.checkpoint import load_model, save_model
from common.io import write_json
from common.stage import StageContext, stage
from common.train import ClassificationTask, Trainer
from common.train.distributed import init_distributed
from papers.spatten import finetune
from papers.spatten.bert import Pruning, Trace
from papers.spatten.config import SpattenProfile
from papers.spatten.data import task_split
from papers.spatten.evaluate import correct, not_run, paired_std
from papers.spatten.finetune import task_device
from papers.spatten.models import build, load_tokenizer, span_loss
from papers.spatten.schedule import head_schedule, mean_keep, token_schedule
from papers.spatten.traffic import Bits, trace_macs, traces_traffic

FLAGS = {
    **finetune.FLAGS,
    "dense": {"type": Path, "required": True, "help": "the task's spatten_finetune folder"},
}


def measured(model, data, pruning: Pruning | None, batch: int) -> tuple[np.ndarray, list[Trace]]:
    traces: list[Trace] = []
    return correct(model, data, batch, pruning=pruning, traces=traces), traces


def work(traces: list[Trace], model, bits: Bits) -> dict[str, float]:
    """Reductions (dense / pruned) of what the traced forwards ran and fetched."""
    c = model.encoder.config
    heads, head_dim = c.num_attention_heads, c.hidden_size // c.num_attention_heads
    t = traces_traffic(traces, head_dim=head_dim, heads=heads, bits=bits)
    dense16 = traces_traffic(traces, head_dim=head_dim, heads=heads, bits=Bits())
    m = trace_macs(traces, hidden=c.hidden_size, intermediate=c.intermediate_size, heads=heads)
    head_layers = sum(sum(layer.heads) for tr in traces for layer in tr.layers)
    dense_head_layers = sum(heads * len(tr.layers[0].heads) * len(tr.layers) for tr in traces)
    return {
        "token_reduction": t["dense_token_layers"] / t["token_layers"],
        "head_reduction": dense_head_layers / head_layers,
        "value_reduction": t["dense_rows"] / t["value_rows"],
        "key_reduction": t["dense_rows"] / t["key_rows"],
        "compute_reduction": m["dense_macs"] / m["macs"],
        "dram_reduction": t["dense_total"] / t["total"],
        "dram_reduction_16bit": dense16["dense_total"] / dense16["total"],
    }


@torch.inference_mode()
def latency_ms(model, data, pruning: Pruning, sentences: int, repeats: int) -> tuple[float, float]:
    """Milliseconds per sentence, batch 1, on the CPU, of the dense and the ``pruning`` forward:
    the median over ``repeats`` rounds, each timing both in turn (so drift hits both alike)."""
    device = next(model.parameters()).device
    model.cpu().eval()
    xs = [data[i][0][None] for i in range(min(sentences, len(data)))]
    runs: dict[str, list[float]] = {"dense": [], "pruned": []}
    try:
        for r in range(repeats + 1):  # the first round warms up
            for kind, p in (("dense", None), ("pruned", pruning)):
                model.pruning = p
                start = time.perf_counter()
                for x in xs:
                    model(x)
                if r:
                    runs[kind].append((time.perf_counter() - start) * 1e3 / len(xs))
    finally:
        model.pruning = None
        model.to(device)
    return statistics.median(runs["dense"]), statistics.median(runs["pruned"])


@stage(
    section="spatten",
    name="spatten_prune@{name}",
    config=SpattenProfile,
    flags=["name", "data", "raw", "dense", "out", "checkpoints", "metrics"],
    catalogue=FLAGS,
    track=lambda ctx: ctx.config.prune,
    distributed=lambda ctx: init_distributed(task_device(ctx)),
)
def main(ctx: StageContext) -> None:
    """Search, fine-tune and measure SpAtten's pruning of a fine-tuned encoder."""
    cfg, args, profile = ctx.config.prune, ctx.args, ctx.config
    name, out = args.name, Path(args.out)
    task = ctx.config.row("tasks", ctx.args.name)
    if task is None:
        not_run(ctx)
        return
    tok = load_tokenizer(profile.encoder_of(name).checkpoint)

    def split(which: str, subset: int | None):
        return task_split(
            profile, name, which, tok, raw=args.raw, prepared=args.data, subset=subset
        )

    valid, test = split("valid", task.valid_subset), split("test", task.test_subset)
    model, _ = load_model(Path(args.dense) / "model.safetensors", build=build)
    model.to(ctx.dist.device if ctx.dist is not None else "cpu")
    layers = model.encoder.config.num_hidden_layers
    batch = task.train.eval_batch_size
    quant = Pruning(k_msb_bits=cfg.k_bits, v_bits=cfg.v_bits)
    bits = Bits(k=cfg.k_bits or 16, v=cfg.v_bits or 16)

    def tokens(f: float) -> tuple[float, ...]:
        return token_schedule(layers, f, cfg.protect_tokens)

    # 1. search on the validation set
    dense_valid = correct(model, valid, batch)
    search: list[dict] = []

    def accept(p: Pruning, what: str, value: float) -> bool:
        right = correct(model, valid, batch, pruning=p)
        diff = 100.0 * (right.mean() - dense_valid.mean())
        std = paired_std(right, dense_valid, cfg.bootstrap)
        ok = diff >= -cfg.noise * std
        search.append({"what": what, "keep": value, "accuracy": 100.0 * right.mean(),
                       "change": diff, "std": std, "accepted": bool(ok)})  # fmt: skip
        print(f"  {what} keep {value:.2f}: valid accuracy {100 * right.mean():.2f} "
              f"({diff:+.2f} +- {std:.2f}){'' if ok else ', rejected'}", flush=True)  # fmt: skip
        return ok

    chosen = quant
    token_final = head_final = value_final = 1.0
    for f in cfg.token_keep:
        trial = replace(chosen, token_keep=tokens(f))
        if not accept(trial, "token", f):
            break
        chosen, token_final = trial, f
    for f in cfg.head_keep:
        trial = replace(chosen, head_keep=head_schedule(layers, f, cfg.protect_heads))
        if not accept(trial, "head", f):
            break
        chosen, head_final = trial, f
    for f in cfg.value_keep:
        trial = replace(chosen, value_keep=f)
        if not accept(trial, "value", f):
            break
        chosen, value_final = trial, f
    write_json(search, out / "search.json")

    # 2. curves on the test set
    dense_test = correct(model, test, batch)
    curves: dict[str, list] = {"token_cascade": [], "token_local": [], "head": []}
    for f in [1.0, *cfg.token_keep]:
        for kind, p in (
            ("token_cascade", Pruning(token_keep=tokens(f))),
            ("token_local", Pruning(token_keep=tokens(f), cascade=False, accumulate=False)),
        ):
            right, traces = measured(model, test, p, batch)
            w = work(traces, model, Bits())
            curves[kind].append({"keep": f, "accuracy": 100.0 * right.mean(),
                                 "token_reduction": w["token_reduction"],
                                 "key_reduction": w["key_reduction"],
                                 "compute_reduction": w["compute_reduction"]})  # fmt: skip
    for f in [1.0, *cfg.head_keep]:
        right, traces = measured(
            model, test, Pruning(head_keep=head_schedule(layers, f, cfg.protect_heads)), batch
        )
        curves["head"].append({"keep": f, "accuracy": 100.0 * right.mean(),
                               "head_reduction": work(traces, model, Bits())["head_reduction"]})  # fmt: skip
    write_json(curves, out / "curves.json")

    # 3. fine-tune the chosen network with its pruning, then test it
    before = correct(model, test, batch, pruning=chosen)
    train = split("train", task.train_subset)
    model.pruning = chosen
    Trainer(
        model,
        cfg.finetune,
        train_data=train,
        eval_data=valid,
        checkpoint_dir=args.checkpoints,
        task=ClassificationTask(loss_fn=span_loss if model.head == "span" else None),
        hooks=[ctx.epoch_logger()],
        fingerprint_extra={"task": name, "pruning": repr(chosen)},
        dist_context=ctx.dist,
    ).fit()
    model.pruning = None
    if not ctx.is_main:
        return  # rank 0 tests and writes
    save_model(model, out / "model.safetensors", arch=model.arch())
    after, traces = measured(model, test, chosen, batch)
    w = work(traces, model, bits)
    requant = sum(sum(layer.requant_queries) for tr in traces for layer in tr.layers)
    # Wall-clock of what a CPU can skip: the tokens removed and the heads pruned (computed only
    # for the running heads), picked with torch.topk; no simulated quantization, no value pruning
    # (every V row is in the CPU's cache already), floating point throughout.
    on_cpu = Pruning(token_keep=chosen.token_keep, head_keep=chosen.head_keep, engine="torch",
                     skip_heads=True)  # fmt: skip
    dense_ms, pruned_ms = latency_ms(
        model, test, on_cpu, cfg.latency_sentences, cfg.latency_repeats
    )

    # 4. the teaser: which tokens of one sentence each layer keeps
    example = {}
    if name == "section":
        enc = tok([cfg.example], return_tensors="pt")
        x = torch.stack([enc["input_ids"], enc["token_type_ids"]], 1)
        trace = Trace()
        model.eval()
        model.pruning, model.trace = chosen, trace
        with torch.inference_mode():
            label = int(model(x).argmax(-1))
        model.pruning = model.trace = None
        words = tok.convert_ids_to_tokens(enc["input_ids"][0].tolist())
        example = {
            "sentence": cfg.example,
            "label": label,
            "layers": [
                {"tokens": [words[i] for i in layer.kept_positions[0]], "heads": layer.heads[0]}
                for layer in trace.layers
            ],
        }
    write_json(example, out / "example.json")

    p = name
    metrics = {
        f"{p}/pruned_test_accuracy_before_finetune": 100.0 * float(before.mean()),
        f"{p}/pruned_test_accuracy": 100.0 * float(after.mean()),
        f"{p}/accuracy_change": 100.0 * float(after.mean() - dense_test.mean()),
        f"{p}/accuracy_change_std": paired_std(after, dense_test, cfg.bootstrap),
        f"{p}/token_keep_final": token_final,
        f"{p}/token_keep_mean": mean_keep(chosen.token_keep or (1.0,)),
        f"{p}/head_keep_final": head_final,
        f"{p}/value_keep": value_final,
        f"{p}/requant_queries": float(requant),
        f"{p}/latency_dense_ms": dense_ms,
        f"{p}/latency_pruned_ms": pruned_ms,
        f"{p}/speedup": dense_ms / pruned_ms,
        **{f"{p}/{k}": v for k, v in w.items()},
        f"time/prune_{name}": ctx.seconds(),
    }
    ctx.finish(
        metrics,
        artifacts=[out / "search.json", out / "curves.json"],
        summary=f"{name}: tokens x{w['token_reduction']:.2f}, heads x{w['head_reduction']:.2f}, "
        f"DRAM x{w['dram_reduction']:.1f}, accuracy {metrics[f'{p}/pruned_test_accuracy']:.2f} "
        f"(dense {100 * dense_test.mean():.2f}), {dense_ms / pruned_ms:.2f}x faster",
    )


if __name__ == "__main__":
    raise SystemExit(main())
