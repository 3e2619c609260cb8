"""Stage ``once_for_all_scratch``: the networks OFA is compared with, trained from scratch.

* **A MobileNetV3 family.** MobileNetV3-Large's block pattern expressed in the OFA space (its
  kernel sizes, expand ratios rounded to the space's {3, 4, 6}, and depths 2-3-4-2-3 per stage;
  no squeeze-and-excitation or h-swish, as the space has none), at several width multipliers of
  the space's width and the largest resolution: the paper's hand-designed baseline (Table 1,
  Fig. 1), scaled like the supernet.
* **The searched architectures** of the MAC targets, as standalone networks from random weights:
  the paper's question "is the OFA sub-network as good as training that architecture alone?".

Every network gets the same budget, ``baseline.train`` (by default the schedule that trained the
full network, i.e. one ordinary training run), and the seconds it took are recorded: the cost of
one more deployment target without OFA. Each network checkpoints every epoch; an interrupted
stage resumes at the network and epoch where it stopped.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from common.config import to_dict
from common.io import write_json
from common.ofa import OFAMobileNetV3Config
from common.ofa.efficiency import arch_macs, arch_peak_sram, measure_arch_latency
from common.ofa.supernet import build_static_subnet, subnet_spec, zero_init_residual_
from common.ofa.training import Arch, ResizeInput
from common.seed import seed_everything
from common.stage import StageContext
from common.train import TrainConfig, Trainer, evaluate_classifier
from common.train.trainer import TrainResult
from papers.once_for_all.mobilenetv3 import family_space, mbv3_arch
from papers.once_for_all.stage import (
    Splits,
    load_splits,
    loader,
    ofa_stage,
    read_json,
    save_subnet,
    stage_seconds,
)


def train_from_scratch(
    net_space: OFAMobileNetV3Config,
    arch: Arch,
    train_cfg: TrainConfig,
    splits: Splits,
    checkpoints: Path,
    *,
    name: str,
    memory: torch.memory_format,
) -> tuple[torch.nn.Module, ResizeInput, TrainResult]:
    """Train sub-network ``arch`` of ``net_space`` alone from random weights (seeded by
    ``train_cfg.seed``), checkpointing in ``checkpoints``; returns the network, the network
    behind its input resize, and the loop's result."""
    seed_everything(train_cfg.seed)
    net = zero_init_residual_(build_static_subnet(subnet_spec(net_space, arch)))
    net = net.to(memory_format=memory)
    wrapped = ResizeInput(net, int(arch["r"]))
    result = Trainer(
        wrapped,
        train_cfg,
        train_data=splits.train,
        eval_data=splits.test,
        checkpoint_dir=checkpoints,
        fingerprint_extra={"name": name, "space": net_space.to_dict(), "arch": arch},
    ).fit()
    return net, wrapped, result


@ofa_stage(
    name="once_for_all_scratch",
    flags=["search", "data", "out", "checkpoints", "metrics"],
    track=lambda ctx: ctx.config.baseline,
)
def main(ctx: StageContext) -> None:
    cfg, args = ctx.config, ctx.args
    train_cfg = cfg.scratch_train
    splits = load_splits(cfg, args.data)
    space = OFAMobileNetV3Config.from_dict(
        {**cfg.space.to_dict(), "num_classes": splits.num_classes}
    )
    searched = read_json(
        args.search / "results.json", fix="run `dvc repro once_for_all_search` first"
    )
    jobs: list[tuple[str, str, OFAMobileNetV3Config, Arch]] = []
    for w in cfg.baseline.family_widths:
        jobs.append((f"mbv3_w{w:g}", "mobilenetv3", family_space(space, w), mbv3_arch(space)))
    for name, row in searched["targets"].items():
        if row.get("matches_family") is not None:
            jobs.append((f"searched_{name}", "searched", space, row["arch"]))
    test = loader(splits.test, train_cfg.eval_batch_size)
    memory = torch.channels_last if cfg.data.channels_last else torch.contiguous_format
    results: dict[str, dict] = {}
    metrics: dict[str, float] = {}
    spent = 0.0  # seconds this invocation spent training (less when it resumed)
    for name, kind, net_space, arch in jobs:
        t_fit = time.perf_counter()
        net, wrapped, result = train_from_scratch(
            net_space, arch, train_cfg, splits, args.checkpoints / name, name=name, memory=memory
        )
        spent += time.perf_counter() - t_fit
        r = int(arch["r"])
        acc = evaluate_classifier(wrapped, test)["accuracy"]
        row = {
            "name": name,
            "kind": kind,
            "width_mult": net_space.width_mult,
            "arch": arch,
            "resolution": r,
            "accuracy": acc,
            "macs": arch_macs(net_space, arch),
            "latency_ms_measured": measure_arch_latency(
                net_space, arch, threads=cfg.latency.threads
            ),
            "sram_kb": arch_peak_sram(net_space, arch) / 1000.0,
            "train_seconds": sum(h["epoch_seconds"] for h in result.history),
            "steps": train_cfg.steps,
            "epochs": train_cfg.epochs,
        }
        results[name] = row
        save_subnet(
            net.to(memory_format=torch.contiguous_format),
            args.out / name,
            net_space,
            arch,
            trained="from scratch",
            train_config=to_dict(train_cfg),
        )
        for key in ("accuracy", "macs", "latency_ms_measured", "sram_kb", "train_seconds"):
            metrics[f"scratch/{name}/{key}"] = float(row[key])
        print(
            f"{name}: from scratch {acc:.2f}% at {row['macs'] / 1e6:.2f}M MACs "
            f"({row['train_seconds']:.0f}s)"
        )
    secs = [r_["train_seconds"] for r_ in results.values()]
    metrics["scratch/mean_train_seconds"] = sum(secs) / len(secs)
    # a resumed run counts the epochs it resumed with the time they took when they ran
    metrics["time/scratch"] = stage_seconds(ctx.started, sum(secs), spent)
    write_json({"networks": results, "train": to_dict(train_cfg)}, args.out / "results.json")
    ctx.finish(metrics)


if __name__ == "__main__":
    raise SystemExit(main())
