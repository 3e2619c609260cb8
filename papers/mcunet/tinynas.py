"""Stage ``mcunet_tinynas`` (and ``mcunet_tinynas_tflm``): TinyNAS stage 2, one-shot search in
the chosen space under an engine's memory (MCUNet Section 3.1; :mod:`common.tinynas.search`).
``--engine ours`` searches under our engine's memory (the network ``mcunet_deploy@tinynas``
deploys); ``--engine tflm`` under TF-Lite Micro's plan with the reference kernels' code, in the
space stage 1 chose for that plan (Table 2's TinyNAS x TF-Lite Micro cell). Below, "the budget"
and "the engine's plan" are the chosen engine's.

1. The space stage 1 chose for ``tinynas.search.budget`` (its resolution R and width multiplier
   W, read from ``--space``) becomes a weight-sharing supernet (kernel 3/5/7, expand 3/4/6,
   depth 2/3/4 per stage), trained on the colour digits with the Once-for-All loop: the largest
   network, then all sub-networks at once (``subnets_per_step`` per step, distilled from the
   largest, after sorting the expanded channels by importance).
2. Evolutionary search (:class:`common.ofa.search.EvolutionSearch`) for the best held-out
   accuracy among sub-networks whose peak SRAM (the engine's TinyEngine-style plan) and flash
   (int8 constants + code) fit the budget stage 1 used; no candidate over a constraint can enter
   the population.
3. The winner is extracted, fine-tuned and tested; ``<out>/model.safetensors`` (with its
   architecture and resolution) is what ``mcunet_deploy@tinynas`` deploys bit-exactly.

Every part resumes after an interruption: the two training phases and the fine-tuning from
their checkpoints, the search from its last generation.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from common.checkpoint import save_model
from common.config import ConfigError
from common.data import build_dataset
from common.data.arrays import ArrayDataset
from common.data.checksums import sha256_file
from common.data.loader import build_loader
from common.data.transforms import resize
from common.io import write_json
from common.ofa.efficiency import arch_macs
from common.ofa.search import EvolutionSearch
from common.ofa.shrinking import train_phase
from common.ofa.supernet import OFAMobileNetV3, OFAMobileNetV3Config, subnet_spec
from common.ofa.training import (
    ElasticChoices,
    ResizeInput,
    calibration_batches,
    full_space,
    recalibrate_bn_,
    resize_batch,
    set_arch,
)
from common.seed import derive_seed, seed_everything
from common.stage import StageContext
from common.tinynas.search import EngineConstraints, HoldoutAccuracy
from common.tinynas.space import MemoryBudget, space_config
from common.train import Trainer
from common.train.evaluate import evaluate_classifier
from papers.mcunet.config import ENGINES, SearchConfig, TinyNASConfig
from papers.mcunet.stage import mcunet_stage, stage_result, tinynas_block

SUPERNET_FILE = "supernet.safetensors"


def metric_prefix(engine: str) -> str:
    """The search's metrics prefix: ``tinynas`` for our engine, ``tinynas_<engine>`` otherwise."""
    return "tinynas" if engine == "ours" else f"tinynas_{engine}"


def search_config(ctx: StageContext) -> tuple[TinyNASConfig, SearchConfig]:
    return tinynas_block(ctx, "search")


def chosen_space(
    space_dir: Path, budget: str, engine: str = "ours"
) -> tuple[int, float, MemoryBudget]:
    """Stage 1's choice for ``budget`` under ``engine``'s memory: (resolution, width multiplier,
    the budget it used)."""
    detail = f" with budget {budget!r} for engine {engine!r}"
    with stage_result(space_dir, "mcunet_space", "search-space", detail) as r:
        b = r["budgets"][budget]
        e = b["engines"][engine]
        best = next(s for s in e["spaces"] if s["name"] == e["best"]) if e["best"] else None
        used = MemoryBudget(**b["budget"])
    if best is None:
        raise ConfigError(
            f"no space of tinynas.grid fits budget {budget!r} ({used.sram_kb:.0f} kB SRAM, "
            f"{used.flash_kb:.0f} kB flash) under {ENGINES[engine]}: widen the grid towards "
            "smaller resolutions and widths"
        )
    return int(best["resolution"]), float(best["width_mult"]), used


def _take(ds: ArrayDataset, idx: torch.Tensor) -> ArrayDataset:
    return ArrayDataset(
        ds.images[idx],
        ds.labels[idx],
        mean=ds.mean.flatten().tolist(),
        std=ds.std.flatten().tolist(),
        num_classes=ds.num_classes,
        name=ds.name,
    )


def load_data(s: SearchConfig, data: Path) -> tuple[ArrayDataset, ArrayDataset, ArrayDataset]:
    """Train, held-out and test images (native 32 px). The training images are the table
    networks' (the same ``train_subset`` drawn with the same seed); the held-out images follow
    them in the same permutation, so they are never trained on."""
    full = build_dataset("colour_digits", "train", root=data)
    n = len(full)
    n_train = s.train_subset if s.train_subset is not None else n - s.holdout
    if n_train + s.holdout > n:
        raise ConfigError(
            f"tinynas.search: train_subset ({n_train}) + holdout ({s.holdout}) exceed the "
            f"{n} training images: lower one of them"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(s.seed))
    train = _take(full, perm[:n_train].sort().values)
    holdout = _take(full, perm[n_train : n_train + s.holdout].sort().values)
    test = build_dataset("colour_digits", "test", root=data, subset=s.test_subset, seed=s.seed)
    return train, holdout, test


def holdout_oracle(
    s: SearchConfig,
    net: OFAMobileNetV3,
    train: ArrayDataset,
    holdout: ArrayDataset,
    progress: Any = None,
    calibration: list[torch.Tensor] | None = None,
) -> HoldoutAccuracy:
    """The search's accuracy oracle: a sub-network of ``net`` scored on the held-out images
    after BN recalibration on the training images (both from :func:`load_data`;
    ``calibration``: the batches when already drawn)."""
    if calibration is None:
        calibration = calibration_batches(
            train, images=s.calibration_images, batch_size=s.calibration_batch, seed=s.seed
        )
    return HoldoutAccuracy(
        net,
        calibration=calibration,
        loader=build_loader(holdout, batch_size=s.train.eval_batch_size, shuffle=False),
        progress=progress,
    )


def evolution(
    s: SearchConfig,
    config: OFAMobileNetV3Config,
    oracle: HoldoutAccuracy,
    constraints: EngineConstraints,
) -> EvolutionSearch:
    """The evolutionary search of stage 2 in ``config``'s space: ``oracle``'s accuracy among
    the sub-networks ``constraints`` admit (the same seed and evolution wherever it runs)."""
    return EvolutionSearch(
        config,
        full_space(config),
        predictor=oracle,
        efficiency=constraints,
        limit=1.0,
        evolution=s.evolution,
        seed=derive_seed(s.seed, "tinynas", "search"),
    )


def _length(train: Any, steps: int) -> Any:
    return dataclasses.replace(train, steps=steps, epochs=None)


def train_supernet(
    s: SearchConfig,
    config: OFAMobileNetV3Config,
    train: ArrayDataset,
    holdout: ArrayDataset,
    calibration: list[torch.Tensor],
    checkpoints: Path,
    hooks: tuple = (),
    prefix: str = "tinynas",
) -> tuple[OFAMobileNetV3, dict[str, float]]:
    """The largest network, then every sub-network at once (see the module docstring); metrics
    under ``prefix``."""
    seed_everything(s.seed)
    net = OFAMobileNetV3(config).to(memory_format=torch.channels_last)
    everything = full_space(config)
    largest = ElasticChoices(
        kernel_sizes=(max(everything.kernel_sizes),),
        expand_ratios=(max(everything.expand_ratios),),
        depths=(max(everything.depths),),
        resolutions=everything.resolutions,
    )
    extra = {"space": config.to_dict(), "data": [len(train), len(holdout), s.seed]}
    common = dict(train_data=train, eval_data=holdout, calibration=calibration, hooks=hooks)
    full = train_phase(
        net,
        largest,
        _length(s.train, s.full_steps),
        passes=1,
        seed=derive_seed(s.seed, "tinynas", "full"),
        checkpoint_dir=checkpoints / "full",
        fingerprint_extra={**extra, "phase": "full"},
        **common,
    )
    teacher = copy.deepcopy(net).eval()
    net.sort_channels_()
    joint = train_phase(
        net,
        everything,
        _length(s.train, s.joint_steps),
        passes=s.subnets_per_step,
        seed=derive_seed(s.seed, "tinynas", "joint"),
        checkpoint_dir=checkpoints / "joint",
        teacher=teacher if s.kd_ratio > 0 else None,
        kd_ratio=s.kd_ratio,
        fingerprint_extra={**extra, "phase": "joint", "kd_ratio": s.kd_ratio},
        **common,
    )
    net.set_max_net()
    metrics = {}
    for name, result in (("full", full), ("joint", joint)):
        metrics[f"{prefix}/{name}/train_seconds"] = sum(r["epoch_seconds"] for r in result.history)
        metrics[f"{prefix}/{name}/max_holdout_accuracy"] = result.final["eval_max_accuracy"]
        metrics[f"{prefix}/{name}/min_holdout_accuracy"] = result.final["eval_min_accuracy"]
    metrics[f"{prefix}/joint/subnet_updates"] = float(s.joint_steps * s.subnets_per_step)
    return net.to(memory_format=torch.contiguous_format), metrics


def finetune(
    s: SearchConfig,
    net: OFAMobileNetV3,
    arch: dict[str, Any],
    train: ArrayDataset,
    test: ArrayDataset,
    calibration: list[torch.Tensor],
    checkpoints: Path,
    hooks: tuple = (),
    prefix: str = "tinynas",
) -> tuple[torch.nn.Module, dict[str, float]]:
    """The winner extracted from the supernet: its test accuracy as inherited (BN recalibrated)
    and after fine-tuning."""
    r = int(arch["r"])
    set_arch(net, arch)
    sub = net.get_active_subnet()
    net.set_max_net()
    recalibrate_bn_(sub, (resize_batch(x, r) for x in calibration))
    loader = build_loader(test, batch_size=s.finetune.eval_batch_size, shuffle=False)
    inherited = evaluate_classifier(ResizeInput(sub, r), loader)["accuracy"]
    train.transform = test.transform = resize(r)
    sub = sub.to(memory_format=torch.channels_last)
    result = Trainer(
        sub,
        s.finetune,
        train_data=train,
        eval_data=test,
        checkpoint_dir=checkpoints / "finetune",
        hooks=list(hooks),
        fingerprint_extra={"arch": arch, "phase": "finetune", "data": [len(train), s.seed]},
    ).fit()
    metrics = {
        f"{prefix}/inherited_test_accuracy": inherited,
        f"{prefix}/finetuned_test_accuracy": 100.0 - result.final["eval_error"],
        f"{prefix}/finetune_seconds": sum(h["epoch_seconds"] for h in result.history),
    }
    return sub.to(memory_format=torch.contiguous_format).eval(), metrics


@mcunet_stage(
    name="mcunet_tinynas",
    flags=["space", "engine", "data", "out", "checkpoints", "metrics"],
    track=lambda ctx: search_config(ctx)[1],
)
def main(ctx: StageContext) -> None:
    args = ctx.args
    cfg, s = search_config(ctx)
    t0 = time.perf_counter()
    engine = args.engine
    p = metric_prefix(engine)
    resolution, width, budget = chosen_space(args.space, s.budget, engine)
    train, holdout, test = load_data(s, args.data)
    # stage 1 scored the space with its own head (the paper's 1000 classes at the paper
    # profile); the supernet has the data's
    base = dataclasses.replace(cfg.space, num_classes=train.num_classes)
    config = space_config(base, resolution, width)
    calibration = calibration_batches(
        train, images=s.calibration_images, batch_size=s.calibration_batch, seed=s.seed
    )
    hooks = (ctx.epoch_logger(),)
    net, metrics = train_supernet(
        s, config, train, holdout, calibration, args.checkpoints, hooks=hooks, prefix=p
    )
    args.out.mkdir(parents=True, exist_ok=True)
    supernet_path = save_model(
        net,
        args.out / SUPERNET_FILE,
        arch={"name": "ofa_mobilenet_v3", "config": config.to_dict()},
        extra={
            "profile": ctx.profile,
            "resolution": resolution,
            "width_mult": width,
            "engine": engine,
        },
    )
    # ------------------------------------------------------------------ the search
    constraints = EngineConstraints(config, budget, cfg.memory_models()[engine])
    bar = tqdm(desc="TinyNAS candidates measured", leave=False)
    oracle = holdout_oracle(
        s, net, train, holdout, progress=lambda n: bar.update(n - bar.n), calibration=calibration
    )
    result = evolution(s, config, oracle, constraints).run(
        checkpoint=args.checkpoints / "search.json",
        fingerprint_extra={
            "supernet": sha256_file(supernet_path),
            "budget": dataclasses.asdict(budget),
            "memory": dataclasses.asdict(constraints.memory),
        },
    )
    bar.close()
    arch = result.arch
    if not constraints.satisfied(arch):  # the evolution admits no such candidate
        raise RuntimeError(f"the search returned an arch over a constraint: {arch}")
    costs = constraints.measure(arch)
    # ------------------------------------------------------------------ fine-tune, save
    sub, tuned = finetune(s, net, arch, train, test, calibration, args.checkpoints, hooks, p)
    spec = subnet_spec(config, arch)
    save_model(
        sub,
        args.out / "model.safetensors",
        arch={"name": "ofa_subnet", "spec": spec.to_dict(), "resolution": resolution},
        extra={
            "profile": ctx.profile,
            "resolution": resolution,
            "ofa_arch": arch,
            "engine": engine,
        },
    )
    macs = arch_macs(config, arch)
    summary = {
        "engine": engine,
        "budget_key": s.budget,
        "budget": dataclasses.asdict(budget),
        "space": {"resolution": resolution, "width_mult": width},
        "arch": arch,
        "costs": costs,
        "limits": constraints.limits(),
        "macs": macs,
        "search": {k: v for k, v in result.to_dict().items() if k != "arch"},
        "candidates_measured": len(oracle.cache),
        "blocks": [dataclasses.asdict(b) for b in spec.blocks],
        "spec": spec.to_dict(),
    }
    write_json(summary, args.out / "results.json")
    ctx.save_config(s, args.out / "config.json")
    metrics.update(tuned)
    metrics.update(
        {
            f"{p}/search/resolution": float(resolution),
            f"{p}/search/width_mult": width,
            f"{p}/search/sram_kb": costs["sram_bytes"] / 1024,
            f"{p}/search/flash_kb": costs["flash_bytes"] / 1024,
            f"{p}/search/budget_sram_kb": budget.sram_kb,
            f"{p}/search/budget_flash_kb": budget.flash_kb,
            f"{p}/search/sram_use": costs["sram_bytes"] / budget.sram_bytes,
            f"{p}/search/flash_use": costs["flash_bytes"] / budget.flash_bytes,
            f"{p}/search/mmacs": macs / 1e6,
            f"{p}/search/holdout_accuracy": result.predicted_accuracy,
            f"{p}/search/seconds": result.seconds,
            f"{p}/search/candidates": float(len(oracle.cache)),
            f"{p}/search/depth": float(sum(arch["d"])),
            f"time/{p}": time.perf_counter() - t0,
        }
    )
    ctx.finish(
        metrics,
        summary=(
            f"TinyNAS for {ENGINES[engine]} in w{width:g}-r{resolution}: {sum(arch['d'])} blocks, {macs / 1e6:.1f} MMACs, "
            f"{costs['sram_bytes'] / 1024:.1f}/{budget.sram_kb:.1f} kB SRAM, "
            f"{costs['flash_bytes'] / 1024:.0f}/{budget.flash_kb:.0f} kB flash; test accuracy "
            f"{tuned[f'{p}/inherited_test_accuracy']:.2f}% inherited, "
            f"{tuned[f'{p}/finetuned_test_accuracy']:.2f}% fine-tuned -> {args.out}"
        ),
    )


if __name__ == "__main__":
    raise SystemExit(main())
