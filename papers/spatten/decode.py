"""Stage ``spatten_decode@<row>``: SpAtten on a GPT-style decoder (the paper's GPT-2 setting): the
house decoder on the verses, or GPT-2 on the paper's corpora (on ``device``).

Each test passage (``passages`` of them, consecutive test lines) is summarised
(``lm.prompt`` tokens at once), then ``lm.generate`` tokens are generated one at a time
(teacher-forced: the perplexity of those tokens is the score):

1. **Token pruning** in cascade (:class:`~papers.spatten.decoder.DecoderPruning`): the final
   keep fractions of ``lm.token_keep`` in order, keeping the last one before the first whose
   perplexity leaves ``lm.noise`` bootstrap standard deviations (over passages) of the dense
   decoder's; then local value pruning the same way.
2. **Progressive quantization** of the chosen network (K: ``k_msb_bits`` + ``k_lsb_bits``, V:
   ``v_bits``) for every ``tau`` of ``lm.tau``: perplexity, the share of generation steps' heads
   that re-fetch K's LSBs, the traffic; ``tau_operating`` is the operating point.
3. **The KV-cache variant** of the reference repository: a cache of ``start + important +
   recent`` tokens against ``start + recent`` at the same size, for each of ``lm.kv_budgets``.

Outputs in ``--out``: ``curves.json``; the flat metrics JSON.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from common.checkpoint import load_model
from common.io import write_json
from common.stage import STAGE_FLAGS, StageContext, stage
from common.text.corpus import read_lines, read_text
from common.text.tokenizer import Tokenizer
from common.train.distributed import resolve_device
from papers.spatten.config import SpattenProfile, prefix
from papers.spatten.decoder import DecoderPruning, DecodeTrace, KVBudget, PrunedDecoder
from papers.spatten.evaluate import not_run
from papers.spatten.gpt2 import HFTokenizer
from papers.spatten.lm import build, corpus
from papers.spatten.schedule import token_schedule
from papers.spatten.traffic import Bits, decode_traffic

FLAGS = {
    **STAGE_FLAGS,
    "name": {"required": True, "help": "a row of the profile's lms (verses, gpt2_wikitext2, ...)"},
    "lm": {"type": Path, "required": True, "help": "the row's spatten_lm folder"},
}


def passages(lines: list[str], tok: Tokenizer, length: int, count: int) -> list[torch.Tensor]:
    """``count`` windows of ``length`` tokens of the test stream (an EOS after every verse),
    each behind a BOS."""
    stream = [i for t in tok.encode(lines) for i in (*t, tok.eos_id)]
    windows = [stream[i : i + length] for i in range(0, len(stream) - length + 1, length)][:count]
    if len(windows) < count:
        from common.data.checksums import DataError

        raise DataError(
            f"the test text holds {len(windows)} passages of {length} tokens, {count} wanted: "
            "lower passages (or prompt) in the profile"
        )
    return [torch.tensor([tok.bos_id, *w]) for w in windows]


def run(dec, texts, prompt, **kw) -> tuple[np.ndarray, list[DecodeTrace]]:
    """Per passage NLL sums (and count), and the traces."""
    nll, traces = [], []
    for t in texts:
        trace = DecodeTrace()
        total, n = dec.score(t, prompt, trace=trace, **kw)
        nll.append((total, n))
        traces.append(trace)
    return np.array(nll), traces


def ppl(nll: np.ndarray) -> float:
    return math.exp(nll[:, 0].sum() / nll[:, 1].sum())


def ppl_change_std(a: np.ndarray, b: np.ndarray, samples: int, seed: int = 0) -> float:
    """Bootstrap standard deviation (over passages) of the perplexity change a/b - 1, in %."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(samples, len(a)))
    la = a[idx, 0].sum(1) / a[idx, 1].sum(1)
    lb = b[idx, 0].sum(1) / b[idx, 1].sum(1)
    return float(100.0 * np.std(np.exp(la - lb) - 1.0, ddof=1))


@stage(
    section="spatten",
    name="spatten_decode@{name}",
    config=SpattenProfile,
    flags=["name", "data", "lm", "out", "metrics"],
    catalogue=FLAGS,
    track=lambda ctx: ctx.config.row("lms", ctx.args.name),
)
def main(ctx: StageContext) -> None:
    """Cascade token pruning, progressive quantization and the KV budget on the decoder."""
    args = ctx.args
    cfg = ctx.config.row("lms", args.name)
    if cfg is None:
        not_run(ctx)
        return
    tok = (
        HFTokenizer(cfg.checkpoint)
        if cfg.checkpoint
        else Tokenizer.load(Path(args.lm) / "tokenizer")
    )
    device = resolve_device(cfg.device)
    model, _ = load_model(Path(args.lm) / "model.safetensors", build=build)
    dec = PrunedDecoder(model.to(device))
    layers, head_dim = len(dec.layers), dec.head_dim
    if cfg.checkpoint is None:
        lines = read_lines(args.data, "test")
    else:
        lines = read_text(corpus(cfg, args.data), "test", cfg.pattern)
    texts = passages(lines, tok, cfg.prompt + cfg.generate, cfg.passages)
    texts = [t.to(device) for t in texts]
    prompt = 1 + cfg.prompt
    dense, _ = run(dec, texts, prompt)
    base = ppl(dense)
    curves: dict[str, list] = {"token": [], "value": [], "tau": [], "kv_budget": []}

    def judge(p: DecoderPruning, kind: str, keep: float) -> tuple[bool, dict]:
        nll, traces = run(dec, texts, prompt, pruning=p)
        t = decode_traffic(traces, head_dim=head_dim, bits=Bits())
        change = 100.0 * (ppl(nll) / base - 1.0)
        std = ppl_change_std(nll, dense, cfg.bootstrap)
        row = {"keep": keep, "ppl": ppl(nll), "change_pct": change, "std_pct": std,
               "key_reduction": t["dense_rows"] / t["key_rows"],
               "kv_reduction": 2 * t["dense_rows"] / (t["key_rows"] + t["value_rows"])}  # fmt: skip
        ok = change <= cfg.noise * std
        row["accepted"] = bool(ok)
        curves[kind].append(row)
        print(f"  {kind} keep {keep:.2f}: perplexity {row['ppl']:.2f} ({change:+.2f}% +- {std:.2f}%)"
              f"{'' if ok else ', rejected'}", flush=True)  # fmt: skip
        return ok, row

    # As for the encoder: the fractions in order, stopping at the first one rejected (every
    # point is still measured, for the curve).
    chosen, token_final, value_final = DecoderPruning(), 1.0, 1.0
    going = True
    for f in cfg.token_keep:
        trial = replace(chosen, token_keep=token_schedule(layers, f, cfg.protect_tokens))
        ok, _ = judge(trial, "token", f)
        going = going and ok
        if going:
            chosen, token_final = trial, f
    going = True
    for f in cfg.value_keep:
        trial = replace(chosen, value_keep=f)
        ok, _ = judge(trial, "value", f)
        going = going and ok
        if going:
            chosen, value_final = trial, f

    pruned, pruned_traces = run(dec, texts, prompt, pruning=chosen)
    t16 = decode_traffic(pruned_traces, head_dim=head_dim, bits=Bits())
    bits = Bits(k=cfg.k_msb_bits, k_lsb=cfg.k_lsb_bits, v=cfg.v_bits)
    operating: dict[str, float] = {}
    for tau in cfg.tau:
        p = replace(chosen, k_msb_bits=cfg.k_msb_bits, k_lsb_bits=cfg.k_lsb_bits,
                    v_bits=cfg.v_bits, tau=tau)  # fmt: skip
        nll, traces = run(dec, texts, prompt, pruning=p)
        t = decode_traffic(traces, head_dim=head_dim, bits=bits)
        gen = decode_traffic(traces, head_dim=head_dim, bits=bits, generation_only=True)
        row = {"tau": tau, "ppl": ppl(nll), "change_pct": 100.0 * (ppl(nll) / base - 1.0),
               "requant_fraction": gen["requant"] / gen["head_steps"],
               "dram_reduction": t["dense_total"] / t["total"],
               "quant_saving": t16["total"] / t["total"]}  # fmt: skip
        curves["tau"].append(row)
        if tau == cfg.tau_operating:
            operating = {**row, "std_pct": ppl_change_std(nll, dense, cfg.bootstrap)}
    for size in cfg.kv_budgets:
        middle = max(size - cfg.kv_start, 0)
        for kind, budget in (
            ("spatten", KVBudget(cfg.kv_start, middle // 2, middle - middle // 2)),
            ("start_recent", KVBudget(cfg.kv_start, 0, middle)),
        ):
            nll, _ = run(dec, texts, prompt, budget=budget)
            curves["kv_budget"].append({"size": size, "kind": kind, "ppl": ppl(nll)})
    write_json(curves, Path(args.out) / "curves.json")

    q = prefix(args.name)
    metrics = {
        f"{q}/dense_ppl": base,
        f"{q}/pruned_ppl": ppl(pruned),
        f"{q}/ppl_change_pct": 100.0 * (ppl(pruned) / base - 1.0),
        f"{q}/ppl_change_std_pct": ppl_change_std(pruned, dense, cfg.bootstrap),
        f"{q}/token_keep_final": token_final,
        f"{q}/value_keep": value_final,
        f"{q}/token_reduction": t16["dense_rows"] / t16["key_rows"],
        f"{q}/kv_reduction": 2 * t16["dense_rows"] / (t16["key_rows"] + t16["value_rows"]),
        f"{q}/dram_reduction_16bit": t16["dense_total"] / t16["total"],
        f"{q}/quant_ppl": operating.get("ppl", float("nan")),
        f"{q}/quant_ppl_change_pct": operating.get("change_pct", float("nan")),
        f"{q}/quant_ppl_change_std_pct": operating.get("std_pct", float("nan")),
        f"{q}/requant_fraction": operating.get("requant_fraction", float("nan")),
        f"{q}/quant_saving": operating.get("quant_saving", float("nan")),
        f"{q}/dram_reduction": operating.get("dram_reduction", float("nan")),
        f"{q}/passages": float(len(texts)),
        f"{q}/generated_tokens": float(dense[:, 1].sum()),
        f"time/decode_{args.name}": ctx.seconds(),
    }
    for row in curves["kv_budget"]:
        metrics[f"{q}/kv_{row['kind']}_{row['size']}_ppl"] = row["ppl"]
    ctx.finish(
        metrics,
        artifacts=[Path(args.out) / "curves.json"],
        summary=f"{args.name}: perplexity {base:.2f} -> {ppl(pruned):.2f} with tokens x"
        f"{metrics[f'{q}/token_reduction']:.2f}; DRAM x{metrics[f'{q}/dram_reduction']:.1f} with "
        f"progressive quantization (tau {cfg.tau_operating}, "
        f"{100 * metrics[f'{q}/requant_fraction']:.1f}% re-fetches)",
    )


if __name__ == "__main__":
    raise SystemExit(main())
