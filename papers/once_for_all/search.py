"""Stage ``once_for_all_search``: specialise the trained supernet for every deployment target
(Section 3.4, "train once, specialise for many").

For each target of ``search.targets`` (a limit on MACs, on latency measured on this CPU through
the lookup table, on the MCU engine's peak SRAM, or on millions of Cortex-M7 instructions through
the MCU instruction table), the evolutionary search
(:class:`common.ofa.EvolutionSearch`, the reference's hyper-parameters) finds the sub-network with
the best *predicted* accuracy within the limit. The result is then

1. extracted from the supernet, its BN recalibrated, and tested: OFA's accuracy *without*
   retraining (the paper's "OFA w/ PS");
2. fine-tuned for ``search.finetune`` epochs and tested again (the paper's "#25 / #75");
3. measured: MACs, predicted and measured latency, MCU peak SRAM, predicted Cortex-M7
   instructions (and the latency estimate they give at 216 MHz and an assumed IPC of 1).

The seconds each search takes are recorded: the marginal cost of a new target, to set beside
training a network from scratch. Searches checkpoint every generation and resume; the same seed
gives the same architecture.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import torch

from common.config import to_dict
from common.io import write_json
from common.ofa import EvolutionSearch
from common.ofa.efficiency import LatencyTable, arch_macs, arch_peak_sram, measure_arch_latency
from common.ofa.mcu_cost import McuInstructionTable
from common.ofa.search import SearchError
from common.ofa.training import (
    ResizeInput,
    evaluate_arch,
    extreme_archs,
    full_space,
    recalibrate_bn_,
    resize_batch,
    set_arch,
)
from common.seed import derive_seed
from common.stage import StageContext
from common.train import Trainer, evaluate_classifier
from papers.once_for_all.config import OFAProfile, TargetConfig
from papers.once_for_all.mobilenetv3 import family_space, mbv3_arch
from papers.once_for_all.predictor import PREDICTOR_FILE, load_predictor
from papers.once_for_all.stage import (
    load_splits,
    load_supernet,
    loader,
    ofa_stage,
    read_json,
    save_subnet,
    stage_seconds,
)


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def efficiency_fn(metric: str, space, table: LatencyTable, mcu_table: McuInstructionTable):
    """``arch -> cost`` in the unit of the target's limit."""
    if metric == "macs":
        return lambda a: float(arch_macs(space, a))
    if metric == "latency_ms":
        return table.predict
    if metric == "mcu_minstr":
        return mcu_table.predict_minstr
    if metric == "sram_kb":
        return lambda a: arch_peak_sram(space, a) / 1000.0
    raise ValueError(f"unknown metric {metric!r}")


def all_targets(cfg: OFAProfile, space) -> dict[str, tuple[TargetConfig, float | None]]:
    """The profile's targets, plus one per MobileNetV3 family member with ``match_family``
    (value: the member's width multiplier, None for the others)."""
    out: dict[str, tuple[TargetConfig, float | None]] = {}
    if cfg.search.match_family:
        for w in cfg.baseline.family_widths:
            macs = arch_macs(family_space(space, w), mbv3_arch(space))
            label = f"{macs / 1e6:.2f}M MACs (MobileNetV3 w{w:g})"
            out[f"mbv3_w{w:g}"] = (TargetConfig("macs", float(macs), label), w)
    for name, t in cfg.search.targets.items():
        out[name] = (t, None)
    return out


@ofa_stage(
    name="once_for_all_search",
    flags=[
        "supernet",
        "predictor",
        "latency",
        "mcu-table",
        "data",
        "out",
        "checkpoints",
        "metrics",
    ],
    track=lambda ctx: ctx.config.search,
    errors=(SearchError,),
)
def main(ctx: StageContext) -> None:
    cfg, args = ctx.config, ctx.args
    sc = cfg.search
    # The lookup tables first: a missing or corrupt one stops the stage before any work.
    table = LatencyTable.from_dict(
        read_json(args.latency, fix="run `dvc repro once_for_all_latency_table` first")
    )
    mcu_table = McuInstructionTable.from_dict(
        read_json(args.mcu_table, fix="run `dvc repro once_for_all_mcu_table` first")
    )
    splits = load_splits(cfg, args.data)
    supernet, _ = load_supernet(args.supernet)
    space = supernet.config
    predictor, _ = load_predictor(args.predictor, cfg)
    eval_bs = cfg.phases["full"].train.eval_batch_size
    test = loader(splits.test, eval_bs)
    choices = full_space(space)
    results: dict[str, dict] = {}
    metrics: dict[str, float] = {}
    memory = torch.channels_last if cfg.data.channels_last else torch.contiguous_format
    extremes = extreme_archs(space, choices)
    # seconds of search and fine-tuning: as recorded when the work ran (checkpoints keep
    # them), and as spent by this invocation (less when it resumed from the checkpoints)
    recorded = spent = 0.0
    for name, (target, matches) in all_targets(cfg, space).items():
        cost = efficiency_fn(target.metric, space, table, mcu_table)
        limit = target.limit
        if target.scale == "range":
            lo, hi = cost(extremes["min"]), cost(extremes["max"])
            limit = lo + target.limit * (hi - lo)
        search = EvolutionSearch(
            space,
            choices,
            predictor=predictor,
            efficiency=cost,
            limit=limit,
            evolution=sc.evolution,
            seed=derive_seed(cfg.seed, "search", name),
        )
        extra = {"predictor": _sha(args.predictor / PREDICTOR_FILE), "target": to_dict(target)}
        if target.metric == "latency_ms":
            extra["latency_table"] = _sha(args.latency)
        if target.metric == "mcu_minstr":
            extra["mcu_table"] = _sha(args.mcu_table)
        t_work = time.perf_counter()
        try:
            found = search.run(
                checkpoint=args.checkpoints / f"search_{name}.json", fingerprint_extra=extra
            )
        except SearchError as exc:
            raise SearchError(f"search.targets.{name}: {exc}") from None
        spent += time.perf_counter() - t_work
        arch = found.arch
        t0 = time.perf_counter()
        ofa = evaluate_arch(supernet, arch, calibration=splits.calibration, eval_loader=test)
        r = int(arch["r"])
        set_arch(supernet, arch)
        sub = supernet.get_active_subnet().to(memory_format=memory)
        supernet.set_max_net()
        recalibrate_bn_(sub, (resize_batch(x, r) for x in splits.calibration))
        ft_acc, ft_seconds = None, 0.0
        if sc.finetune is not None:
            ctx.seed(sc.finetune.seed)
            wrapped = ResizeInput(sub, r)
            t_work = time.perf_counter()
            res = Trainer(
                wrapped,
                sc.finetune,
                train_data=splits.train,
                eval_data=splits.test,
                checkpoint_dir=args.checkpoints / f"finetune_{name}",
                fingerprint_extra={"target": name, "arch": arch},
            ).fit()
            spent += time.perf_counter() - t_work
            ft_seconds = sum(h["epoch_seconds"] for h in res.history)
            ft_acc = evaluate_classifier(wrapped, test)["accuracy"]
        save_subnet(
            sub.to(memory_format=torch.contiguous_format),
            args.out / name,
            space,
            arch,
            target=to_dict(target),
            finetuned=sc.finetune is not None,
        )
        latency_measured = measure_arch_latency(space, arch, threads=table.threads)
        minstr = mcu_table.predict_minstr(arch)
        row = {
            "target": name,
            "matches_family": matches,
            "label": target.label or name,
            "metric": target.metric,
            "limit": limit,
            "limit_spec": to_dict(target),
            "arch": arch,
            "resolution": r,
            "predicted_accuracy": found.predicted_accuracy,
            "ofa_accuracy": ofa["accuracy"],
            "finetuned_accuracy": ft_acc,
            "macs": arch_macs(space, arch),
            "latency_ms_table": table.predict(arch),
            "latency_ms_measured": latency_measured,
            "sram_kb": arch_peak_sram(space, arch) / 1000.0,
            "mcu_minstr": minstr,
            # instructions / 216 MHz at an assumed IPC of 1: an estimate, not a measurement
            "mcu_latency_ms_estimate": mcu_table.latency_ms_estimate(minstr * 1e6),
            "constraint_value": found.efficiency,
            "search_seconds": found.seconds,
            "evaluated": found.evaluated,
            "generations": len(found.history),
            "history": found.history,
            "finetune_seconds": ft_seconds,
            "eval_seconds": time.perf_counter() - t0 - ft_seconds,
        }
        recorded += found.seconds + ft_seconds
        results[name] = row
        for key in (
            "predicted_accuracy",
            "ofa_accuracy",
            "macs",
            "latency_ms_table",
            "latency_ms_measured",
            "sram_kb",
            "mcu_minstr",
            "mcu_latency_ms_estimate",
            "constraint_value",
            "limit",
            "search_seconds",
            "finetune_seconds",
            "resolution",
        ):
            metrics[f"search/{name}/{key}"] = float(row[key])
        if ft_acc is not None:
            metrics[f"search/{name}/finetuned_accuracy"] = float(ft_acc)
        print(
            f"{name}: {target.metric} {found.efficiency:.4g} <= {limit:.4g}; predicted "
            f"{found.predicted_accuracy:.2f}%, OFA {ofa['accuracy']:.2f}%"
            + (f", fine-tuned {ft_acc:.2f}%" if ft_acc is not None else "")
            + f" (search {found.seconds:.1f}s)"
        )
    metrics["search/targets"] = float(len(results))
    # a resumed run counts the resumed work with the time it took when it ran
    metrics["time/search"] = stage_seconds(ctx.started, recorded, spent)
    metrics["search/mean_search_seconds"] = sum(
        r_["search_seconds"] for r_ in results.values()
    ) / max(len(results), 1)
    write_json({"targets": results}, args.out / "results.json")
    ctx.finish(metrics)


if __name__ == "__main__":
    raise SystemExit(main())
