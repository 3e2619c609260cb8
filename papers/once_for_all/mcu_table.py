"""Stage ``once_for_all_mcu_table``: the Cortex-M7 instruction lookup table of the trained
supernet (the MCU counterpart of the latency table of Section 3.4).

The paper predicts a sub-network's latency on a device as the sum of its layers' entries in a
table measured on that device. Here the device is the int8 MCU engine (``common/mcu``) on an
emulated STM32F746 Cortex-M7, where instructions are counted exactly: ``build_archs``
sub-networks of the trained supernet (chosen from random ones to cover many distinct operators)
are extracted with their weights (BN recalibrated), converted to int8, generated as
TinyEngine-style C, cross-compiled at -O2 and run once with the per-operator profile; the table
holds every operator signature seen (kind, kernel, stride, activation, shapes), see
:mod:`common.ofa.mcu_cost` for why that key and why an unlimited per-channel code budget.
``validate_archs`` uniformly random sub-networks are then measured the same way and compared
with the table's prediction (mean and worst relative error, rank correlation, and how many of
their operators the table did not hold). The search's ``mcu_minstr`` targets use the table
(millions of instructions; at 216 MHz and an assumed IPC of 1 that is a latency *estimate* in
ms of instructions / 216e3, not a measurement).

Instruction counts do not depend on the machine that emulates them, only on the code, the
compiler and the weights. Without the Arm toolchain the stage stops with the command that
installs it.
"""

from __future__ import annotations

from tqdm.auto import tqdm

from common.config import to_dict
from common.mcu import toolchain
from common.ofa.efficiency import random_archs
from common.ofa.mcu_cost import (
    McuInstructionTable,
    covering_archs,
    measure_subnet_instructions,
    validate_mcu_table,
)
from common.ofa.training import extreme_archs, full_space
from common.seed import derive_seed
from common.stage import StageContext
from papers.once_for_all.stage import load_splits, load_supernet, ofa_stage


@ofa_stage(
    name="once_for_all_mcu_table",
    flags=["supernet", "data", "out", "metrics"],
    track=lambda ctx: ctx.config.mcu_table,
)
def main(ctx: StageContext) -> None:
    toolchain.require((*toolchain.BUILD_TOOLS, "arm-none-eabi-addr2line"))
    cfg, args = ctx.config, ctx.args
    mc = cfg.mcu_table
    supernet, _ = load_supernet(args.supernet)
    space = supernet.config
    splits = load_splits(cfg, args.data)
    # The first calibration images (one or more batches, cut to the configured count).
    calib, left = [], mc.calibration_images
    for x in splits.calibration:
        if left <= 0:
            break
        calib.append(x[:left].float())
        left -= len(calib[-1])
    # The table is built from sub-networks that cover many operator signatures (its
    # prediction is exact for operators it holds); it is checked on uniformly random ones, drawn
    # from their own seed so they do not depend on how many build it.
    archs = [
        *covering_archs(space, mc.build_archs, seed=derive_seed(mc.seed, "mcu_table/build")),
        *random_archs(space, mc.validate_archs, seed=derive_seed(mc.seed, "mcu_table/validate")),
    ]
    measured = []
    for arch in tqdm(archs, desc="MCU table", unit="sub-network", disable=None, leave=False):
        measured.append(measure_subnet_instructions(supernet, arch, calib))
    build, held_out = measured[: mc.build_archs], measured[mc.build_archs :]
    table = McuInstructionTable.build(space, build)
    check = validate_mcu_table(table, held_out)
    extremes = extreme_archs(space, full_space(space))
    table.reset_counts()
    span = {k: table.predict(a) for k, a in extremes.items()}
    table.meta = {
        "profile": ctx.profile,
        "config": to_dict(mc),
        "validation": check,
        "spread": table.spread(),
        "measurements": {
            "build": [m.to_dict() for m in build],
            "validate": [m.to_dict() for m in held_out],
        },
    }
    table.save(args.out)
    build_seconds = sum(m.seconds for m in build)
    metrics = {
        "mcu_table/entries": float(len(table.entries)),
        "mcu_table/build_archs": float(len(build)),
        "mcu_table/validate_archs": float(len(held_out)),
        "mcu_table/mean_rel_error": check["mean_rel_error"],
        "mcu_table/max_rel_error": check["max_rel_error"],
        "mcu_table/fallback_fraction": check["fallback_fraction"],
        "mcu_table/max_entry_spread": table.spread()["max_rel_spread"],
        "mcu_table/max_net_minstr": span["max"] / 1e6,
        "mcu_table/min_net_minstr": span["min"] / 1e6,
        "mcu_table/measure_seconds": build_seconds / len(build),
        "time/mcu_table": ctx.seconds(),
    }
    if "spearman" in check:
        metrics["mcu_table/spearman"] = check["spearman"]
    ctx.finish(
        metrics,
        artifacts=[args.out],
        summary=f"MCU instruction table: {len(table.entries)} operator entries from {len(build)} "
        f"sub-networks; {len(held_out)} held out: mean error {check['mean_rel_error']:.2f}%, "
        f"worst {check['max_rel_error']:.2f}% ({100 * check['fallback_fraction']:.0f}% of their "
        f"operators not in the table) -> {args.out}",
    )


if __name__ == "__main__":
    raise SystemExit(main())
