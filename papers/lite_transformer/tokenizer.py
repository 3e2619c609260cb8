"""Stage ``lite_transformer_tokenizer``: the joint English/Spanish SentencePiece model.

Trained on the training chapters only (both languages of every pair), with the special ids the
models assume (``pad=0, bos=1, eos=2, unk=3``); the translation and the language models share it.
"""

from __future__ import annotations

from pathlib import Path

from common.stage import STAGE_FLAGS, StageContext, stage
from common.text.corpus import read_pairs
from common.text.tokenizer import Tokenizer, train_tokenizer
from papers.lite_transformer.config import LiteTransformerProfile


@stage(
    section="lite_transformer",
    name="lite_transformer_tokenizer",
    config=LiteTransformerProfile,
    flags=["data", "out", "metrics"],
    catalogue=STAGE_FLAGS,
    track=lambda ctx: ctx.config.tokenizer,
)
def main(ctx: StageContext) -> None:
    """Train the SentencePiece model on the training split."""
    cfg, args = ctx.config.tokenizer, ctx.args
    pairs = read_pairs(args.data, "train")
    texts = [en for _, en, _ in pairs] + [es for _, _, es in pairs]
    train_tokenizer(texts, args.out, vocab_size=cfg.vocab_size, model_type=cfg.model_type)
    tok = Tokenizer.load(args.out)
    en = sum(len(t) for t in tok.encode([e for _, e, _ in pairs]))
    es = sum(len(t) for t in tok.encode([s for _, _, s in pairs]))
    metrics = {
        "tokenizer/vocab_size": float(tok.vocab_size),
        "tokenizer/train_tokens_en": float(en),
        "tokenizer/train_tokens_es": float(es),
        "tokenizer/tokens_per_verse_en": en / len(pairs),
        "tokenizer/tokens_per_verse_es": es / len(pairs),
    }
    metrics["time/tokenizer"] = ctx.seconds()
    ctx.finish(
        metrics,
        artifacts=[Path(args.out) / "tokenizer.json"],
        summary=f"SentencePiece {cfg.model_type}, {tok.vocab_size} pieces, "
        f"{metrics['tokenizer/tokens_per_verse_es']:.1f} tokens per Spanish verse",
    )


if __name__ == "__main__":
    raise SystemExit(main())
