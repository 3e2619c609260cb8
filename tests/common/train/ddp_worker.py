"""Worker for test_ddp.py, launched by torchrun: trains with the shared loop and reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from common.config import from_dict
from common.data.fixtures import tiny_array_dataset
from common.models import create_model
from common.train import TrainConfig, Trainer
from common.train.distributed import cleanup


def main() -> None:
    out = Path(sys.argv[1])
    cfg = from_dict(
        TrainConfig,
        {
            "epochs": 3,
            "batch_size": 32,
            "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
            "schedule": {"name": "constant"},
            "device": "cpu",
            "seed": 0,
        },
    )
    torch.manual_seed(0)
    trainer = Trainer(
        create_model("lenet300"),
        cfg,
        train_data=tiny_array_dataset(128, seed=1),
        eval_data=tiny_array_dataset(64, seed=2),
        checkpoint_dir=out / "ckpt",
        progress=False,
    )
    result = trainer.fit()
    ctx = trainer.ctx
    weights = torch.cat([p.detach().flatten() for p in result.model.parameters()])
    (out / f"rank{ctx.rank}.json").write_text(
        json.dumps(
            {
                "rank": ctx.rank,
                "world_size": ctx.world_size,
                "ddp": type(trainer.ddp_model).__name__,
                "weights_sum": float(weights.double().sum()),
                "weights_sq": float(weights.double().square().sum()),
                "history": result.history,
                "steps": trainer.step,
            }
        )
    )
    cleanup(ctx)


if __name__ == "__main__":
    main()
