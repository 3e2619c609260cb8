"""Stage ``lite_transformer_analysis``: where the attention looks, and how fast each model runs.

* **Attention distance** (the paper's Fig. "attention weights", panels b/c: LSRA's attention
  branch "specialises in long-range relationships"): for every translation model, the encoder
  self-attention weights (LSRA: its attention branch; the Transformer: its attention) on the first
  ``analysis.sentences`` test sentences, averaged over heads; per layer, the mean distance
  ``sum_ij w_ij |i - j|`` over real (non-padding) query positions, in tokens. One sentence's maps
  are saved for the report's figure.
* **Latency** (the paper reports Mult-Adds only): batch-1 CPU greedy decoding of
  ``analysis.latency_sentences`` test sentences, the median over ``latency_repeats`` runs of
  milliseconds per sentence; for the language models, the median milliseconds of a forward pass
  over 30 tokens. Timings share the machine with whatever else runs: read them as ratios.
* **BLEU differences with their noise**: for each ``analysis.comparisons`` pair, the paired
  bootstrap (Koehn 2004) over the test sentences of ``BLEU(A) - BLEU(B)``: its value, standard
  deviation and the share of resamples A wins; and the ratio of their mean attention distances
  with its bootstrap standard deviation over the analysed sentences. The distance of uniform
  attention (per corpus) is the reference for "long" and "short".
* **FFN share**: the share of a model's layer Mult-Adds spent in feed-forward networks for a
  30-token sentence (the paper's argument for flattening the FFN).
* **Copy baseline**: the BLEU of returning the source unchanged (per corpus), the floor every
  model must clear.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch

from common.checkpoint import load_model
from common.data.tokens import pad_stack
from common.io import atomic_path
from common.measure import count_macs, measure_latency
from common.stage import STAGE_FLAGS, StageContext, stage
from common.text.bleu import paired_bootstrap, tokenized_bleu
from common.text.tokenizer import UNK, Tokenizer
from papers.lite_transformer.config import LiteTransformerProfile
from papers.lite_transformer.data import load_split, tokenizer_dir

FLAGS = {
    **STAGE_FLAGS,
    "tokenizer": {"type": Path, "required": True, "help": "the tokenizer stage's folder"},
    "runs": {"type": Path, "required": True, "help": "the training stages' parent folder"},
}


@torch.inference_mode()
def attention_distance(model: torch.nn.Module, source: torch.Tensor) -> tuple[np.ndarray, list]:
    """Mean attention distance (tokens) per sentence and encoder layer, ``(B, layers)``, and the
    weights of sentence 0 per layer."""
    _, mask, weights = model.encode(source, need_weights=True)
    real = (~mask).float()  # (B, S)
    pos = torch.arange(source.shape[1], dtype=torch.float)
    dist = (pos[:, None] - pos[None, :]).abs()  # (S, S)
    per_layer = []
    for w in weights:  # (B, S, S), rows sum to 1 over real keys
        per_query = (w * dist).sum(-1)  # (B, S)
        per_layer.append((per_query * real).sum(1) / real.sum(1))
    n0 = int(real[0].sum())
    return torch.stack(per_layer, 1).numpy(), [w[0, :n0, :n0].numpy() for w in weights]


def uniform_distance(source: torch.Tensor, pad_id: int) -> float:
    """The mean distance if every query attended uniformly to every real key (the reference for
    "long" or "short" range)."""
    out = []
    for row in source:
        n = int(row.ne(pad_id).sum())
        pos = torch.arange(n, dtype=torch.float)
        out.append(float((pos[:, None] - pos[None, :]).abs().mean()))
    return float(np.mean(out))


def ratio_bootstrap(
    a: np.ndarray, b: np.ndarray, samples: int, seed: int = 0
) -> tuple[float, float]:
    """``mean(a) / mean(b)`` over paired sentences and its bootstrap standard deviation."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(samples, len(a)))
    return float(a.mean() / b.mean()), float(np.std(a[idx].mean(1) / b[idx].mean(1), ddof=1))


def decode_latency(model, sentences: list[torch.Tensor], tok: Tokenizer, repeats: int) -> float:
    """Median over repeats of the mean milliseconds per sentence, greedy, batch 1."""
    runs = []
    model.translate(sentences[0][None], bos=tok.bos_id, eos=tok.eos_id, beam=1)  # warm-up
    for _ in range(repeats):
        start = time.perf_counter()
        for s in sentences:
            model.translate(s[None], bos=tok.bos_id, eos=tok.eos_id, beam=1)
        runs.append((time.perf_counter() - start) * 1e3 / len(sentences))
    return statistics.median(runs)


def ffn_share(model: torch.nn.Module, tokens: int = 30) -> float:
    """Share of the layers' Mult-Adds in FFNs (``*.ffn.*`` modules), output projection excluded."""
    x = torch.ones(1, tokens, dtype=torch.long)
    args = (x, x) if hasattr(model, "encode") else (x,)
    per = count_macs(model, *args).per_module
    layers = sum(v for k, v in per.items() if not k.startswith("output"))
    return sum(v for k, v in per.items() if ".ffn." in f"{k}.") / layers


@stage(
    section="lite_transformer",
    name="lite_transformer_analysis",
    config=LiteTransformerProfile,
    flags=["data", "tokenizer", "runs", "out", "metrics"],
    catalogue=FLAGS,
    track=lambda ctx: ctx.config.analysis,
)
def main(ctx: StageContext) -> None:
    """Attention distances and batch-1 latency of every trained model."""
    cfg, args, profile = ctx.config.analysis, ctx.args, ctx.config
    torch.set_num_threads(2)
    metrics: dict[str, float] = {}
    maps: dict[str, np.ndarray] = {}
    distances: dict[str, np.ndarray] = {}
    tests: dict[str, tuple[list[torch.Tensor], torch.Tensor, Tokenizer]] = {}

    def sources_of(corpus: str) -> tuple[list[torch.Tensor], torch.Tensor, Tokenizer]:
        """The analysed test sentences of a translation corpus (with EOS), padded, and its
        tokenizer; loaded once per corpus."""
        if corpus not in tests:
            tok = Tokenizer.load(tokenizer_dir(args.tokenizer, corpus))
            test = load_split(
                profile, corpus, "translation", "test", bible=args.data, tokenizer=tok,
                subset=cfg.sentences,
            )  # fmt: skip
            eos = torch.tensor([tok.eos_id])
            sources = [torch.cat([s, eos]) for s in test.sources]
            tests[corpus] = (sources, pad_stack(sources, tok.pad_id), tok)
        return tests[corpus]

    for name, mcfg in profile.active.items():
        model, _ = load_model(Path(args.runs) / name / "model.safetensors")
        if mcfg.task == "translation":
            sources, batch, tok = sources_of(mcfg.corpus)
            dists, first = attention_distance(model, batch)
            distances[name] = dists.mean(1)
            for i in range(dists.shape[1]):
                metrics[f"{name}/attention_distance_l{i}"] = float(dists[:, i].mean())
                maps[f"{name}/l{i}"] = first[i]
            metrics[f"{name}/attention_distance"] = float(dists.mean())
            metrics[f"{name}/ffn_share"] = ffn_share(model)
            metrics[f"{name}/latency_ms"] = decode_latency(
                model, sources[: cfg.latency_sentences], tok, cfg.latency_repeats
            )
        else:
            x = torch.full((1, 30), UNK + 1, dtype=torch.long)
            metrics[f"{name}/latency_ms"] = measure_latency(
                model, x, warmup=3, repeats=10 * cfg.latency_repeats
            ).median_ms
        print(f"{name}: {metrics[f'{name}/latency_ms']:.1f} ms", flush=True)
    ev = profile.evaluation
    for key, (a, b) in cfg.comparisons.items():
        stats = [np.load(Path(args.runs) / m / "bleu_stats.npy") for m in (a, b)]
        boot = paired_bootstrap(*stats, samples=ev.bootstrap, seed=0)
        metrics.update({f"compare/{key}/{k}": v for k, v in boot.items()})
        ratio, std = ratio_bootstrap(distances[a], distances[b], ev.bootstrap)
        metrics[f"compare/{key}/distance_ratio"], metrics[f"compare/{key}/distance_ratio_std"] = (
            ratio,
            std,
        )
    for corpus, (sources, batch, tok) in tests.items():
        metrics[f"analysis/{corpus}/uniform_distance"] = uniform_distance(batch, tok.pad_id)
        scored = load_split(
            profile, corpus, "translation", "test", bible=args.data, tokenizer=tok,
            subset=ev.test_subset,
        )  # fmt: skip
        metrics[f"baseline/{corpus}/copy_bleu"] = tokenized_bleu(
            scored.sources_text, scored.targets_text
        )
        metrics[f"analysis/{corpus}/sentences"] = float(len(sources))
        metrics[f"analysis/{corpus}/mean_source_tokens"] = float(np.mean([len(s) for s in sources]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "attention_maps.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **maps)
    metrics["time/analysis"] = ctx.seconds()
    ctx.finish(
        metrics,
        summary=f"analysed {len(profile.active)} models on the test sentences of "
        f"{', '.join(tests) or 'no translation corpus'}",
    )


if __name__ == "__main__":
    raise SystemExit(main())
