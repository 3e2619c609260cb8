"""Stage ``lite_transformer_tokenizer``: a SentencePiece model for each corpus the profile uses.

Each is trained on its corpus's training split only (both languages of a parallel corpus: the
paper shares one dictionary between source and target), with the special ids the models assume
(``pad=0, bos=1, eos=2, unk=3``), into ``<out>/<corpus>/``. At the default profile that is one
joint English/Spanish model of the Bible, which the translation and the language models share.
"""

from __future__ import annotations

from common.stage import STAGE_FLAGS, StageContext, stage
from common.text.tokenizer import Tokenizer, train_tokenizer
from papers.lite_transformer.config import LiteTransformerProfile
from papers.lite_transformer.data import tokenizer_dir, tokenizer_texts


@stage(
    section="lite_transformer",
    name="lite_transformer_tokenizer",
    config=LiteTransformerProfile,
    flags=["data", "out", "metrics"],
    catalogue=STAGE_FLAGS,
    track=lambda ctx: {"tokenizer": ctx.config.tokenizer, "corpora": ctx.config.corpora},
)
def main(ctx: StageContext) -> None:
    """Train the SentencePiece model of every corpus on its training split."""
    cfg, args = ctx.config, ctx.args
    metrics: dict[str, float] = {}
    summary = []
    for corpus in cfg.used_corpora:
        tc = cfg.tokenizer_for(corpus)
        texts = tokenizer_texts(cfg, corpus, args.data)
        out = tokenizer_dir(args.out, corpus)
        train_tokenizer(texts, out, vocab_size=tc.vocab_size, model_type=tc.model_type)
        tok = Tokenizer.load(out)
        tokens = sum(len(t) for t in tok.encode(texts))
        metrics[f"tokenizer/{corpus}/vocab_size"] = float(tok.vocab_size)
        metrics[f"tokenizer/{corpus}/train_sentences"] = float(len(texts))
        metrics[f"tokenizer/{corpus}/tokens_per_sentence"] = tokens / max(len(texts), 1)
        summary.append(
            f"{corpus}: SentencePiece {tc.model_type}, {tok.vocab_size} pieces, "
            f"{tokens / max(len(texts), 1):.1f} tokens per sentence"
        )
    metrics["time/tokenizer"] = ctx.seconds()
    ctx.finish(
        metrics,
        artifacts=[tokenizer_dir(args.out, c) / "tokenizer.json" for c in cfg.used_corpora],
        summary="; ".join(summary),
    )


if __name__ == "__main__":
    raise SystemExit(main())
