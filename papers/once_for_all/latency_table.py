"""Stage ``once_for_all_latency_table``: the latency lookup table of this machine (Section 3.4).

The paper measures a latency table per device (Pixel1, Note10, ...) and predicts a sub-network's
latency as the sum of its layers' entries. Here the device is this CPU at batch 1: every distinct
block of the space (stage, first-in-stage or not, kernel, expand ratio) is timed at every input
resolution. The table is then checked against whole-network measurements of random
sub-networks (mean and worst relative error, rank correlation), which the report prints.

Timings belong to the machine that made them: the table is a cached DVC output, so another
machine measures its own when the stage's code or parameters change.
"""

from __future__ import annotations

import time

from tqdm.auto import tqdm

from common.config import to_dict
from common.ofa.efficiency import LatencyTable, random_archs, validate_latency_table
from common.ofa.training import extreme_archs, full_space
from common.seed import derive_seed
from common.stage import StageContext
from papers.once_for_all.stage import ofa_stage


@ofa_stage(
    name="once_for_all_latency_table",
    flags=["out", "metrics"],
    track=lambda ctx: ctx.config.latency,
)
def main(ctx: StageContext) -> None:
    cfg = ctx.config
    lc = cfg.latency
    space = cfg.space
    t0 = time.perf_counter()
    bar = tqdm(desc="latency table", unit="block", disable=None, leave=False)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    table = LatencyTable.build(
        space,
        space.resolution_choices(),
        repeats=lc.repeats,
        threads=lc.threads,
        progress=progress,
    )
    bar.close()
    build_seconds = time.perf_counter() - t0
    archs = random_archs(space, lc.validate_archs, seed=derive_seed(cfg.seed, "latency"))
    check = validate_latency_table(table, archs, repeats=lc.repeats)
    table.meta = {"profile": ctx.profile, "config": to_dict(lc), "validation": check}
    table.save(ctx.args.out)
    extremes = extreme_archs(space, full_space(space))
    metrics = {
        "latency/entries": float(len(table.entries)),
        "latency/build_seconds": build_seconds,
        "latency/mean_abs_pct_error": check["mean_abs_pct_error"],
        "latency/max_abs_pct_error": check["max_abs_pct_error"],
        "latency/spearman": check["spearman"],
        "latency/max_net_ms": table.predict(extremes["max"]),
        "latency/min_net_ms": table.predict(extremes["min"]),
        "time/latency_table": ctx.seconds(),
    }
    ctx.finish(
        metrics,
        artifacts=[ctx.args.out],
        summary=f"latency table: {len(table.entries)} entries in {build_seconds:.0f}s; "
        f"whole-network check over {len(archs)} sub-networks: mean error "
        f"{check['mean_abs_pct_error']:.1f}% (rank correlation {check['spearman']:.3f}) "
        f"-> {ctx.args.out}",
    )


if __name__ == "__main__":
    raise SystemExit(main())
