"""Stage ``once_for_all_ablation``: progressive shrinking against training every sub-network
jointly from the start (Fig. 7 of the paper).

Both supernets (the last progressive-shrinking phase and ``nops``) start from the same full
network and hold the same space; ``nops`` enables every elastic dimension at once instead of one
after the other, with the same distillation and as many sub-network passes (the report prints
both counts). A fixed grid of sub-networks is extracted from each: every combination of
depth D, expand ratio W and kernel size K in ``ablation`` (uniform over the network), at the
largest resolution, as in the paper's figure. Each is recalibrated on the same images and tested
on the test set. The paper: PS is 3.5 points better on average, and at (D=4, W=3, K=3) 74.8% vs
71.5% on ImageNet.
"""

from __future__ import annotations

import itertools

from tqdm.auto import tqdm

from common.io import write_json
from common.ofa.efficiency import arch_macs
from common.ofa.training import evaluate_arch
from common.stage import StageContext
from papers.once_for_all.stage import load_splits, load_supernet, loader, ofa_stage


def grid_name(d: int, w: int, k: int) -> str:
    return f"d{d}_w{w}_k{k}"


@ofa_stage(
    name="once_for_all_ablation",
    flags=["supernet", "nops", "data", "out", "metrics"],
    track=lambda ctx: ctx.config.ablation,
)
def main(ctx: StageContext) -> None:
    cfg, args = ctx.config, ctx.args
    ab = cfg.ablation
    splits = load_splits(cfg, args.data)
    test = loader(splits.test, cfg.phases["full"].train.eval_batch_size)
    nets = {"ps": load_supernet(args.supernet)[0], "nops": load_supernet(args.nops)[0]}
    space = nets["ps"].config
    n_blocks = space.num_stages * max(space.depths)
    r = max(space.resolution_choices())
    grid = list(itertools.product(ab.depths, ab.expand_ratios, ab.kernel_sizes))
    rows = []
    metrics: dict[str, float] = {}
    for d, w, k in tqdm(grid, desc="PS ablation grid", disable=None, leave=False):
        arch = {"ks": [k] * n_blocks, "e": [w] * n_blocks, "d": [d] * space.num_stages, "r": r}
        row = {"name": grid_name(d, w, k), "d": d, "w": w, "k": k, "macs": arch_macs(space, arch)}
        for which, net in nets.items():
            m = evaluate_arch(net, arch, calibration=splits.calibration, eval_loader=test)
            row[which] = m["accuracy"]
            metrics[f"ablation/{row['name']}/{which}_accuracy"] = m["accuracy"]
        row["gain"] = row["ps"] - row["nops"]
        metrics[f"ablation/{row['name']}/gain"] = row["gain"]
        rows.append(row)
    gains = [r_["gain"] for r_ in rows]
    metrics["ablation/mean_gain"] = sum(gains) / len(gains)
    metrics["ablation/min_gain"] = min(gains)
    metrics["ablation/ps_better_count"] = float(sum(g > 0 for g in gains))
    metrics["ablation/grid_size"] = float(len(rows))
    metrics["ablation/resolution"] = float(r)
    ref = grid_name(*ab.reference)
    if f"ablation/{ref}/gain" in metrics:
        metrics["ablation/reference_gain"] = metrics[f"ablation/{ref}/gain"]
        metrics["ablation/reference_ps_accuracy"] = metrics[f"ablation/{ref}/ps_accuracy"]
        metrics["ablation/reference_nops_accuracy"] = metrics[f"ablation/{ref}/nops_accuracy"]
    metrics["time/ablation"] = ctx.seconds()
    write_json({"resolution": r, "test_images": len(splits.test), "rows": rows}, args.out)
    ctx.finish(
        metrics,
        summary=f"PS ablation over {len(rows)} sub-networks: mean gain "
        f"{metrics['ablation/mean_gain']:+.2f} points (PS better on "
        f"{int(metrics['ablation/ps_better_count'])}) -> {args.out}",
    )


if __name__ == "__main__":
    raise SystemExit(main())
