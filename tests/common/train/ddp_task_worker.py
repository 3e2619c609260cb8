"""Worker for test_ddp.py, launched by torchrun: one task kind of task_worker.py under DDP."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from common.train.distributed import cleanup
from tests.common.train.task_worker import KINDS


def main() -> None:
    kind, out = sys.argv[1], Path(sys.argv[2])
    trainer = KINDS[kind](out / "ckpt", [])
    result = trainer.fit()
    ctx = trainer.ctx
    tensors = [trainer.model.state_dict()]
    tensors += [state for state in trainer.task.state_dict().values()]
    flat = torch.cat([v.double().flatten() for s in tensors for v in s.values()])
    (out / f"rank{ctx.rank}.json").write_text(
        json.dumps(
            {
                "world_size": ctx.world_size,
                "ddp": type(trainer.ddp_model).__name__,
                "sum": float(flat.sum()),
                "sq": float(flat.square().sum()),
                "steps": trainer.step,
                "history": result.history,
            }
        )
    )
    cleanup(ctx)


if __name__ == "__main__":
    main()
