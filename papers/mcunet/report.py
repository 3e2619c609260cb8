"""Stage ``mcunet_report``: render ``reports/mcunet/`` from the deploy metrics and the claims.

Writes ``README.md`` (the TinyEngine vs TF-Lite Micro table, the optimisation ablation, the
patch-based inference tables, which models fit, the paper's numbers beside ours, our own
targets), ``claims.json`` and ``figures/*.png``. Ratios are derived by :func:`derive` from the
measured bytes and instruction counts (``metrics/mcunet/derived.json``); nothing is typed by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from common.report.markdown import fmt, table
from common.report.spec import (
    Col,
    Figure,
    Group,
    MetricTable,
    ReportData,
    ReportSpec,
    Targets,
    Text,
    kb,
    report_main,
)
from papers.mcunet.config import MCUNetProfile, limit_label
from papers.mcunet.figures import (
    FAMILY_TITLES,
    draw_ablation,
    draw_codesign,
    draw_fuzz_memory,
    draw_memory,
    draw_space_cdf,
    draw_space_grid,
    draw_table2,
    draw_table3,
    draw_table6,
)

VARIANTS = {"tinyengine_patch": "patch", "tinyengine_stream": "stream"}  # patch-based C code


# derived <model>/<key> = <model>/<numerator> / <model>/<denominator>: TF-Lite Micro's arena,
# the reference kernels' instructions and our per-layer code against our variants (patch: the
# patch-based C code with the input frame in SRAM; stream: the frame read tile by tile)
RATIOS = [
    ("sram_reduction", "tflm/arena_head_bytes", "tinyengine/arena_bytes"),
    ("instruction_reduction", "reference/instructions", "tinyengine/instructions"),
    ("patch_reduction", "tinyengine/plan_bytes", "patch/peak_bytes"),
    ("sram_reduction_patch", "tflm/arena_head_bytes", "tinyengine_patch/arena_bytes"),
    ("sram_reduction_stream", "tflm/arena_head_bytes", "tinyengine_stream/arena_bytes"),
    ("patch_reduction_measured", "tinyengine/sram_bytes", "tinyengine_patch/sram_bytes"),
    ("stream_reduction_measured", "tinyengine/sram_bytes", "tinyengine_stream/sram_bytes"),
]


def derive(metrics: dict[str, float], r: ReportData) -> dict[str, float]:
    """Ratios and kB values the claims and targets compare (from the measured bytes and counts);
    a ratio is left out when either side is missing or zero."""
    d: dict[str, float] = {}

    def ratio(key: str, num: str, den: str) -> None:
        if metrics.get(num) and metrics.get(den):
            d[key] = metrics[num] / metrics[den]

    for m in r.config.models:
        for key, num, den in RATIOS:
            ratio(f"{m}/{key}", f"{m}/{num}", f"{m}/{den}")
        if metrics.get(f"{m}/tinyengine/sram_bytes") is not None:
            d[f"{m}/tinyengine/sram_kb"] = metrics[f"{m}/tinyengine/sram_bytes"] / 1024
        for e, v in VARIANTS.items():
            ours, per_layer = (metrics.get(f"{m}/{x}/instructions") for x in (e, "tinyengine"))
            if ours and per_layer:
                d[f"{m}/{v}_instruction_overhead_pct"] = 100 * (ours / per_layer - 1)
    for k in ("per_layer", "per_patch"):
        if f"patch_mbv2/{k}_bytes" in metrics:
            d[f"patch_mbv2/{k}_kb"] = metrics[f"patch_mbv2/{k}_bytes"] / 1024
    ratio(
        "ablation/inplace_reduction", "ablation/unroll/arena_bytes", "ablation/inplace/arena_bytes"
    )
    return d


# ---------------------------------------------------------------------- cells
def cols(*specs: tuple[Any, ...]) -> list[Col]:
    """Columns from ``(key, header)`` or ``(key, header, format)``."""
    return [Col(s[0], s[1], format=s[2] if len(s) > 2 else None) for s in specs]


def models(r: ReportData) -> list[tuple[str, str]]:
    return [(mc.label or k, k) for k, mc in r.config.models.items()]


def count(v: float) -> str:
    return fmt(int(v))


def pct(v: float) -> str:
    return f"{fmt(v)}%"


def mega(v: float) -> str:
    return fmt(v / 1e6)


def data_input(k: str, r: ReportData) -> str:
    mc = r.config.models[k]
    res = mc.resolution or r.m(f"{k}/resolution")  # the searched network's: from its deployment
    size = "–" if res is None else f"{int(res)}x{int(res)}"
    return f"{mc.dataset.replace('_', ' ')}, {size}"


def stage_of(prefix: str, r: ReportData) -> str | None:
    """``PxP, first N ops`` of the patch plan whose metrics are under ``prefix``."""
    p, n = r.m(f"{prefix}/patches"), r.m(f"{prefix}/n_ops")
    return None if p is None else f"{int(p)}x{int(p)}, first {int(n)} ops"


def fits(e: str) -> Any:
    """The column of executor ``e`` in the fits table: yes/no, SRAM and flash."""

    def cell(k: str, r: ReportData) -> str | None:
        if (ok := r.m(f"{k}/{e}/fits")) is None:
            return None
        sram = r.m(f"{k}/{e}/sram_bytes") or r.m(f"{k}/{e}/static_sram_bytes")
        flash = kb(r.m(f"{k}/{e}/flash_bytes"))
        return f"{'**yes**' if ok else 'no'} ({kb(sram)} kB SRAM, {flash} kB flash)"

    return cell


def patch_rows(r: ReportData) -> list[tuple[str, str]]:
    """The table networks, then MCUNetV2 Table 1's MobileNetV2 (``patch_mbv2``) when it ran."""
    if r.m("patch_mbv2/per_layer_bytes") is None:
        return models(r)
    width, res = fmt(r.m("patch_mbv2/width")), int(r.m("patch_mbv2/resolution"))
    return [*models(r), (f"MobileNetV2-w{width} @ {res} (MCUNetV2 Table 1 setting)", "patch_mbv2")]


def analytic(model_key: str, mbv2_key: str) -> Any:
    """A column of the analytic patch table: ``<model>/<model_key>`` or ``patch_mbv2/<mbv2_key>``."""
    return lambda k, r: r.m(f"patch_mbv2/{mbv2_key}" if k == "patch_mbv2" else f"{k}/{model_key}")


def extra_macs(k: str, r: ReportData) -> float:
    if k == "patch_mbv2":
        return r.m("patch_mbv2/mac_overhead_pct")
    return 100 * (r.m(f"{k}/patch/mac_overhead") or 0)


def patch_c(engine: str, title: str, intro: str) -> MetricTable:
    """The generated patch-based C code (``engine``), measured on the emulated Cortex-M7."""
    v = VARIANTS[engine]

    def sram(k: str, r: ReportData) -> str | None:
        ours = r.m(f"{k}/{engine}/sram_bytes")
        return None if ours is None else f"{kb(r.m(f'{k}/tinyengine/sram_bytes'))} → {kb(ours)}"

    columns = cols(
        (lambda k, r: stage_of(f"{k}/{engine}", r), "Patch stage"),
        ("{row}/tflm/arena_head_bytes", "TF-Lite Micro arena kB", kb),
        ("{row}/tinyengine/arena_bytes", "Ours per layer, arena kB", kb),
        (f"{{row}}/{engine}/arena_bytes", "Ours per patch, arena kB", kb),
        (f"{{row}}/sram_reduction_{v}", "TFLM / per patch"),
        (sram, "Cortex-M7 SRAM kB (static + stack), per layer → per patch"),
        (f"{{row}}/{v}_reduction_measured", "Measured reduction"),
    )
    columns += [
        Col(f"{{row}}/{engine}/mac_overhead", "Extra MACs", scale=100, unit="%"),
        Col(f"{{row}}/{v}_instruction_overhead_pct", "Extra instructions", format=pct),
    ]
    return MetricTable(title, rows=models, columns=columns, row_header="Model", intro=intro)


def ablation_table(r: ReportData) -> str:
    """One row per step of ``--ablation``'s steps.json: instructions, speed-ups, arena."""
    if not (steps := r.json(r.args.ablation)):
        return "(the ablation stage did not run)"
    rows, ref, prev = [], steps["steps"][0]["instructions"], None
    for s in steps["steps"]:
        n = s["instructions"]
        gain = "–" if prev is None else f"{100 * (prev / n - 1):+.1f}%"
        rows.append([s["label"], fmt(n), fmt(ref / n), gain, kb(s["arena_bytes"])])
        prev = n
    head = ["Step (cumulative)", "Instructions", "Speed-up vs reference", "Gain over previous step"]
    return table([*head, "Arena kB"], rows)


SPACE_INTRO = (
    "TinyNAS first chooses the search space: among spaces that differ in input resolution and "
    "width multiplier, the one whose random networks that fit the microcontroller have the most "
    "computation on average (the paper: more MACs within the same memory, more accuracy; Fig. 3 "
    "and Fig. 10). Every space is scored on the same random networks of TinyNAS's choices (kernel "
    "3/5/7, expand 3/4/6, depth 2/3/4 per stage) in MCUNet's MobileNetV2-like skeleton: peak SRAM "
    "from our engine's TinyEngine-style memory plan (the planner the deployment uses), flash from "
    "the int8 constants plus the engine's code. The same networks are also measured under "
    "TF-Lite Micro's memory plan with the reference kernels' code, for Table 2's TinyNAS x "
    "TF-Lite Micro cell (the figures show our engine's spaces). No training is involved."
)


def space_text(r: ReportData) -> str:
    """The budgets (the paper's and ours), the best spaces per budget and the stage's cost."""
    res = r.json(r.args.space)
    if not res:
        return "(the space stage did not run)"
    grid = res["grid"]
    parts = [
        SPACE_INTRO,
        f"Grid: {len(grid['resolutions'])} resolutions ({grid['resolutions'][0]}-"
        f"{grid['resolutions'][-1]} px) x {len(grid['width_mults'])} width multipliers "
        f"({grid['width_mults'][0]:g}-{grid['width_mults'][-1]:g}), {grid['samples']} random "
        f"networks per space (seed {grid['seed']}); the paper: 12 x 9 spaces (48-224 px, "
        f"0.2-1.0), 1,000 networks each. {fmt(r.m('space/networks'))} networks per engine in "
        f"{fmt(r.m('space/seconds'))} s with our engine's plan ({fmt(r.m('space/ms_per_network'))}"
        f" ms each) and {fmt(r.m('space/tflm/seconds'))} s with TF-Lite Micro's "
        f"({fmt(r.m('space/tflm/ms_per_network'))} ms each).",
    ]
    budget_rows = []
    for key, b in res["budgets"].items():
        f = b["factors"]
        budget_rows.append(
            [
                b["label"],
                f"{b['paper']['sram_kb']:g} / {b['paper']['flash_kb']:g}",
                "as is" if f is None else f"x{f['sram']:.3f} / x{f['flash']:.3f}",
                f"{b['budget']['sram_kb']:.0f} / {b['budget']['flash_kb']:.0f}",
                b["engines"]["ours"]["best"] or "none fits",
                fmt(r.m(f"space/{key}/best_mean_mmacs")),
                fmt(r.m(f"space/{key}/median_mean_mmacs")),
                b["engines"]["tflm"]["best"] or "none fits",
                fmt(r.m(f"space/{key}/tflm/best_mean_mmacs")),
            ]
        )
    parts.append(
        f"Budgets: the paper's MCUs (settings from the paper), {budget_rule(r.config.tinynas)}."
        "\n\n"
        + table(
            [
                "MCU",
                "Paper kB (SRAM / flash)",
                "Scale (SRAM / flash)",
                "Ours kB (SRAM / flash)",
                "Best space, our engine",
                "Its mean MMACs",
                "Median space's mean MMACs",
                "Best space, TF-Lite Micro plan",
                "Its mean MMACs",
            ],
            budget_rows,
        )
    )
    for _key, b in res["budgets"].items():
        spaces = b["engines"]["ours"]["spaces"]
        top = sorted((s for s in spaces if s["fitting"]), key=lambda s: -s["mean_macs"])[:5]
        rows = [
            [
                s["name"],
                f"{100 * s['fit_fraction']:.0f}%",
                fmt(s["mean_macs"] / 1e6),
                fmt(s["top20_macs"] / 1e6),
                f"{s['sram_bytes'][0] / 1024:.0f}-{s['sram_bytes'][1] / 1024:.0f}",
                f"{s['flash_bytes'][0] / 1024:.0f}-{s['flash_bytes'][1] / 1024:.0f}",
            ]
            for s in top
        ]
        parts.append(
            f"**{b['label']}**, the five spaces with the largest mean MACs of the fitting "
            "networks:\n\n"
            + table(
                [
                    "Space",
                    "Networks that fit",
                    "Mean MMACs (fitting)",
                    "Top-20% from MMACs",
                    "SRAM kB (all sampled)",
                    "Flash kB (all sampled)",
                ],
                rows,
            )
        )
    parts.append(
        "The paper (ImageNet, STM32F746): the chosen space's fitting networks average 52.0M "
        "FLOPs against 46.9M for a worse space, and a larger SRAM admits a higher resolution, a "
        "larger flash a wider network (Fig. 12). Which space is best here follows from our "
        f"budgets and task ({r.config.tinynas.space.num_classes} classes, up to "
        f"{max(grid['resolutions'])} px); stage 2 below searches the chosen space."
    )
    return "\n\n".join(parts)


def runtime_table(r: ReportData) -> str:
    """Seconds of work per stage (training epochs, deployment, ablation) and their sum."""
    keys = [(f"{s}@{k}", f"{k}/{m}") for k in r.config.models for s, m in RUNTIME_KEYS]
    rows = [
        [s, v]
        for s, key in [
            *keys,
            ("mcunet_ablation", "ablation/seconds"),
            ("mcunet_fuzz", "fuzz/seconds"),
            ("mcunet_space", "time/space"),
            ("mcunet_tinynas", "time/tinynas"),
            ("mcunet_tinynas_tflm", "time/tinynas_tflm"),
            ("mcunet_codesign", "time/codesign"),
            ("mcunet_table2", "time/table2"),
            ("mcunet_table3", "time/table3"),
            ("mcunet_space_ablation", "time/table6"),
        ]
        if (v := r.m(key)) is not None
    ]
    total = sum(v for _, v in rows)
    rows = [[s, fmt(v)] for s, v in rows] + [
        ["**total**", f"**{fmt(total)}** ({fmt(total / 60)} min)"]
    ]
    return table(["Stage", "Seconds"], rows)


def bit_exact(r: ReportData) -> str:
    checked = ", ".join(
        f"{int(r.metrics.get(f'{k}/check_inputs', 0))} ({k})" for k in r.config.models
    )
    return (
        "Every deployed model produced identical int8 outputs in the numpy reference, the host C "
        f"build, the emulated Cortex-M7 and tflite-micro on {checked} test images (the deploy "
        "stage fails on any difference)."
    )


def fuzz_text(r: ReportData) -> str:
    """The fuzz campaign: its counts from the stage's metrics (``fuzz/*``), the breakdowns by
    refusal reason, malformed-file kind and operator from ``--fuzz``'s summary.json."""
    if not (rep := r.json(r.args.fuzz)) or r.m("fuzz/models") is None:
        return "(the fuzz stage did not run)"
    f = r.config.fuzz

    def n(key: str) -> str:
        return count(r.m(f"fuzz/{key}") or 0)

    rows = [
        [f"Random int8 models (seeds from {f.seed})", n("models")],
        ["accepted by the validator and importer", n("accepted")],
        ["bit-exact with TF-Lite Micro on the host, every engine", f"{n('bitexact_host')} / {n('accepted')}"],
        ["bit-exact on the emulated Cortex-M7 (sample)", f"{n('bitexact_m7')} / {n('emulated')}"],
        ["failed (wrong output or crash after acceptance)", n("failed")],
    ]  # fmt: skip
    rows += [[f"refused: {reason}", fmt(k)] for reason, k in sorted(rep["refusals"].items())]
    parts = [
        f"`{FUZZ_COMMAND}` with {n('models')} models and {n('malformed')} malformed files "
        f"(profile {r.profile}, {f.inputs} inputs per model, every {f.emulate_every}-th model "
        "also on the Cortex-M7). Each model is written with the TF-Lite schema directly, not by "
        "this repository's exporter, and deployed through the same path as the tables above "
        "(TF-Lite Micro runs on the file itself).",
        table(["Random models", "Count"], rows),
    ]
    if rep["malformed"]:
        outcomes = sorted({o for v in rep["malformed"].values() for o in v})
        bad_rows = [
            [kind, fmt(sum(v.values())), *(fmt(v.get(o, 0)) for o in outcomes)]
            for kind, v in sorted(rep["malformed"].items())
        ]
        parts += [
            "Malformed files, each given to `python -m common.mcu deploy` in a fresh process: "
            "*refused* means exit code 2 with one line naming the problem; *deployed* means the "
            "damage left a valid model, which then matched TF-Lite Micro bit for bit. "
            f"Time per file: {r.m('fuzz/malformed_median_s'):.2f} s median, "
            f"{r.m('fuzz/malformed_max_s'):.2f} s max; {n('malformed_bad')} files did anything "
            "else.",
            table(["Kind", "Files", *outcomes], bad_rows),
        ]
    if r.m("fuzz/sram_models"):
        by_kind: dict[str, list[float]] = {}
        for m in rep["memory"]:
            if m["tflm"] > 0 and m["tinyengine"] > m["tflm"]:
                kind = m.get("scratch_kind") or "none (activations)"
                by_kind.setdefault(kind, []).append(m["tinyengine"] - m["tflm"])
        kind_rows = [
            [k, fmt(len(v)), fmt(float(np.median(v))), fmt(max(v))]
            for k, v in sorted(by_kind.items(), key=lambda kv: -len(kv[1]))
        ]
        parts += [
            f"SRAM for activations: our per-layer arena is at most TF-Lite Micro's on "
            f"**{n('sram_le_tflm')} of {n('sram_models')}** models (median ratio ours / TF-Lite "
            f"Micro {fmt(r.m('fuzz/sram_ratio_median'))}). Each kernel's scratch (im2col rows and "
            "their int16 widening, a depthwise channel's padded plane or row ring, the widened "
            "input row of a fully connected layer) is placed in a gap no tensor alive during that "
            f"operator uses; it extends the arena on {n('scratch_extends')} models. Where ours is "
            "larger, the operator whose scratch fits no gap (TF-Lite Micro's reference kernels "
            "need none; ours trade it for speed):",
            table(["Operator whose scratch extends the arena", "Models", "Median bytes over TFLM",
                   "Max bytes over"], kind_rows),
        ]  # fmt: skip
    return "\n\n".join(parts)


SEARCH_INTRO = (
    "In the space stage 1 chose, a weight-sharing supernet (kernel 3/5/7, expand 3/4/6, depth "
    "2/3/4 per stage) is trained with the Once-for-All loop (`common/ofa/shrinking.py`): the "
    "largest network, then every sub-network at once, several per step, distilled from the "
    "largest. Evolution (`common/ofa/search.py`) then keeps the sub-network with the best accuracy "
    "on held-out training images among those whose peak SRAM (the engine's TinyEngine-style plan) "
    "and flash (int8 constants + engine code) fit the budget; a candidate over either limit never "
    "enters the population. The winner is fine-tuned, then deployed like the table networks "
    "(row *TinyNAS (searched)* in the tables above: measured SRAM, flash, instructions and "
    "bit-exactness)."
)


def search_text(r: ReportData) -> str:
    """TinyNAS stage 2: the searched network against its budget, training, search, accuracy."""
    res = r.json(r.args.tinynas) if r.args.tinynas else None
    s = r.config.tinynas.search if r.config.tinynas else None
    if not res or s is None:
        return "(the TinyNAS search stage did not run at this profile)"
    b, c, sp = res["budget"], res["costs"], res["space"]
    a = res["arch"]
    search = res["search"]
    m = r.m
    dep = [k for k, mc in r.config.models.items() if mc.model == "tinynas"]
    rows = [
        ["Space (stage 1's choice)", f"w{sp['width_mult']:g}-r{sp['resolution']}", ""],
        [
            "Peak SRAM, search's model (kB)",
            f"{c['sram_bytes'] / 1024:.1f}",
            f"≤ {b['sram_kb']:.1f} ({100 * c['sram_bytes'] / (b['sram_kb'] * 1024):.0f}% used)",
        ],
        [
            "Flash, search's model (kB)",
            f"{c['flash_bytes'] / 1024:.0f}",
            f"≤ {b['flash_kb']:.0f} ({100 * c['flash_bytes'] / (b['flash_kb'] * 1024):.0f}% used)",
        ],
        ["MACs (M)", fmt(res["macs"] / 1e6), ""],
        ["Blocks per stage (depth)", " ".join(str(d) for d in a["d"]), ""],
    ]
    for k in dep:
        sram = m(f"{k}/tinyengine/sram_bytes")
        arena = m(f"{k}/tinyengine/arena_bytes")
        if arena is not None:
            rows.append(["Deployed: activation arena, ours (kB)", kb(arena), ""])
        if sram is not None:
            rows.append(["Deployed: Cortex-M7 SRAM, static + stack (kB)", kb(sram), ""])
        if (f := m(f"{k}/tinyengine/flash_bytes")) is not None:
            rows.append(["Deployed: Cortex-M7 flash, ours (kB)", kb(f), ""])
        if (f := m(f"{k}/reference/flash_bytes")) is not None:
            rows.append(["Deployed: Cortex-M7 flash, reference kernels (kB)", kb(f), ""])
    acc = [
        ["Largest network after its phase (held-out)", m("tinynas/full/max_holdout_accuracy")],
        ["Largest / smallest after the joint phase (held-out)", None],
        ["Searched network (held-out, the search's score)", m("tinynas/search/holdout_accuracy")],
        ["Searched network, inherited weights (test)", m("tinynas/inherited_test_accuracy")],
        ["Searched network, fine-tuned (test)", m("tinynas/finetuned_test_accuracy")],
    ]
    acc_rows = []
    for label, v in acc:
        if v is None and label.startswith("Largest / smallest"):
            hi, lo = (
                m("tinynas/joint/max_holdout_accuracy"),
                m("tinynas/joint/min_holdout_accuracy"),
            )
            acc_rows.append([label, "–" if hi is None else f"{fmt(hi)} / {fmt(lo)}"])
        else:
            acc_rows.append([label, "–" if v is None else fmt(v)])
    for k in dep:
        if (v := m(f"{k}/int8_accuracy")) is not None:
            acc_rows.append(["Deployed int8 (generated C, test)", fmt(v)])
    cost = (
        f"Cost on this machine: supernet {fmt(m('tinynas/full/train_seconds'))} s (largest network, "
        f"{s.full_steps} steps) + {fmt(m('tinynas/joint/train_seconds'))} s (joint, {s.joint_steps} "
        f"steps x {s.subnets_per_step} sub-networks); search {fmt(search['seconds'])} s "
        f"({res['candidates_measured']} distinct candidates measured on {s.holdout} held-out images, "
        f"population {s.evolution.population}, {s.evolution.generations} generations); "
        f"fine-tuning {fmt(m('tinynas/finetune_seconds'))} s. The paper gives no search cost."
    )
    return "\n\n".join(
        [
            SEARCH_INTRO,
            table(
                [
                    "The searched network",
                    "Value",
                    "Budget (stage 1's, for " + res["budget_key"] + ")",
                ],
                rows,
            ),
            table(["Accuracy, colour digits (%)", "Value"], acc_rows),
            cost,
            tflm_search_text(r),
        ]
    )


def tflm_search_text(r: ReportData) -> str:
    """The second search, under TF-Lite Micro's plan (stage ``mcunet_tinynas_tflm``)."""
    m = r.m
    if m("tinynas_tflm/search/mmacs") is None:
        return "The search under TF-Lite Micro's plan did not run at this profile."
    p = "tinynas_tflm/search"
    return (
        "The same search under TF-Lite Micro's memory plan with the reference kernels' code "
        "(stage `mcunet_tinynas_tflm`, Table 2's TinyNAS x TF-Lite Micro cell): space "
        f"w{fmt(m(f'{p}/width_mult'))}-r{int(m(f'{p}/resolution'))} (stage 1's choice under that "
        f"plan); the network found has {fmt(m(f'{p}/mmacs'))} MMACs, peak SRAM "
        f"{fmt(m(f'{p}/sram_kb'))} kB of {fmt(m(f'{p}/budget_sram_kb'))} kB and flash "
        f"{fmt(m(f'{p}/flash_kb'))} kB of {fmt(m(f'{p}/budget_flash_kb'))} kB under that plan; "
        f"held-out accuracy {fmt(m(f'{p}/holdout_accuracy'))}%, fine-tuned test accuracy "
        f"{fmt(m('tinynas_tflm/finetuned_test_accuracy'))}%. Cost: "
        f"{fmt(m('time/tinynas_tflm'))} s in all."
    )


CODESIGN_INTRO = (
    "MCUNet's Table 2 asks how much each half of the co-design is worth: under one budget, each "
    "baseline family (MobileNetV2, ProxylessNAS) is scaled down, in width and input resolution, "
    "to the largest member that fits with each engine, and an engine that needs less memory "
    "runs a larger member. This is that table's memory half, measured with no weights and no "
    "compiler (`common/tinynas/codesign.py`): every member of the family grid (stage 1's widths "
    "x resolutions) planned by TF-Lite Micro's memory plan on the graph the converter writes for "
    "it (equal to the interpreter's arena; explicit PAD tensors included) with the reference "
    "kernels' code, and by our engine's plan with its code. The paper's accuracies are beside "
    "the members for reference; ours are in the next section, where these members are trained."
)

# MCUNet Table 2 (ImageNet top-1 %, STM32F746) per family and engine, from the paper
PAPER_TABLE2 = {
    "mobilenet_v2": {"tflm": 35.2, "ours": 47.4},
    "proxyless_mobile": {"tflm": 49.5, "ours": 56.4},
    "tinynas": {"tflm": 55.5, "ours": 61.8},
}


def codesign_text(r: ReportData) -> str:
    """Table 2's memory half: the largest member per family and engine, and the searched net."""
    res = r.json(r.args.codesign) if r.args.codesign else None
    if not res:
        return "(the co-design stage did not run at this profile)"
    b = res["budget"]
    rows = []

    def member(m: dict[str, Any] | None) -> list[str]:
        if m is None:
            return ["none fits", "–", "–"]
        return [m["name"], fmt(m["macs"] / 1e6), f"{m['sram_bytes'] / 1024:.1f}"]

    for family, e in res["families"].items():
        t, o = e["tflm"]["largest"], e["ours"]["largest"]
        ratio = r.m(f"codesign/{family}/mac_ratio")  # the stage's metric
        ratio = "–" if ratio is None else f"{ratio:.2f}x"
        paper = PAPER_TABLE2.get(family, {})
        cited = f"{paper['tflm']} / {paper['ours']}" if paper else "–"
        rows.append([FAMILY_TITLES.get(family, family), *member(t), *member(o), ratio, cited])
    text = [
        CODESIGN_INTRO,
        f"Budget: {b['label'] or res['budget_key']} scaled as stage 1 scaled it: "
        f"{b['sram_kb']:.1f} kB SRAM, {b['flash_kb']:.0f} kB flash. Code besides the constants: "
        + ", ".join(f"{v['label']} {fmt(v['code_kb'])} kB" for v in res["engines"].values())
        + " (settings measured on the deployed MCUNet-style model).",
        table(
            [
                "Family",
                "Largest fitting, TF-Lite Micro plan",
                "MMACs",
                "Peak SRAM kB",
                "Largest fitting, our engine",
                "MMACs",
                "Peak SRAM kB",
                "MACs, ours / TF-Lite Micro",
                "Paper top-1 %, CMSIS-NN / TinyEngine",
            ],
            rows,
        ),
    ]
    if (s := res.get("searched")) is not None:
        verdict = {True: "fits", False: "does not fit"}
        text.append(
            "The network TinyNAS searched for our engine (stage 2): peak SRAM "
            f"{s['ours']['sram_bytes'] / 1024:.1f} kB with our engine ({verdict[s['ours']['fits']]}), "
            f"{s['tflm']['sram_bytes'] / 1024:.1f} kB under TF-Lite Micro's plan "
            f"({verdict[s['tflm']['fits']]}): the searched model fits only with the engine it was "
            "searched for, so Table 2's TinyNAS x TF-Lite Micro cell is a search of its own under "
            "that plan (stage `mcunet_tinynas_tflm`, in the next section)."
        )
    return "\n\n".join(text)


TABLE2_INTRO = (
    "Table 2's accuracy half. Each cell is trained from scratch with one schedule on the same "
    "training images at its own input resolution and tested on the same test images, once per "
    "seed: the baseline families' largest members that fit each engine (previous section) and "
    "the network TinyNAS found under each engine's memory (stage 2, run once per engine). The "
    "seeds' spread, pooled over the cells, gives every difference a standard error (SE); a "
    "claim is reproduced when the difference minus two SEs is above zero. Accuracies are float "
    "(the colour digits, not ImageNet), so the paper's absolute numbers are beside ours for "
    "reference only; its differences are the claims."
)


TABLE2_CAVEAT = (
    "How to read the gains: the colour digits are 32 px images, so a member at 64 or 80 px sees "
    "the same information upsampled; on ImageNet a larger resolution adds detail, here it adds "
    "only computation and larger feature maps in the later stages. Where both engines' members "
    "have the same width (compare the cells above), the engine's gain here comes from that "
    "alone. The noise estimate has as many degrees of freedom as stated above; with few seeds "
    "one outlying seed moves it."
)


def table2_text(r: ReportData) -> str:
    """Table 2's six cells trained: accuracies per engine with the paper's, and the gains."""
    res = r.json(r.args.table2) if r.args.table2 else None
    t = r.config.tinynas.table2 if r.config.tinynas else None
    if not res or t is None:
        return "(the Table 2 training stage did not run at this profile)"
    cells, sd = res["cells"], res["noise"]["seed_sd"]

    def cell(key: str) -> list[str]:
        c = cells.get(key)
        if c is None or not c["accuracies"]:
            return ["none fits", "–", "–"]
        runs = " / ".join(fmt(a) for a in c["accuracies"])
        return [f"{c['name']} ({fmt(c['macs'] / 1e6)} MMACs)", fmt(c["mean"]), runs]

    def gain(name: str) -> str:
        g = res["gains"].get(name)
        if g is None:
            return "–"
        return f"{g['gain']:+.1f} ± {g['se']:.1f}" if sd is not None else f"{g['gain']:+.1f}"

    families = list(dict.fromkeys(c["family"] for c in cells.values()))
    rows = []
    for family in families:
        paper = PAPER_TABLE2.get(family)
        cited = (
            f"{paper['tflm']} / {paper['ours']} ({paper['ours'] - paper['tflm']:+.1f})"
            if paper
            else "–"
        )
        title = FAMILY_TITLES.get(family, family)
        rows.append(
            [
                title,
                *cell(f"{family}/tflm"),
                *cell(f"{family}/ours"),
                gain(f"engine/{family}"),
                cited,
            ]
        )
    seeds = ", ".join(str(x) for x in res["seeds"])
    steps = t.train.epochs or t.train.steps
    unit = "epochs" if t.train.epochs else "steps"
    noise = (
        f"Seed-to-seed SD, pooled over the cells: {fmt(sd)} points ({res['noise']['df']} degrees "
        "of freedom)."
        if sd is not None
        else "One seed per cell: no noise estimate, so no claim is decided."
    )
    warmup = (
        f", {fmt(t.train.schedule.warmup_epochs)}-epoch warm-up"
        if t.train.schedule.warmup_epochs
        else ""
    )
    g_all = res["gains"].values()
    positive = sum(g["gain"] > 0 for g in g_all)
    summary = f"{positive} of {len(res['gains'])} differences have the paper's sign (all of the "
    summary += "paper's are gains)"
    if sd is not None:
        summary += f"; {sum(g['lcb2'] > 0 for g in g_all)} stand out of the seed noise (minus 2 SE)"
    summary += "."
    gain_rows = []
    for name, g in res["gains"].items():
        gain_rows.append(
            [
                name,
                f"{g['a']} - {g['b']}",
                f"{g['gain']:+.2f}",
                "–" if sd is None else fmt(g["se"]),
                "–" if sd is None else f"{g['lcb2']:+.2f}",
            ]
        )
    return "\n\n".join(
        [
            TABLE2_INTRO,
            f"Schedule: {steps} {unit}, batch {t.train.batch_size}, SGD lr "
            f"{fmt(t.train.optimizer.lr)} ({t.train.schedule.name}{warmup}), residual blocks "
            f"zero-initialised (the supernet's start), {res['train_images']:,} "
            f"training and {res['test_images']:,} test images, seeds {seeds}. {noise}",
            table(
                [
                    "Network",
                    "TF-Lite Micro plan: cell",
                    "Top-1 % (mean)",
                    "Per seed",
                    "Our engine: cell",
                    "Top-1 % (mean)",
                    "Per seed",
                    "Engine gain ± SE",
                    "Paper top-1 %, CMSIS-NN / TinyEngine (gain)",
                ],
                rows,
            ),
            "Every difference the claims compare (points; `a - b` of two cells' means):",
            table(["Difference", "Cells", "Ours", "SE", "Ours - 2 SE"], gain_rows),
            summary,
            TABLE2_CAVEAT,
            f"Cost: {fmt(r.m('time/table2'))} s for {sum(len(c['accuracies']) for c in cells.values())}"
            " trainings.",
        ]
    )


# MCUNet Table 3 (ImageNet top-1 %, STM32F746 at 216 MHz): per row, no limit / 5 FPS / 10 FPS
PAPER_TABLE3 = {
    "tflm": {"none": 39.7, "5fps": 39.7, "10fps": 28.7},
    "ours": {"none": 47.4, "5fps": 41.6, "10fps": 34.1},
    "tinynas": {"none": 61.8, "5fps": 49.9, "10fps": 40.5},
}
TABLE3_ROWS = {
    "tflm": "Scaled MobileNetV2, TF-Lite Micro plan + reference kernels (paper: + CMSIS-NN)",
    "ours": "Scaled MobileNetV2, our engine (paper: TinyEngine)",
    "tinynas": "TinyNAS, our engine (paper: MCUNet)",
}
TABLE3_INTRO = (
    "Table 3: the same MCU budget, now also a latency limit. Latency is an estimate from an "
    "exact count, the instructions one inference retires on the emulated Cortex-M7, at an "
    "assumed IPC of 1 and 216 MHz, so whether a network meets a limit is decided exactly. A "
    "baseline cell is the family's member with the most MACs that fits the engine's memory and "
    "is measured within the limit under that engine's kernels; the TinyNAS cell is the "
    "supernet of stage 2 searched again with the limit as one more constraint (predicted by a "
    "per-operator instruction table of that supernet, the winner then measured exactly). Every "
    "cell is trained as Table 2's; the no-limit column is Table 2's cells."
)


def table3_caveat(r: ReportData) -> str:
    """How to read Table 3 (the baseline's kernels against ours, measured on the searched net)."""
    ref, ours = r.m("tinynas/reference/instructions"), r.m("tinynas/tinyengine/instructions")
    ratio = f"{ref / ours:.1f} times" if ref and ours else "several times"
    return (
        f"How to read it: the baseline row runs our port of TF-Lite Micro's reference kernels, "
        f"{ratio} the instructions of our engine on the searched network (deployment section), "
        "where the paper's baseline, CMSIS-NN, is 1.6 times slower than TinyEngine (MCUNet "
        "Figs. 4-7); under a latency limit that row is therefore handicapped far more than the "
        "paper's, and its engine gain is larger for a reason the paper does not test. Under a "
        "limit the search may lower the input resolution below the supernet's own (down to the "
        "grid's smallest), where the supernet never trained: those candidates are scored with "
        "their batch norm recalibrated at that resolution, and the winner is trained from "
        "scratch like every cell."
    )


def stage_results(r: ReportData, flag: str, block: str) -> tuple[Any, Any]:
    """A table stage's results.json (``--<flag>``) and its ``tinynas.<block>`` settings, or
    ``(None, None)`` when the stage did not run at this profile."""
    res = r.json(getattr(r.args, flag)) if getattr(r.args, flag, None) else None
    cfg = getattr(r.config.tinynas, block) if r.config.tinynas else None
    return (res, cfg) if res and cfg is not None else (None, None)


def table3_text(r: ReportData) -> str:
    """Table 3's cells under each latency limit, the paper's beside, and the gains."""
    res, t = stage_results(r, "table3", "table3")
    if res is None:
        return "(the Table 3 stage did not run at this profile)"
    cols, cells, sd = res["columns"], res["cells"], res["noise"]["seed_sd"]
    ref = res["reference"]

    def head(col: str) -> str:
        if col == "none":
            return "No limit"
        lim = res["limits"][col]
        return f"{limit_label(col)} (≤ {fmt(lim['latency_ms'])} ms)"

    def cell(c: dict[str, Any]) -> str:
        if not c.get("accuracies"):
            return f"{c['name']}"
        return (
            f"{c['name']}, {fmt(c['macs'] / 1e6)} MMACs, {fmt(c['latency_ms'])} ms: "
            f"**{fmt(c['mean'])}**"
        )

    rows = []
    for row, title in TABLE3_ROWS.items():
        paper = PAPER_TABLE3[row]
        rows.append(
            [
                title,
                *[cell(cells[col][row]) for col in cols],
                " / ".join(fmt(paper[c]) if c in paper else "–" for c in cols),
            ]
        )
    rule = (
        f"{', '.join(f'{limit_label(k)} = {fmt(v)} x' for k, v in t.limits.items())} the no-limit "
        f"TinyNAS network's {fmt(ref['latency_ms'])} ms ({ref['instructions']:,} instructions)"
        if t.unit == "fraction"
        else ", ".join(f"{limit_label(k)} = {fmt(v)} ms" for k, v in t.limits.items())
    )
    gain_rows = []
    for col in cols:
        for name, what, paper in (
            ("search", "TinyNAS - family, our engine", ("tinynas", "ours")),
            ("engine", "family, our engine - reference kernels", ("ours", "tflm")),
        ):
            g = res["gains"].get(f"{col}/{name}")
            pa, pb = (PAPER_TABLE3[k].get(col) for k in paper)
            cited = f"{pa - pb:+.1f}" if pa is not None and pb is not None else "–"
            if g is None:
                gain_rows.append([head(col), what, "– (a cell has no network)", "–", cited])
                continue
            se = "–" if g["se"] is None else fmt(g["se"])
            low = "–" if g["lcb2"] is None else f"{g['lcb2']:+.2f}"
            gain_rows.append([head(col), what, f"{g['gain']:+.2f} ± {se}", low, cited])
    val = res["instruction_table"]["validation"]
    table_line = (
        f"The search's instruction table: {res['instruction_table']['entries']} operator entries "
        f"from {res['instruction_table']['build_archs']} sub-networks"
        + (
            f"; on {int(val['n'])} random held-out ones its error is {fmt(val['mean_rel_error'])}% "
            f"on average, {fmt(val['max_rel_error'])}% at worst."
            if val
            else "."
        )
    )
    tries = []
    for col in cols[1:]:
        c = cells[col]["tinynas"]
        for i, a in enumerate(c.get("attempts", [])):
            if a["exact"] is None:
                tries.append(
                    [
                        head(col),
                        str(i + 1),
                        f"{a['target'] / 1e6:.2f}",
                        "–",
                        "no sub-network of the space within it",
                    ]
                )
                continue
            tries.append(
                [
                    head(col),
                    str(i + 1),
                    f"{a['target'] / 1e6:.2f}",
                    f"{a['predicted'] / 1e6:.2f}",
                    f"{a['exact'] / 1e6:.2f}",
                ]
            )
    measured = int(r.m("table3/measured_networks") or 0)
    noise = (
        f"Seed-to-seed SD pooled over Table 2's and these trainings: {fmt(sd)} points "
        f"({res['noise']['df']} degrees of freedom)."
        if sd is not None
        else "One seed per cell: no noise estimate, so no claim is decided."
    )
    return "\n\n".join(
        [
            TABLE3_INTRO,
            (
                f"Limits (a setting): {rule}. The paper's are 200 and 100 ms for ImageNet "
                "networks about five times larger than ours."
                if t.unit == "fraction"
                else f"Limits (the paper's): {rule}."
            ),
            table(["Row", *[head(c) for c in cols], "Paper top-1 % (same columns)"], rows),
            "The differences the claims compare (points; SE from the pooled seed SD):",
            table(["Column", "Difference", "Ours ± SE", "Ours - 2 SE", "Paper"], gain_rows),
            noise,
            table_line,
            "The TinyNAS searches under each limit (millions of instructions: the search's "
            "target, the table's prediction for its winner, the winner's exact count):",
            table(["Column", "Try", "Target", "Predicted", "Exact"], tries),
            f"{measured} networks were built and counted exactly. {table3_caveat(r)}",
            f"Cost: {fmt(r.m('time/table3'))} s.",
        ]
    )


# MCUNet Table 6 (ImageNet-100, 320 kB / 1 MB, top-1 %): the chosen space, random spaces
# (mean +/- SD), and the rows not run here
PAPER_TABLE6 = {"chosen": 78.7, "random": 74.7, "random_sd": 1.9, "huge": 77.0, "r18": 80.3}
TABLE6_INTRO = (
    "Table 6: does the space stage 1 chose (the largest mean MACs among its networks that fit) "
    "give a better network than a random space of the same grid? Each space gets the same "
    "search, a cheap one: its network is the one with the most MACs among the space's first "
    "{candidates} fitting networks of stage 1's random draw (the same number in every space; "
    "the paper runs its one-shot search in every space, and one supernet, stage 2 above, took "
    "{supernet} here). Each network is trained from scratch as Table 2's cells, under our "
    "engine's memory and the same budget."
)


def table6_text(r: ReportData) -> str:
    """Table 6's spaces, their networks and accuracies, the paper's beside, and the gain."""
    res, a = stage_results(r, "table6", "space_ablation")
    if res is None:
        return "(the Table 6 stage did not run at this profile)"
    rows = []
    for name, s in res["spaces"].items():
        rows.append(
            [
                f"**{name}**" if s["role"] == "chosen" else name,
                s["role"],
                f"{s['fitting']} / {s['samples']}",
                fmt(s["space_mean_macs"] / 1e6),
                fmt(s["macs"] / 1e6),
                fmt(s["sram_bytes"] / 1024),
                fmt(s["flash_bytes"] / 1024),
                ", ".join(fmt(x) for x in s["accuracies"]),
                f"**{fmt(s['mean'])}**",
            ]
        )
    p = PAPER_TABLE6
    randoms = res["random"]
    g, sd = res["gain"], res["noise"]["seed_sd"]
    drawn = (
        f"The {len(randoms)} random spaces were drawn (seed {a.seed}) among the "
        f"{len(res['candidates'])} other spaces of the grid where at least {a.candidates} of "
        "stage 1's random networks fit."
    )
    paper = (
        f"The paper: {p['chosen']} - {p['random']} = {p['chosen'] - p['random']:+.1f} points "
        f"(random spaces {p['random']} ± {p['random_sd']}%)."
    )
    if g is None:
        verdict = (
            f"No other space of the grid has enough fitting networks: nothing to compare. {paper}"
        )
    elif g["lcb95"] is None:
        verdict = (
            f"Chosen minus the random space: **{g['gain']:+.2f}** points, with no noise "
            f"estimate (one random space, or one seed): no claim is decided. {paper}"
        )
    else:
        verdict = (
            f"Chosen minus the random spaces' mean: **{g['gain']:+.2f} ± {fmt(g['se'])}** "
            f"points (SE from the random spaces' SD, {fmt(g['between_sd'])} points over "
            f"{len(randoms)} spaces, and the seed SD, {fmt(sd)} points pooled with Table 2's "
            f"over {res['noise']['df']} degrees of freedom); the lower end of its 95% interval "
            f"(t = {fmt(g['t'])} at {fmt(g['df'])} Welch-Satterthwaite degrees of freedom): "
            f"{g['lcb95']:+.2f}. {paper}"
        )
    supernet = r.m("time/tinynas")
    intro = TABLE6_INTRO.format(
        candidates=a.candidates,
        supernet=f"{supernet / 60:.1f} min" if supernet else "far longer",
    )
    return "\n\n".join(
        [
            intro,
            table(
                [
                    "Space",
                    "Role",
                    "Fitting / sampled",
                    "Space's mean MMACs (stage 1)",
                    "Network MMACs",
                    "Peak SRAM kB",
                    "Flash kB",
                    "Top-1 % per seed",
                    "Mean",
                ],
                rows,
            ),
            drawn,
            verdict,
            f'Not run here: the paper\'s "huge space" ({p["huge"]}%, one search over every '
            "resolution and width at once: a supernet elastic in both) and ResNet-18 at 224 px "
            f"({p['r18']}%, out of memory on the MCU). Budget: {fmt(res['budget']['sram_kb'])} kB "
            f"SRAM, {fmt(res['budget']['flash_kb'])} kB flash (stage 1's scaled "
            f"{res['budget_key']}).",
            f"Cost: {fmt(r.m('time/table6'))} s.",
        ]
    )


def table6_scale(r: ReportData) -> str:
    """What Table 6 scaled down (from the profile's settings)."""
    a = r.config.tinynas.space_ablation if r.config.tinynas else None
    if a is None:
        return "Table 6: not configured at this profile."
    return (
        f"Table 6: {a.random_spaces} random spaces; in every space the most MACs among its first "
        f"{a.candidates} fitting networks of stage 1's random draw instead of a one-shot search; "
        "colour digits instead of ImageNet-100; networks trained as Table 2's cells; the "
        "huge-space row not run."
    )


def budget_rule(t: Any) -> str:
    """How the MCUs' budgets apply to our grid (``tinynas.reference``), in words."""
    ref = t.reference
    if ref is None:
        return "used as the paper gives them"
    return (
        "scaled to our grid by the ratio of our largest network's memory (largest resolution "
        f"and width, our classes) to that of the paper's grid ({ref.resolution} px, width "
        f"{ref.width_mult:g}, {ref.num_classes} classes), per resource, so that each budget cuts "
        "our largest network as much as it cuts the paper's"
    )


def tinynas_scale(r: ReportData) -> str:
    """What TinyNAS's space search scaled down (from the profile's settings)."""
    t = r.config.tinynas
    if t is None:
        return "TinyNAS: not configured at this profile."
    g = t.grid
    scaled = f"the MCUs' budgets {budget_rule(t)}"
    return (
        f"TinyNAS stage 1: {len(g.resolutions)} resolutions ({min(g.resolutions)}-"
        f"{max(g.resolutions)} px) x {len(g.width_mults)} widths, {g.samples} networks per space, "
        f"{t.space.num_classes} classes (the paper: 48-224 px x 0.2-1.0, 1,000 networks, ImageNet); "
        f"{scaled}; flash counts the int8 constants plus {t.code_kb:g} kB of engine code (a "
        "setting, measured once on the MCUNet-style model's image)."
    )


def search_scale(r: ReportData) -> str:
    """What TinyNAS's one-shot search scaled down (from the profile's settings)."""
    s = r.config.tinynas.search if r.config.tinynas else None
    if s is None:
        return "TinyNAS stage 2: not configured at this profile."
    images = (
        "all training images but the held-out ones"
        if s.train_subset is None
        else (f"{s.train_subset:,} colour-digit training images")
    )
    return (
        f"TinyNAS stage 2: the supernet trains {s.full_steps} + {s.joint_steps} steps of "
        f"{s.train.batch_size} on {images} (the paper: ImageNet with Once-for-All's schedule); "
        f"the search measures each candidate on {s.holdout:,} held-out images instead of an "
        f"accuracy predictor, with a population of {s.evolution.population} over "
        f"{s.evolution.generations} generations; the winner is fine-tuned "
        f"{s.finetune.epochs or s.finetune.steps} {'epochs' if s.finetune.epochs else 'steps'}. "
        "The same search runs a second time under TF-Lite Micro's memory plan (Table 2's "
        "TinyNAS x TF-Lite Micro cell), in the space stage 1 chose for that plan, and again under "
        "each latency limit of Table 3."
    )


def table2_scale(r: ReportData) -> str:
    """What Table 2's training scaled down (from the profile's settings)."""
    t = r.config.tinynas.table2 if r.config.tinynas else None
    if t is None:
        return "Table 2's accuracy half: not configured at this profile."
    images = "every training image" if t.train_subset is None else f"{t.train_subset:,} images"
    length = f"{t.train.epochs} epochs" if t.train.epochs else f"{t.train.steps} steps"
    return (
        f"Table 2's cells: trained from scratch for {length} on {images} of the colour digits, "
        f"{len(t.seeds)} seeds each, float accuracy (the paper: ImageNet, full schedules, int8 "
        "on the board)."
    )


def table3_scale(r: ReportData) -> str:
    """What Table 3 scaled down (from the profile's settings)."""
    t = r.config.tinynas.table3 if r.config.tinynas else None
    if t is None:
        return "Table 3: not configured at this profile."
    limits = ", ".join(f"{limit_label(k)} {fmt(v)}" for k, v in t.limits.items())
    what = (
        f"fractions of the no-limit TinyNAS network's latency ({limits}) instead of the paper's "
        "200 and 100 ms"
        if t.unit == "fraction"
        else f"the paper's limits in ms ({limits})"
    )
    return (
        f"Table 3: limits are {what}, on latency estimated from exact emulated instruction counts "
        "(IPC 1, 216 MHz); only the scaled MobileNetV2 and TinyNAS rows, as the paper; cells "
        "trained as Table 2's."
    )


def scaled_down(r: ReportData) -> list[str]:
    return [
        "Networks: the paper's architectures (MobileNetV2-w0.35, ProxylessNAS-w0.3) and a hand-written MCUNet-style net in TinyNAS's space (the searched mcunet-in2 config is not available offline), with 10-class heads, trained briefly on the 32-px colour digits upsampled to the paper's resolutions (so activation memory is as on ImageNet at those resolutions; flash is smaller: 10 instead of 1000 classes). Accuracies are not comparable with ImageNet's.",
        "Hardware: no board. Flash and static SRAM are exact (linker), stack is the measured high-water mark, instructions are exact counts on an emulated Cortex-M7 (Unicorn); latency is an estimate (instructions / assumed IPC / 216 MHz) and labelled so. The paper measures latency on STM32 boards.",
        "Baseline: the TF-Lite Micro arena is measured by the real interpreter (x86 build; its activation bytes carry over to Cortex-M); its reference kernels are our C port of TF-Lite Micro's portable reference kernels (same loop structure), since TF-Lite Micro itself is not built for Cortex-M here. CMSIS-NN is not available offline, so the paper's comparison with CMSIS-NN is not made.",
        "A model that does not fit the STM32F746 is still measured: the same code is linked for the same core with 4 MB memories (QEMU's MPS2-AN500 map).",
        tinynas_scale(r),
        search_scale(r),
        table2_scale(r),
        table3_scale(r),
        table6_scale(r),
        f"Profile: {r.profile}.",
    ]


# ---------------------------------------------------------------------- the page
PATCH_C_TITLE = "Patch-based inference in the generated C code (MCUNetV2 Fig. 6: on-device)"
STREAM_TITLE = "Patch-based inference with the input streamed (MCUNetV2's convention, generated C)"
FITS_COLUMNS = [
    ("reference", "TF-Lite Micro-style (reference kernels, TFLM arena)"),
    ("tinyengine", "TinyEngine-style (ours)"),
    ("tinyengine_patch", "TinyEngine-style + patches (ours)"),
    ("tinyengine_stream", "+ patches, input streamed (ours)"),
]
FUZZ_COMMAND = "python -m common.mcu fuzz"
RUNTIME_KEYS = [("mcunet_train", "float/train_seconds"), ("mcunet_deploy", "deploy_seconds")]
ENGINE_INTRO = (
    "Same int8 `.tflite` for both. SRAM: activation arenas (TF-Lite Micro: the interpreter's own "
    'arena "head"; ours: activations + kernel scratch of the generated code). Flash: the linked '
    "Cortex-M7 image. Instructions: one inference, counted exactly in emulation."
)
PATCH_C_INTRO = (
    "The deploy stage also generates the TinyEngine-style code with the first stage run tile by "
    "tile (the split with the smallest generated arena within the MAC budget), builds it for the "
    "Cortex-M7 and checks it bit for bit like the others. Here the whole input frame stays in the "
    "arena during the patch stage (as TF-Lite Micro's arena holds it), so these arenas are larger "
    "than the analytic ones above; scratch buffers count too."
)
STREAM_INTRO = (
    "The same patch-based code with the input frame kept out of SRAM: each tile's input window is "
    "requested from the caller (`model_read_input`, the interface a camera or sensor driver would "
    "provide; under emulation a semihosting call whose copy costs no Cortex-M7 instructions, on the "
    "host the harness's frame). This is how MCUNetV2's analytic numbers count the input. The split "
    "is chosen again for the smallest generated arena without the frame. TF-Lite Micro's arena must "
    "hold the whole input tensor, and so does our per-layer code."
)
RUNTIME_INTRO = (
    "Seconds of work per stage on this machine, from the stages' own metrics (training: the sum of "
    "the epochs, resumed runs included; deployment and ablation: the stage's run; each stage process "
    "also takes about 10 s to start). LeNet-5 is trained by Deep Compression's baseline stage."
)

SPEC = ReportSpec(
    paper="mcunet",
    title="MCUNet / TinyEngine (NeurIPS 2020) and MCUNetV2 patch-based inference (NeurIPS 2021): replication report",
    intro="""
MCUNet co-designs networks (TinyNAS) and an inference engine (TinyEngine) for microcontrollers;
MCUNetV2 adds patch-based inference for the memory-heavy first stage
([arXiv:2007.10319](https://arxiv.org/abs/2007.10319), [arXiv:2110.15352](https://arxiv.org/abs/2110.15352)).
This report covers the deployment side. Every network is converted to int8 with TF-Lite's recipe,
exported as a `.tflite` and run in four executors whose outputs must agree bit for bit: our numpy
reference, our generated C on the host, the same C on an emulated Cortex-M7 (STM32F746 memory
limits enforced by the linker), and the real TF-Lite Micro interpreter (`tflite-micro` wheel).
Code: [`common/mcu/`](../../common/mcu/) (engine), [`papers/mcunet/`](../../papers/mcunet/) (stages).
""",
    config=MCUNetProfile,
    track=lambda cfg: cfg.deploy,
    flags=[
        ("ablation", {"type": Path, "required": True, "help": "steps.json of the ablation stage"}),
        (
            "tinynas",
            {"type": Path, "default": None, "help": "results.json of the TinyNAS search stage"},
        ),
        ("fuzz", {"type": Path, "required": True, "help": "summary.json of the fuzz stage"}),
        ("space", {"type": Path, "required": True, "help": "results.json of the space stage"}),
        (
            "codesign",
            {"type": Path, "default": None, "help": "results.json of the co-design stage"},
        ),
        (
            "table2",
            {"type": Path, "default": None, "help": "results.json of the Table 2 training stage"},
        ),
        (
            "table3",
            {"type": Path, "default": None, "help": "results.json of the Table 3 stage"},
        ),
        (
            "table6",
            {"type": Path, "default": None, "help": "results.json of the Table 6 stage"},
        ),
    ],
    derive=derive,
    scaled_down=scaled_down,
    sections=[
        MetricTable(
            "The networks",
            rows=models,
            row_header="Model",
            columns=cols(
                (data_input, "Data, input"),
                ("{row}/macs", "MMACs", mega),
                ("{row}/params", "M params", mega),
                ("{row}/float_accuracy", "Float acc. %"),
                ("{row}/int8_accuracy", "Int8 acc. % (our C code)"),
                ("{row}/eval_samples", "Test images", count),
            ),
        ),
        Group(
            "TinyEngine vs TF-Lite Micro (MCUNet Section 3.2; TinyEngine README)",
            [
                MetricTable(
                    "",
                    rows=models,
                    row_header="Model",
                    intro=ENGINE_INTRO,
                    columns=cols(
                        ("{row}/tflm/arena_head_bytes", "TF-Lite Micro arena kB (interpreter)", kb),
                        ("{row}/tinyengine/arena_bytes", "TinyEngine-style arena kB", kb),
                        ("{row}/sram_reduction", "SRAM ratio"),
                        ("{row}/reference/flash_bytes", "Flash kB, reference kernels", kb),
                        ("{row}/tinyengine/flash_bytes", "Flash kB, ours", kb),
                        ("{row}/reference/instructions", "Instructions, reference kernels", count),
                        ("{row}/tinyengine/instructions", "Instructions, ours", count),
                        ("{row}/instruction_reduction", "Instruction ratio"),
                        ("{row}/tinyengine/latency_ms_estimate", "Latency ms @216 MHz (estimate)"),
                    ),
                ),
                Figure("", "memory.png", draw=draw_memory, alt="peak SRAM"),
            ],
        ),
        Group(
            "Optimisation ablation (MCUNet Figs. 4-7)",
            [Text("", ablation_table), Figure("", "ablation.png", draw_ablation, alt="ablation")],
        ),
        MetricTable(
            "Patch-based inference (MCUNetV2 Table 1)",
            rows=patch_rows,
            row_header="Model",
            intro="Analytic plans of our memory planner, MCUNetV2's convention: activations only, "
            "the input frame streamed tile by tile (only its tiles count).",
            columns=cols(
                (analytic("tinyengine/plan_bytes", "per_layer_bytes"), "Per-layer peak kB", kb),
                (analytic("patch/peak_bytes", "per_patch_bytes"), "Per-patch peak kB", kb),
                (analytic("patch_reduction", "reduction"), "Reduction"),
                (extra_macs, "Extra MACs", pct),
                (lambda k, r: stage_of(k if k == "patch_mbv2" else f"{k}/patch", r), "Patch stage"),
            ),
        ),
        patch_c("tinyengine_patch", PATCH_C_TITLE, PATCH_C_INTRO),
        patch_c("tinyengine_stream", STREAM_TITLE, STREAM_INTRO),
        MetricTable(
            "Fits / does not fit the STM32F746 (320 kB SRAM, 1 MB flash)",
            rows=models,
            row_header="Model",
            columns=cols(*((fits(e), header) for e, header in FITS_COLUMNS)),
        ),
        Group(
            "The engine on models it was not written for (fuzz campaign)",
            [
                Text("", fuzz_text),
                Figure("", "fuzz_memory.png", draw=draw_fuzz_memory, alt="SRAM, ours vs TFLM"),
            ],
        ),
        Group(
            "TinyNAS stage 1: search-space optimisation (MCUNet Section 3.1, Fig. 3)",
            [
                Text("", space_text),
                Figure(
                    "", "space_cdf.png", draw=draw_space_cdf, alt="MACs CDF of fitting networks"
                ),
                Figure("", "space_grid.png", draw=draw_space_grid, alt="mean MACs over the grid"),
            ],
        ),
        Text(
            "TinyNAS stage 2: one-shot search under the engine's memory (MCUNet Section 3.1)",
            search_text,
        ),
        Group(
            "Co-design, memory half: the largest member that fits each engine (MCUNet Table 2)",
            [
                Text("", codesign_text),
                Figure("", "codesign.png", draw=draw_codesign, alt="MACs against peak SRAM"),
            ],
        ),
        Group(
            "Co-design, accuracy half: the six cells trained (MCUNet Table 2)",
            [
                Text("", table2_text),
                Figure("", "table2.png", draw=draw_table2, alt="Table 2 accuracies"),
            ],
        ),
        Group(
            "Co-design under latency limits (MCUNet Table 3)",
            [
                Text("", table3_text),
                Figure("", "table3.png", draw=draw_table3, alt="Table 3 accuracies"),
            ],
        ),
        Group(
            "The chosen space against random spaces (MCUNet Table 6)",
            [
                Text("", table6_text),
                Figure("", "table6.png", draw=draw_table6, alt="Table 6 accuracies"),
            ],
        ),
        Targets(),
        Text("Run time", lambda r: f"{RUNTIME_INTRO}\n\n{runtime_table(r)}"),
        Text("Bit-exactness", bit_exact),
    ],
)


def main(argv: list[str] | None = None) -> int:
    return report_main(SPEC, argv)


if __name__ == "__main__":
    raise SystemExit(main())
