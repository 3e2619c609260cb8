"""Stage ``spatten_finetune@<row>``: fine-tune the dense encoder (all-MiniLM-L6-v2 at the default
profile, BERT-base/large at the paper's) on a task and test it: the reference every pruned network
is compared with. Runs under ``torchrun`` (``python -m common.launch``); rank 0 tests and writes.

Outputs in ``--out``: ``model.safetensors`` (+ its JSON), ``config.json``, ``predictions.npy``
(test-set correctness per example, SQuAD: F1, for the paired bootstrap); the flat metrics JSON and the
per-epoch history CSV. Interrupt it at any time: it resumes where it stopped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.checkpoint import save_model
from common.io import atomic_path
from common.stage import STAGE_FLAGS, StageContext, stage
from common.train import ClassificationTask, Trainer
from common.train.distributed import init_distributed
from papers.spatten.config import SpattenProfile
from papers.spatten.data import task_split
from papers.spatten.evaluate import correct, not_run
from papers.spatten.models import load_tokenizer, pretrained_classifier, span_loss

FLAGS = {
    **STAGE_FLAGS,
    "name": {"required": True, "help": "a row of the profile's tasks (paraphrase, base_sst2, ...)"},
    "raw": {"type": Path, "required": True, "help": "the raw Bible texts (data/bible)"},
}


def task_device(ctx: StageContext) -> str:
    task = ctx.config.row("tasks", ctx.args.name)
    return "cpu" if task is None else task.train.device


@stage(
    section="spatten",
    name="spatten_finetune@{name}",
    config=SpattenProfile,
    flags=["name", "data", "raw", "out", "checkpoints", "metrics", "history"],
    catalogue=FLAGS,
    track=lambda ctx: ctx.config.row("tasks", ctx.args.name),
    distributed=lambda ctx: init_distributed(task_device(ctx)),
)
def main(ctx: StageContext) -> None:
    """Fine-tune the dense encoder on a task and test it."""
    cfg, args, profile = ctx.config.row("tasks", ctx.args.name), ctx.args, ctx.config
    name, out = args.name, Path(args.out)
    if cfg is None:
        not_run(ctx)
        return
    checkpoint = profile.encoder_of(name).checkpoint
    tok = load_tokenizer(checkpoint)

    def split(which: str, subset: int | None):
        return task_split(
            profile, name, which, tok, raw=args.raw, prepared=args.data, subset=subset
        )

    train, valid, test = (
        split("train", cfg.train_subset),
        split("valid", cfg.valid_subset),
        split("test", cfg.test_subset),
    )
    span = hasattr(train, "scores")
    model = pretrained_classifier(
        checkpoint, train.num_classes, cfg.train.seed, head="span" if span else "cls"
    )
    ctx.seed(cfg.train.seed)
    result = Trainer(
        model,
        cfg.train,
        train_data=train,
        eval_data=valid,
        checkpoint_dir=args.checkpoints,
        task=ClassificationTask(loss_fn=span_loss if span else None),
        hooks=[ctx.epoch_logger()],
        fingerprint_extra={"arch": model.arch(), "task": name},
        dist_context=ctx.dist,
    ).fit()
    if not ctx.is_main:
        return  # rank 0 tests and writes
    save_model(model, out / "model.safetensors", arch=model.arch())
    right = correct(model, test, cfg.train.eval_batch_size)
    with atomic_path(out / "predictions.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, right)
    examples = len(test.items)
    metrics = {
        f"{name}/dense_test_accuracy": 100.0 * float(right.mean()),
        f"{name}/dense_valid_accuracy": 100.0
        * float(correct(model, valid, cfg.train.eval_batch_size).mean()),
        f"{name}/train_examples": float(len(train.items)),
        f"{name}/test_examples": float(examples),
        f"{name}/train_seconds": sum(r["epoch_seconds"] for r in result.history),
        f"time/finetune_{name}": ctx.seconds(),
    }
    if not span:  # always answering the most frequent class of the test set: the floor to clear
        majority = np.bincount(test.targets.numpy()).max() / len(test)
        metrics[f"{name}/majority_accuracy"] = 100.0 * float(majority)
    ctx.finish(
        metrics,
        artifacts=[ctx.save_config(cfg, out / "config.json")],
        history=result.history,
        summary=f"{name}: dense test {'F1' if span else 'accuracy'} "
        f"{metrics[f'{name}/dense_test_accuracy']:.2f}% ({examples} examples)",
    )


if __name__ == "__main__":
    raise SystemExit(main())
