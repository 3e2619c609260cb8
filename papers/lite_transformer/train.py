"""Stage ``lite_transformer_train@<model>``: train one network of the profile and test it.

A translation model is scored on its corpus's test split by beam search (the paper's test
script: beam 4, length penalty 0.6) with sacreBLEU and the tokenized BLEU (or ROUGE-L for a
summarization corpus); its per-sentence BLEU statistics are kept for the bootstrap. A language
model is scored by test perplexity. A model the profile sets to null (the paper-only rows at the
default profile) is recorded as not run.

Outputs in ``--out``: ``model.safetensors`` (+ its JSON), ``config.json``, and for translation
``hypotheses.txt`` and ``bleu_stats.npy``; the flat metrics JSON and the per-epoch history CSV.
Interrupt it at any time: training resumes from its last checkpoint. Under ``torchrun``
(``python -m common.launch --nproc N``) training runs on N processes and rank 0 tests.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from common.checkpoint import save_model
from common.config import ConfigError
from common.io import atomic_path, write_json
from common.measure import count_parameters
from common.models.transformer import mult_adds
from common.stage import STAGE_FLAGS, StageContext, stage
from common.text.bleu import corpus_stats, sacrebleu_score, tokenized_bleu
from common.text.evaluate import perplexity, translate_dataset
from common.text.rouge import rouge_l
from common.text.tokenizer import Tokenizer
from common.train import Trainer, init_distributed
from common.train.tasks import TokenTask
from papers.lite_transformer.config import LiteTransformerProfile
from papers.lite_transformer.data import load_split, tokenizer_dir
from papers.lite_transformer.models import build, forward_fn, resolve_dim

FLAGS = {
    **STAGE_FLAGS,
    "name": {"required": True, "help": "a key of the profile's models"},
    "tokenizer": {"type": Path, "required": True, "help": "the tokenizer stage's folder"},
}


@stage(
    section="lite_transformer",
    name="lite_transformer_train@{name}",
    config=LiteTransformerProfile,
    flags=["name", "data", "tokenizer", "out", "checkpoints", "metrics", "history"],
    catalogue=FLAGS,
    track=lambda ctx: ctx.entry("models"),
    distributed=lambda ctx: init_distributed(_device(ctx)),
)
def main(ctx: StageContext) -> None:
    """Train a network of the profile (``--name``) and test it."""
    cfg, args, ev, profile = ctx.entry("models"), ctx.args, ctx.config.evaluation, ctx.config
    name, out = args.name, Path(args.out)
    if cfg is None:
        _not_run(ctx)
        return
    corpus = profile.corpora[cfg.corpus]
    tok = Tokenizer.load(tokenizer_dir(args.tokenizer, cfg.corpus))

    def split(which: str, **kw):
        return load_split(
            profile, cfg.corpus, cfg.task, which, bible=args.data, tokenizer=tok, **kw
        )

    train = split("train", max_tokens=cfg.max_length, subset=cfg.train_subset)
    if len(train) == 0:
        raise ConfigError(
            f"models.{name}: no training example of corpus {cfg.corpus!r} fits max_length "
            f"{cfg.max_length}: raise it (or the corpus's truncate_source / block_tokens)"
        )
    valid = split("valid")
    ctx.seed(cfg.train.seed)
    model, arch = build(cfg, tok.vocab_size, resolve_dim(profile.active, name))
    forward = forward_fn(cfg.task)
    task = TokenTask(
        max_tokens=cfg.max_tokens, eval_max_tokens=4 * cfg.max_tokens, forward=forward,
        update_freq=cfg.update_freq,
    )  # fmt: skip
    result = Trainer(
        model,
        cfg.train,
        train_data=train,
        eval_data=valid,
        checkpoint_dir=args.checkpoints,
        task=task,
        hooks=[ctx.epoch_logger()],
        fingerprint_extra={"arch": arch, "task": cfg.task},
        dist_context=ctx.dist,
    ).fit()
    if not ctx.is_main:
        return  # rank 0 tests and writes
    save_model(model, out / "model.safetensors", arch=arch)
    madds = mult_adds(model)
    metrics = {
        f"{name}/dim": float(arch["kwargs"]["dim"]),
        f"{name}/mult_adds": float(madds["layers"]),
        f"{name}/mult_adds_total": float(madds["total"]),
        f"{name}/params": float(count_parameters(model) - model.embed.weight.numel()),
        f"{name}/params_total": float(count_parameters(model)),
        f"{name}/train_seconds": sum(r["epoch_seconds"] for r in result.history),
        f"{name}/train_tokens": float(sum(len(t) + 1 for t in train.targets)),
        f"{name}/valid_ppl": result.final.get("eval_ppl", float("nan")),
    }
    artifacts = [ctx.save_config(cfg, out / "config.json")]
    test = split("test", subset=ev.test_subset)
    if cfg.task == "translation":
        start = time.perf_counter()
        hyps = translate_dataset(
            model, test, tok.decode, beam=ev.beam, length_penalty=ev.length_penalty,
            batch_sentences=ev.batch_sentences,
        )  # fmt: skip
        metrics[f"{name}/decode_seconds"] = time.perf_counter() - start
        refs = test.targets_text
        stats = corpus_stats(hyps, refs)
        with atomic_path(out / "hypotheses.txt") as tmp:
            tmp.write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
        with atomic_path(out / "bleu_stats.npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, stats)
        metrics[f"{name}/bleu"] = tokenized_bleu(hyps, refs)
        metrics[f"{name}/sacrebleu"] = sacrebleu_score(hyps, refs)
        metrics[f"{name}/test_sentences"] = float(len(refs))
        summary = f"{name}: BLEU {metrics[f'{name}/bleu']:.2f} (sacreBLEU {metrics[f'{name}/sacrebleu']:.2f})"
        if corpus.metric == "rouge_l":
            metrics[f"{name}/rouge_l"] = rouge_l(hyps, refs)
            summary = f"{name}: ROUGE-L {metrics[f'{name}/rouge_l']:.2f}"
        artifacts.append(out / "hypotheses.txt")
    else:
        scores = perplexity(model, test, forward=forward, max_tokens=4 * cfg.max_tokens)
        metrics[f"{name}/test_ppl"] = scores["ppl"]
        metrics[f"{name}/test_tokens"] = scores["tokens"]
        summary = f"{name}: test perplexity {scores['ppl']:.2f}"
    metrics[f"time/train_{name}"] = ctx.seconds()
    ctx.finish(
        metrics,
        artifacts=artifacts,
        history=result.history,
        summary=summary + f", {madds['layers'] / 1e6:.1f}M Mult-Adds",
    )


def _device(ctx: StageContext) -> str:
    cfg = ctx.entry("models")
    return "cpu" if cfg is None else cfg.train.device


def _not_run(ctx: StageContext) -> None:
    """A model the profile sets to null: recorded (status file, MLflow tag), not trained."""
    reason = (
        "set to null in this profile (the paper-only rows need the paper's corpora: "
        "papers/lite_transformer/README.md)"
    )
    if ctx.run is not None:
        ctx.run.set_tags({"status": "not run"})
    write_json(
        {"status": "not run", "profile": ctx.profile, "reason": reason},
        Path(ctx.args.out) / "status.json",
    )
    ctx.finish(
        {}, history=[], summary=f"{ctx.args.name}: not run at the {ctx.profile} profile: {reason}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
