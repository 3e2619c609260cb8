"""Stage ``spatten_lm@<row>``: the GPT-style decoder SpAtten's decoder experiments run on.

Row ``verses`` (the default profile): the house's decoder-only Transformer (``common.models.transformer.DecoderLM``, attention in
every layer) trained on the English verses of the Bible (both translations, the training
chapters of ``prepare_bible``) cut into blocks of ``block_tokens`` tokens, so that it reads
passages as long as the prompts it is scored on; a SentencePiece model trained on the same text.
The GPT-2 rows (the paper profile): the user's GPT-2 checkpoint (:mod:`papers.spatten.gpt2`) with
its tokenizer, fine-tuned on the row's corpus unless its ``train`` is null, under ``torchrun``.

Outputs in ``--out``: ``tokenizer/`` (house decoder), ``model.safetensors`` (+ its JSON); the
metrics JSON (test perplexity on blocks) and the per-epoch history CSV. Interrupt it at any time:
it resumes.
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
from common.train.distributed import barrier, init_distributed
from common.train.tasks import TokenTask
from papers.spatten.config import LMConfig, SpattenProfile, prefix, user_path
from papers.spatten.evaluate import not_run
from papers.spatten.gpt2 import GPT2LM, HFTokenizer

FLAGS = {
    **STAGE_FLAGS,
    "name": {"required": True, "help": "a row of the profile's lms (verses, gpt2_wikitext2, ...)"},
}


def corpus(cfg: LMConfig, data: Path) -> Path:
    """Where a row's text files are: the prepared verses, or the GPT-2 row's ``root``."""
    if cfg.checkpoint is None:
        return Path(data)
    return user_path(cfg.root or "")


def build(arch: dict):
    """For :func:`common.checkpoint.load_model`: the house decoder or GPT-2."""
    if arch["name"] == "spatten_gpt2":
        return GPT2LM(**arch["kwargs"])
    return create_model(arch["name"], **arch["kwargs"])


def lm_device(ctx: StageContext) -> str:
    cfg = ctx.config.row("lms", ctx.args.name)
    return cfg.train.device if cfg is not None and cfg.train is not None else "cpu"


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
    name="spatten_lm@{name}",
    config=SpattenProfile,
    flags=["name", "data", "out", "checkpoints", "metrics", "history"],
    catalogue=FLAGS,
    track=lambda ctx: ctx.config.row("lms", ctx.args.name),
    distributed=lambda ctx: init_distributed(lm_device(ctx)),
)
def main(ctx: StageContext) -> None:
    """Train (or load and fine-tune) a decoder and test its perplexity."""
    args = ctx.args
    cfg = ctx.config.row("lms", args.name)
    if cfg is None:
        not_run(ctx)
        return
    out, root = Path(args.out), corpus(cfg, args.data)
    if cfg.checkpoint is None:
        if ctx.is_main:
            train_tokenizer(
                read_lines(args.data, "train"), out / "tokenizer", vocab_size=cfg.vocab_size
            )
        if ctx.dist is not None:
            barrier(ctx.dist)  # the other ranks wait for rank 0's tokenizer
        tok = Tokenizer.load(out / "tokenizer")
    else:
        tok = HFTokenizer(cfg.checkpoint)

    def split(which: str, subset: int | None = None):
        return build_dataset("lm_text", which, root=root, pattern=cfg.pattern, tokenizer=tok,
                             block_tokens=cfg.block_tokens, subset=subset)  # fmt: skip

    if cfg.checkpoint is None:
        a = arch(cfg, tok.vocab_size)
        model = create_model(a["name"], **a["kwargs"])
    else:
        model = GPT2LM.from_pretrained(cfg.checkpoint)
        a = model.arch()
    history: list[dict] = []
    if cfg.train is not None:
        train, valid = split("train", cfg.train_subset), split("valid")
        ctx.seed(cfg.train.seed)
        task = TokenTask(
            max_tokens=cfg.max_tokens, eval_max_tokens=4 * cfg.max_tokens, forward=lm_forward
        )
        history = Trainer(
            model, cfg.train, train_data=train, eval_data=valid, checkpoint_dir=args.checkpoints,
            task=task, hooks=[ctx.epoch_logger()], fingerprint_extra={"arch": a},
            dist_context=ctx.dist,
        ).fit().history  # fmt: skip
    if not ctx.is_main:
        return  # rank 0 tests and writes
    save_model(model, out / "model.safetensors", arch=a)
    test = perplexity(model, split("test"), forward=lm_forward, max_tokens=4 * cfg.max_tokens)
    q = prefix(args.name)
    metrics = {
        f"{q}/lm_test_ppl": test["ppl"],
        f"{q}/lm_test_tokens": test["tokens"],
        f"{q}/lm_train_seconds": sum(r["epoch_seconds"] for r in history),
        f"time/lm_{args.name}": ctx.seconds(),
    }
    ctx.finish(
        metrics,
        artifacts=[ctx.save_config(cfg, out / "config.json")],
        history=history,
        summary=f"{args.name}: test perplexity {test['ppl']:.2f} on blocks of {cfg.block_tokens} tokens",
    )


if __name__ == "__main__":
    raise SystemExit(main())
