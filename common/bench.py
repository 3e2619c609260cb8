"""``make bench``: the shared training loop's throughput beside a bare PyTorch loop.

Both train LeNet-5 on the same MNIST batches (the same loader, seed and optimizer), in the same
process, alternating run by run so that machine noise hits both alike. Each run is one epoch over
a fixed slice of MNIST; the shared loop runs exactly as the stages use it (per-epoch checkpoint,
progress accounting, hooks), minus evaluation, which the bare loop does not do either. The medians
of the repeats are compared; the overhead must stay at or below 10%.

``python -m common.bench [--samples 12800] [--repeats 5] [--batch-size 128] [--max-overhead 0.10]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from common.config import from_dict
from common.data import build_dataset, build_loader
from common.models import create_model
from common.train import TrainConfig, Trainer


def _config(batch_size: int) -> TrainConfig:
    return from_dict(
        TrainConfig,
        {
            "epochs": 1,
            "batch_size": batch_size,
            "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4},
            "schedule": {"name": "constant"},
            "device": "cpu",
            "seed": 0,
        },
    )


def bare_loop(dataset, cfg: TrainConfig) -> float:
    """A textbook PyTorch loop over the same batches; returns seconds."""
    torch.manual_seed(0)
    model = create_model("lenet5")
    opt = torch.optim.SGD(
        model.parameters(),
        lr=cfg.optimizer.lr,
        momentum=cfg.optimizer.momentum,
        weight_decay=cfg.optimizer.weight_decay,
    )
    loader = build_loader(dataset, batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    model.train()
    for x, y in loader:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def shared_loop(dataset, cfg: TrainConfig, ckpt: Path) -> float:
    """The shared :class:`~common.train.Trainer`, checkpointing as in the stages; returns seconds."""
    torch.manual_seed(0)
    for f in ckpt.glob("*"):
        f.unlink()
    trainer = Trainer(
        create_model("lenet5"),
        cfg,
        train_data=dataset,
        checkpoint_dir=ckpt,
        progress=False,
        log=lambda _m: None,
    )
    start = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--samples", type=int, default=12800, help="MNIST training images per run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-overhead", type=float, default=0.10)
    args = parser.parse_args(argv)

    dataset = build_dataset("mnist", "train", subset=args.samples, seed=0)
    cfg = _config(args.batch_size)
    bare, shared = [], []
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp)
        bare_loop(dataset, cfg)  # warm-up: allocator, kernels, lazy imports
        shared_loop(dataset, cfg, ckpt)
        for i in range(args.repeats):
            # Alternate the order so neither loop always runs right after the other.
            if i % 2 == 0:
                bare.append(bare_loop(dataset, cfg))
                shared.append(shared_loop(dataset, cfg, ckpt))
            else:
                shared.append(shared_loop(dataset, cfg, ckpt))
                bare.append(bare_loop(dataset, cfg))
    n = len(dataset)
    tb, ts = statistics.median(bare), statistics.median(shared)
    overhead = ts / tb - 1.0
    print(
        f"LeNet-5 on {n:,} MNIST images per run, batch {args.batch_size}, {torch.get_num_threads()} CPU threads, "
        f"{args.repeats} alternating repeats (medians)"
    )
    print(f"{'loop':<28}{'seconds':>10}{'images/s':>12}")
    print(f"{'bare PyTorch':<28}{tb:>10.3f}{n / tb:>12.0f}")
    print(f"{'shared Trainer':<28}{ts:>10.3f}{n / ts:>12.0f}")
    print(
        f"throughput ratio shared/bare = {tb / ts:.3f}; overhead = {100 * overhead:+.1f}% (limit {100 * args.max_overhead:.0f}%)"
    )
    print(
        "all runs (s): bare "
        + " ".join(f"{t:.3f}" for t in bare)
        + " | shared "
        + " ".join(f"{t:.3f}" for t in shared)
    )
    if overhead > args.max_overhead:
        print("FAIL: the shared loop is slower than the limit allows", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
