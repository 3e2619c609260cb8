"""Stage ``spatten_lm``: the GPT-style decoder SpAtten's decoder experiments run on.

The house's decoder-only Transformer (``common.models.transformer.DecoderLM``, attention in
every layer) trained on the English verses of the Bible (both translations, the training
chapters of ``prepare_bible``) cut into blocks of ``lm.block_tokens`` tokens, so that it reads
passages as long as the prompts it is scored on; a SentencePiece model trained on the same text.

Outputs in ``--out``: ``tokenizer/``, ``model.safetensors`` (+ its JSON); the metrics JSON (test
perplexity on blocks) and the per-epoch history CSV. Interrupt it at any time: it resumes.
"""

from __future__ import annotations

from pathlib import Path

from common.checkpoint import save_model
from common.data import build_dataset
from common.models import create_model
from common.stage import STAGE_FLAGS, StageContext, stage
from common.text.corpus import read_lines
from common.text.evaluate import perplexity
from common.text.tokenizer import Tokenizer, train_tokenizer
from common.train import Trainer
from common.train.tasks import TokenTask
from papers.spatten.config import SpattenProfile

PATTERN = "lm_{split}.txt"  # the prepare_bible stage's English verses, one a line


def lm_forward(model, batch):
    return model(batch.inputs)


def arch(cfg, vocab_size: int) -> dict:
    return {
        "name": "transformer_lm",
        "kwargs": {
            "vocab_size": vocab_size, "dim": cfg.dim, "layers": cfg.layers, "heads": cfg.heads,
            "ffn_dim": round(cfg.ffn_ratio * cfg.dim), "mixer": "attention",
            "dropout": cfg.dropout, "max_positions": 512,
        },
    }  # fmt: skip


@stage(
    section="spatten",
    name="spatten_lm",
    config=SpattenProfile,
    flags=["data", "out", "checkpoints", "metrics", "history"],
    catalogue=STAGE_FLAGS,
    track=lambda ctx: ctx.config.lm,
)
def main(ctx: StageContext) -> None:
    """Train the decoder on the English verses and test its perplexity."""
    cfg, args = ctx.config.lm, ctx.args
    out = Path(args.out)
    train_tokenizer(read_lines(args.data, "train"), out / "tokenizer", vocab_size=cfg.vocab_size)
    tok = Tokenizer.load(out / "tokenizer")

    def split(which: str, subset: int | None = None):
        return build_dataset("lm_text", which, root=args.data, pattern=PATTERN, tokenizer=tok,
                             block_tokens=cfg.block_tokens, subset=subset)  # fmt: skip

    train, valid = split("train", cfg.train_subset), split("valid")
    ctx.seed(cfg.train.seed)
    a = arch(cfg, tok.vocab_size)
    model = create_model(a["name"], **a["kwargs"])
    task = TokenTask(
        max_tokens=cfg.max_tokens, eval_max_tokens=4 * cfg.max_tokens, forward=lm_forward
    )
    result = Trainer(
        model, cfg.train, train_data=train, eval_data=valid, checkpoint_dir=args.checkpoints,
        task=task, hooks=[ctx.epoch_logger()], fingerprint_extra={"arch": a},
    ).fit()  # fmt: skip
    save_model(model, out / "model.safetensors", arch=a)
    test = perplexity(model, split("test"), forward=lm_forward, max_tokens=4 * cfg.max_tokens)
    metrics = {
        "lm/test_ppl": test["ppl"],
        "lm/test_tokens": test["tokens"],
        "lm/train_blocks": float(len(train)),
        "lm/train_seconds": sum(r["epoch_seconds"] for r in result.history),
        "time/lm": ctx.seconds(),
    }
    ctx.finish(
        metrics,
        artifacts=[ctx.save_config(cfg, out / "config.json")],
        history=result.history,
        summary=f"decoder: test perplexity {test['ppl']:.2f} on blocks of {cfg.block_tokens} tokens",
    )


if __name__ == "__main__":
    raise SystemExit(main())
