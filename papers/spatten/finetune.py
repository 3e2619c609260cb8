"""Stage ``spatten_finetune@<task>``: fine-tune the dense encoder (all-MiniLM-L6-v2 at the default
profile) on a task and test it: the reference every pruned network is compared with.

Outputs in ``--out``: ``model.safetensors`` (+ its JSON), ``config.json``, ``predictions.npy``
(test-set correctness per example, for the paired bootstrap); the flat metrics JSON and the
per-epoch history CSV. Interrupt it at any time: it resumes where it stopped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.checkpoint import save_model
from common.io import atomic_path
from common.stage import STAGE_FLAGS, StageContext, stage
from common.train import Trainer
from papers.spatten.config import SpattenProfile
from papers.spatten.data import task_split
from papers.spatten.evaluate import correct
from papers.spatten.models import load_tokenizer, pretrained_classifier

FLAGS = {
    **STAGE_FLAGS,
    "name": {"required": True, "help": "a task of the profile (paraphrase, section)"},
    "raw": {"type": Path, "required": True, "help": "the raw Bible texts (data/bible)"},
}


@stage(
    section="spatten",
    name="spatten_finetune@{name}",
    config=SpattenProfile,
    flags=["name", "data", "raw", "out", "checkpoints", "metrics", "history"],
    catalogue=FLAGS,
    track=lambda ctx: ctx.entry("tasks"),
)
def main(ctx: StageContext) -> None:
    """Fine-tune the dense encoder on a task and test it."""
    cfg, args, profile = ctx.entry("tasks"), ctx.args, ctx.config
    name, out = args.name, Path(args.out)
    tok = load_tokenizer(profile.encoder.checkpoint)

    def split(which: str, subset: int | None):
        return task_split(
            profile, name, which, tok, raw=args.raw, prepared=args.data, subset=subset
        )

    train, valid, test = (
        split("train", cfg.train_subset),
        split("valid", cfg.valid_subset),
        split("test", cfg.test_subset),
    )
    model = pretrained_classifier(profile.encoder.checkpoint, train.num_classes, cfg.train.seed)
    ctx.seed(cfg.train.seed)
    result = Trainer(
        model,
        cfg.train,
        train_data=train,
        eval_data=valid,
        checkpoint_dir=args.checkpoints,
        hooks=[ctx.epoch_logger()],
        fingerprint_extra={"arch": model.arch(), "task": name},
    ).fit()
    save_model(model, out / "model.safetensors", arch=model.arch())
    right = correct(model, test, cfg.train.eval_batch_size)
    with atomic_path(out / "predictions.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, right)
    metrics = {
        f"{name}/dense_test_accuracy": 100.0 * float(right.mean()),
        f"{name}/dense_valid_accuracy": 100.0 - result.final["eval_error"],
        # always answering the most frequent class of the test set: the floor to clear
        f"{name}/majority_accuracy": 100.0
        * float(np.bincount(test.targets.numpy()).max() / len(test)),
        f"{name}/train_examples": float(len(train)),
        f"{name}/test_examples": float(len(test)),
        f"{name}/train_seconds": sum(r["epoch_seconds"] for r in result.history),
        f"time/finetune_{name}": ctx.seconds(),
    }
    ctx.finish(
        metrics,
        artifacts=[ctx.save_config(cfg, out / "config.json")],
        history=result.history,
        summary=f"{name}: dense test accuracy {metrics[f'{name}/dense_test_accuracy']:.2f}% "
        f"({len(test)} examples)",
    )


if __name__ == "__main__":
    raise SystemExit(main())
