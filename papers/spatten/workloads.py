"""Stage ``spatten_workloads``: our traffic counter run on the schedules SpAtten's authors released.

``data/spatten/workloads`` holds the per-iteration, per-layer, per-head fetch counts of their
GPT-2 small and medium runs on WikiText-2 (a 993-token summarization, then 31 generated tokens).
:func:`papers.spatten.traffic.workload_traffic` counts them exactly as it counts our own runs; the
fractions of K and V rows fetched, and the bytes against a dense 16-bit fetch, are the closest
thing to the paper's DRAM numbers that can be read today (its per-benchmark figures could not).

Outputs in ``--out``: ``per_layer.json`` (K and V rows fetched per layer, summed over heads, at
the summarization step and the last generation step); the flat metrics JSON.
"""

from __future__ import annotations

from pathlib import Path

from common.io import write_json
from common.stage import STAGE_FLAGS, StageContext, stage
from papers.spatten.traffic import read_workload, workload_traffic

WORKLOADS = {
    "gpt2_small": "summary-gpt2-small-wikitext2-per8.csv.gz",
    "gpt2_medium": "summary-gpt2-medium-wikitext2-per0-hp-step5+dedic+glob_p+local_p+hp+topk+quant.csv.gz",
}


@stage(
    section="spatten",
    name="spatten_workloads",
    config=None,
    flags=["data", "out", "metrics"],
    catalogue=STAGE_FLAGS,
)
def main(ctx: StageContext) -> None:
    """Count the traffic of the released GPT-2 workloads."""
    args = ctx.args
    metrics: dict[str, float] = {}
    per_layer: dict[str, dict] = {}
    for name, file in WORKLOADS.items():
        rows, config = read_workload(Path(args.data) / file)
        t = workload_traffic(rows)
        p = f"workload/{name}"
        metrics[f"{p}/k_fraction"] = t["key_rows"] / t["dense_rows"]
        metrics[f"{p}/v_fraction"] = t["value_rows"] / t["dense_rows"]
        metrics[f"{p}/kv_fraction"] = (t["key_rows"] + t["value_rows"]) / (2 * t["dense_rows"])
        metrics[f"{p}/kv_byte_reduction"] = (t["dense_k"] + t["dense_v"]) / (t["k"] + t["v"])
        metrics[f"{p}/dram_reduction"] = t["dense_total"] / t["total"]
        metrics[f"{p}/requant_fraction"] = t["requant_heads"] / t["heads"]
        iterations = sorted({int(r["iteration_id"]) for r in rows})
        layers = sorted({int(r["layer_id"]) for r in rows})
        per_layer[name] = {"config": config}
        for label, it in (("summarization", iterations[0]), ("last_step", iterations[-1])):
            sel = [r for r in rows if int(r["iteration_id"]) == it]
            per_layer[name][label] = {
                "length": int(sel[0]["sentence_length_L"]),
                "keys": [
                    sum(int(r["key_fetch_num"]) for r in sel if int(r["layer_id"]) == k)
                    for k in layers
                ],
                "values": [
                    sum(int(r["value_fetch_num"]) for r in sel if int(r["layer_id"]) == k)
                    for k in layers
                ],
                "heads": [sum(1 for r in sel if int(r["layer_id"]) == k) for k in layers],
            }
    write_json(per_layer, Path(args.out) / "per_layer.json")
    metrics["time/workloads"] = ctx.seconds()
    s = "workload/gpt2_small"
    ctx.finish(
        metrics,
        artifacts=[Path(args.out) / "per_layer.json"],
        summary=f"GPT-2 small schedule: {100 * metrics[f'{s}/kv_fraction']:.1f}% of the K+V rows, "
        f"{metrics[f'{s}/kv_byte_reduction']:.1f}x fewer K+V bytes than dense 16-bit",
    )


if __name__ == "__main__":
    raise SystemExit(main())
