"""Worker for test_ddp_ofa.py (launched by torchrun): progressive-shrinking-style training of a
supernet under DDP, several sub-networks per step, each skipping blocks (unused parameters)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from common.config import from_dict
from common.data.fixtures import tiny_array_dataset
from common.ofa.supernet import OFAMobileNetV3, OFAMobileNetV3Config
from common.ofa.training import ElasticChoices, SubnetSampler
from common.train import TrainConfig, Trainer
from common.train.distributed import cleanup


def main() -> None:
    out = Path(sys.argv[1])
    cfg = from_dict(
        TrainConfig,
        {"epochs": 2, "batch_size": 8, "optimizer": {"lr": 0.05}, "device": "cpu", "eval_every": 0},
    )
    torch.manual_seed(0)
    space = OFAMobileNetV3Config(width_mult=0.25, resolution_range=(16, 24), resolution_step=8)
    net = OFAMobileNetV3(space)
    trainer = Trainer(
        net,
        cfg,
        train_data=tiny_array_dataset(32, channels=3, size=24, seed=1),
        hooks=[SubnetSampler(net, ElasticChoices((3, 5, 7), (3, 6), (2, 3, 4), (16, 24)), seed=0)],
        passes_per_step=2,
        find_unused_parameters=True,
        progress=False,
    )
    trainer.fit()
    ctx = trainer.ctx
    w = torch.cat([p.detach().flatten() for p in net.parameters()]).double()
    (out / f"rank{ctx.rank}.json").write_text(
        json.dumps({"rank": ctx.rank, "sum": float(w.sum()), "sq": float(w.square().sum())})
    )
    cleanup(ctx)


if __name__ == "__main__":
    main()
