"""Stage ``mcunet_report``: render ``reports/mcunet/`` from the deploy metrics and the claims.

Writes ``README.md`` (the TinyEngine vs TF-Lite Micro table, the optimisation ablation, the
patch-based inference table, which models fit, the paper's numbers beside ours),
``claims.json`` and ``figures/*.png``. Ratios are derived here from the measured bytes and
instruction counts; nothing is typed by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from common.report import (
    Section,
    evaluate_claims,
    fmt,
    load_claims,
    table,
)
from common.report.claims import load_metrics
from common.report.figures import pyplot, save
from common.report.publish import publish_report
from common.stage import run_stage
from papers.mcunet.stage import EXPERIMENT, load_config

STAGE = "mcunet_report"
TITLE = "MCUNet / TinyEngine (NeurIPS 2020) and MCUNetV2 patch-based inference (NeurIPS 2021): replication report"
INTRO = """
MCUNet co-designs networks (TinyNAS) and an inference engine (TinyEngine) for microcontrollers;
MCUNetV2 adds patch-based inference for the memory-heavy first stage
([arXiv:2007.10319](https://arxiv.org/abs/2007.10319), [arXiv:2110.15352](https://arxiv.org/abs/2110.15352)).
This report covers the deployment side. Every network is converted to int8 with TF-Lite's recipe,
exported as a `.tflite` and run in four executors whose outputs must agree bit for bit: our numpy
reference, our generated C on the host, the same C on an emulated Cortex-M7 (STM32F746 memory
limits enforced by the linker), and the real TF-Lite Micro interpreter (`tflite-micro` wheel).
Code: [`common/mcu/`](../../common/mcu/) (engine), [`papers/mcunet/`](../../papers/mcunet/) (stages).
"""


def _kb(v: float | None) -> str:
    return "–" if v is None else f"{v / 1024:,.1f}"


def derive(metrics: dict[str, float], models: list[str]) -> dict[str, float]:
    """Ratios and kB values the claims compare (from the measured bytes and counts)."""
    d = dict(metrics)

    def ratio(key: str, num: str, den: str) -> None:
        """d[key] = metrics[num] / metrics[den] when both are there (and non-zero)."""
        if metrics.get(num) and metrics.get(den):
            d[key] = metrics[num] / metrics[den]

    for m in models:
        ratio(f"{m}/sram_reduction", f"{m}/tflm/arena_head_bytes", f"{m}/tinyengine/arena_bytes")
        ratio(
            f"{m}/instruction_reduction",
            f"{m}/reference/instructions",
            f"{m}/tinyengine/instructions",
        )
        ratio(f"{m}/patch_reduction", f"{m}/tinyengine/plan_bytes", f"{m}/patch/peak_bytes")
        if metrics.get(f"{m}/tinyengine/sram_bytes") is not None:
            d[f"{m}/tinyengine/sram_kb"] = metrics[f"{m}/tinyengine/sram_bytes"] / 1024
        # patch-based C code (measured), the input frame in SRAM ("patch") or streamed
        # ("stream"): against TF-Lite Micro's arena and our per-layer code
        for engine, v in (("tinyengine_patch", "patch"), ("tinyengine_stream", "stream")):
            ratio(
                f"{m}/sram_reduction_{v}", f"{m}/tflm/arena_head_bytes", f"{m}/{engine}/arena_bytes"
            )
            ratio(
                f"{m}/{v}_reduction_measured",
                f"{m}/tinyengine/sram_bytes",
                f"{m}/{engine}/sram_bytes",
            )
            ours, per_layer = (metrics.get(f"{m}/{e}/instructions") for e in (engine, "tinyengine"))
            if ours and per_layer:
                d[f"{m}/{v}_instruction_overhead_pct"] = 100 * (ours / per_layer - 1)
    for k in ("per_layer", "per_patch"):
        if f"patch_mbv2/{k}_bytes" in metrics:
            d[f"patch_mbv2/{k}_kb"] = metrics[f"patch_mbv2/{k}_bytes"] / 1024
    if metrics.get("ablation/unroll/arena_bytes") and metrics.get("ablation/inplace/arena_bytes"):
        d["ablation/inplace_reduction"] = (
            metrics["ablation/unroll/arena_bytes"] / metrics["ablation/inplace/arena_bytes"]
        )
    return d


def models_table(m: dict[str, float], cfg: Any) -> str:
    rows = []
    for k, mc in cfg.models.items():
        rows.append(
            [
                mc.label or k,
                f"{mc.dataset.replace('_', ' ')}, {mc.resolution}x{mc.resolution}",
                fmt(m.get(f"{k}/macs", 0) / 1e6),
                fmt(m.get(f"{k}/params", 0) / 1e6),
                fmt(m.get(f"{k}/float_accuracy")),
                fmt(m.get(f"{k}/int8_accuracy")),
                fmt(int(m.get(f"{k}/eval_samples", 0))),
            ]
        )
    return table(
        [
            "Model",
            "Data, input",
            "MMACs",
            "M params",
            "Float acc. %",
            "Int8 acc. % (our C code)",
            "Test images",
        ],
        rows,
    )


def engine_table(m: dict[str, float], cfg: Any) -> str:
    rows = []
    for k, mc in cfg.models.items():
        rows.append(
            [
                mc.label or k,
                _kb(m.get(f"{k}/tflm/arena_head_bytes")),
                _kb(m.get(f"{k}/tinyengine/arena_bytes")),
                fmt(m.get(f"{k}/sram_reduction")),
                _kb(m.get(f"{k}/reference/flash_bytes")),
                _kb(m.get(f"{k}/tinyengine/flash_bytes")),
                fmt(int(m[f"{k}/reference/instructions"]))
                if f"{k}/reference/instructions" in m
                else "–",
                fmt(int(m[f"{k}/tinyengine/instructions"]))
                if f"{k}/tinyengine/instructions" in m
                else "–",
                fmt(m.get(f"{k}/instruction_reduction")),
                fmt(m.get(f"{k}/tinyengine/latency_ms_estimate")),
            ]
        )
    return table(
        [
            "Model",
            "TF-Lite Micro arena kB (interpreter)",
            "TinyEngine-style arena kB",
            "SRAM ratio",
            "Flash kB, reference kernels",
            "Flash kB, ours",
            "Instructions, reference kernels",
            "Instructions, ours",
            "Instruction ratio",
            "Latency ms @216 MHz (estimate)",
        ],
        rows,
    )


def fits_table(m: dict[str, float], cfg: Any) -> str:
    def cell(k: str, e: str) -> str:
        f = m.get(f"{k}/{e}/fits")
        if f is None:
            return "–"
        sram = m.get(f"{k}/{e}/sram_bytes") or m.get(f"{k}/{e}/static_sram_bytes")
        return f"{'**yes**' if f else 'no'} ({_kb(sram)} kB SRAM, {_kb(m.get(f'{k}/{e}/flash_bytes'))} kB flash)"

    engines = ("reference", "tinyengine", "tinyengine_patch", "tinyengine_stream")
    rows = [[mc.label or k, *(cell(k, e) for e in engines)] for k, mc in cfg.models.items()]
    return table(
        [
            "Model",
            "TF-Lite Micro-style (reference kernels, TFLM arena)",
            "TinyEngine-style (ours)",
            "TinyEngine-style + patches (ours)",
            "+ patches, input streamed (ours)",
        ],
        rows,
    )


def patch_table(m: dict[str, float], cfg: Any) -> str:
    rows = []
    for k, mc in cfg.models.items():
        rows.append(
            [
                mc.label or k,
                _kb(m.get(f"{k}/tinyengine/plan_bytes")),
                _kb(m.get(f"{k}/patch/peak_bytes")),
                fmt(m.get(f"{k}/patch_reduction")),
                f"{fmt(100 * m.get(f'{k}/patch/mac_overhead', 0))}%",
                f"{int(m.get(f'{k}/patch/patches', 0))}x{int(m.get(f'{k}/patch/patches', 0))}, first {int(m.get(f'{k}/patch/n_ops', 0))} ops",
            ]
        )
    if "patch_mbv2/per_layer_bytes" in m:
        rows.append(
            [
                f"MobileNetV2-w{fmt(m['patch_mbv2/width'])} @ {int(m['patch_mbv2/resolution'])} (MCUNetV2 Table 1 setting)",
                _kb(m["patch_mbv2/per_layer_bytes"]),
                _kb(m["patch_mbv2/per_patch_bytes"]),
                fmt(m["patch_mbv2/reduction"]),
                f"{fmt(m['patch_mbv2/mac_overhead_pct'])}%",
                f"{int(m['patch_mbv2/patches'])}x{int(m['patch_mbv2/patches'])}, first {int(m['patch_mbv2/n_ops'])} ops",
            ]
        )
    return table(
        [
            "Model",
            "Per-layer peak kB",
            "Per-patch peak kB",
            "Reduction",
            "Extra MACs",
            "Patch stage",
        ],
        rows,
    )


def patch_c_table(m: dict[str, float], cfg: Any, engine: str = "tinyengine_patch") -> str:
    """The generated patch-based C code (``engine``: the input frame in SRAM, or streamed with
    ``tinyengine_stream``), measured on the emulated Cortex-M7."""
    v = "stream" if engine == "tinyengine_stream" else "patch"
    rows = []
    for k, mc in cfg.models.items():
        if f"{k}/{engine}/n_ops" not in m:
            rows.append([mc.label or k, *["–"] * 9])
            continue
        p = int(m[f"{k}/{engine}/patches"])
        rows.append(
            [
                mc.label or k,
                f"{p}x{p}, first {int(m[f'{k}/{engine}/n_ops'])} ops",
                _kb(m.get(f"{k}/tflm/arena_head_bytes")),
                _kb(m.get(f"{k}/tinyengine/arena_bytes")),
                _kb(m.get(f"{k}/{engine}/arena_bytes")),
                fmt(m.get(f"{k}/sram_reduction_{v}")),
                f"{_kb(m.get(f'{k}/tinyengine/sram_bytes'))} → {_kb(m.get(f'{k}/{engine}/sram_bytes'))}",
                fmt(m.get(f"{k}/{v}_reduction_measured")),
                f"{fmt(100 * m[f'{k}/{engine}/mac_overhead'])}%",
                f"{fmt(m.get(f'{k}/{v}_instruction_overhead_pct'))}%",
            ]
        )
    return table(
        [
            "Model",
            "Patch stage",
            "TF-Lite Micro arena kB",
            "Ours per layer, arena kB",
            "Ours per patch, arena kB",
            "TFLM / per patch",
            "Cortex-M7 SRAM kB (static + stack), per layer → per patch",
            "Measured reduction",
            "Extra MACs",
            "Extra instructions",
        ],
        rows,
    )


def runtime_table(m: dict[str, float], cfg: Any) -> str:
    """Seconds of work per stage (training epochs, deployment, ablation) and their sum."""
    rows, total = [], 0.0
    for k in cfg.models:
        for stage, key in (
            ("mcunet_train", "float/train_seconds"),
            ("mcunet_deploy", "deploy_seconds"),
        ):
            v = m.get(f"{k}/{key}")
            if v is not None:
                rows.append([f"{stage}@{k}", fmt(v)])
                total += v
    if m.get("ablation/seconds") is not None:
        rows.append(["mcunet_ablation", fmt(m["ablation/seconds"])])
        total += m["ablation/seconds"]
    rows.append(["**total**", f"**{fmt(total)}** ({fmt(total / 60)} min)"])
    return table(["Stage", "Seconds"], rows)


def ablation_table(steps: dict[str, Any] | None) -> str:
    if not steps:
        return "(the ablation stage did not run)"
    rows = []
    ref = steps["steps"][0]["instructions"]
    prev = None
    for s in steps["steps"]:
        rows.append(
            [
                s["label"],
                fmt(s["instructions"]),
                fmt(ref / s["instructions"]),
                "–" if prev is None else f"{100 * (prev / s['instructions'] - 1):+.1f}%",
                _kb(s["arena_bytes"]),
            ]
        )
        prev = s["instructions"]
    return table(
        [
            "Step (cumulative)",
            "Instructions",
            "Speed-up vs reference",
            "Gain over previous step",
            "Arena kB",
        ],
        rows,
    )


def fig_memory(m: dict[str, float], cfg: Any, path: Path) -> Path:
    plt = pyplot()
    keys = list(cfg.models)
    labels = [cfg.models[k].label or k for k in keys]
    series = [
        ("TF-Lite Micro arena", [m.get(f"{k}/tflm/arena_head_bytes", 0) / 1024 for k in keys]),
        (
            "TinyEngine-style (per layer)",
            [m.get(f"{k}/tinyengine/arena_bytes", 0) / 1024 for k in keys],
        ),
        (
            "+ patch-based, generated C (input frame in SRAM)",
            [m.get(f"{k}/tinyengine_patch/arena_bytes", 0) / 1024 for k in keys],
        ),
        (
            "+ patch-based, generated C (input streamed)",
            [m.get(f"{k}/tinyengine_stream/arena_bytes", 0) / 1024 for k in keys],
        ),
        (
            "+ patch-based, analytic (input streamed)",
            [m.get(f"{k}/patch/peak_bytes", 0) / 1024 for k in keys],
        ),
    ]
    fig, ax = plt.subplots(figsize=(9, 4))
    x = np.arange(len(keys))
    width = 0.8 / len(series)
    for i, (name, vals) in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=name)
    ax.axhline(320, color="k", ls="--", lw=1, label="STM32F746 SRAM (320 kB)")
    ax.set_xticks(x, labels, rotation=15, ha="right")
    ax.set_ylabel("peak activation SRAM (kB)")
    ax.legend(fontsize=8)
    return save(fig, path)


def fig_ablation(steps: dict[str, Any] | None, path: Path) -> Path | None:
    if not steps:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [s["key"] for s in steps["steps"]]
    vals = [s["instructions"] / 1e6 for s in steps["steps"]]
    ax.barh(labels[::-1], vals[::-1], color="tab:blue")
    ax.set_xlabel("Cortex-M7 instructions (millions), emulated")
    ax.set_title(f"{steps['model']}: optimisations switched on one by one")
    return save(fig, path)


def scaled_down(profile: str, cfg: Any, m: dict[str, float]) -> list[str]:
    return [
        "Networks: the paper's architectures (MobileNetV2-w0.35, ProxylessNAS-w0.3) and a hand-written MCUNet-style net in TinyNAS's space (the searched mcunet-in2 config is not available offline), with 10-class heads, trained briefly on the 32-px colour digits upsampled to the paper's resolutions (so activation memory is as on ImageNet at those resolutions; flash is smaller: 10 instead of 1000 classes). Accuracies are not comparable with ImageNet's.",
        "Hardware: no board. Flash and static SRAM are exact (linker), stack is the measured high-water mark, instructions are exact counts on an emulated Cortex-M7 (Unicorn); latency is an estimate (instructions / assumed IPC / 216 MHz) and labelled so. The paper measures latency on STM32 boards.",
        "Baseline: the TF-Lite Micro arena is measured by the real interpreter (x86 build; its activation bytes carry over to Cortex-M); its reference kernels are our C port of TF-Lite Micro's portable reference kernels (same loop structure), since TF-Lite Micro itself is not built for Cortex-M here. CMSIS-NN is not available offline, so the paper's comparison with CMSIS-NN is not made.",
        "A model that does not fit the STM32F746 is still measured: the same code is linked for the same core with 4 MB memories (QEMU's MPS2-AN500 map).",
        f"Profile: {profile}.",
    ]


def run(args: argparse.Namespace) -> None:
    profile, cfg = load_config(args.params)
    files = sorted(p for p in args.metrics_dir.glob("*.json"))
    metrics = derive(load_metrics(files), list(cfg.models))
    steps = json.loads(args.ablation.read_text()) if args.ablation.is_file() else None
    claims = load_claims(args.claims)
    results = evaluate_claims(claims, metrics, scale=lambda c: f"{profile} profile")
    out: Path = args.out
    figs = out / "figures"
    mem = fig_memory(metrics, cfg, figs / "memory.png")
    abl = fig_ablation(steps, figs / "ablation.png")
    sections = [
        Section("The networks", models_table(metrics, cfg)),
        Section(
            "TinyEngine vs TF-Lite Micro (MCUNet Section 3.2; TinyEngine README)",
            "Same int8 `.tflite` for both. SRAM: activation arenas (TF-Lite Micro: the interpreter's own "
            'arena "head"; ours: activations + kernel scratch of the generated code). Flash: the linked '
            "Cortex-M7 image. Instructions: one inference, counted exactly in emulation.\n\n"
            + engine_table(metrics, cfg)
            + f"\n\n![peak SRAM](figures/{mem.name})",
        ),
        Section(
            "Optimisation ablation (MCUNet Figs. 4-7)",
            ablation_table(steps) + ("" if abl is None else f"\n\n![ablation](figures/{abl.name})"),
        ),
        Section(
            "Patch-based inference (MCUNetV2 Table 1)",
            "Analytic plans of our memory planner, MCUNetV2's convention: activations only, the "
            "input frame streamed tile by tile (only its tiles count).\n\n"
            + patch_table(metrics, cfg),
        ),
        Section(
            "Patch-based inference in the generated C code (MCUNetV2 Fig. 6: on-device)",
            "The deploy stage also generates the TinyEngine-style code with the first stage run "
            "tile by tile (the split with the smallest generated arena within the MAC budget), "
            "builds it for the Cortex-M7 and checks it bit for bit like the others. Here the whole "
            "input frame stays in the arena during the patch stage (as TF-Lite Micro's arena holds "
            "it), so these arenas are larger than the analytic ones above; scratch buffers count "
            "too.\n\n" + patch_c_table(metrics, cfg),
        ),
        Section(
            "Patch-based inference with the input streamed (MCUNetV2's convention, generated C)",
            "The same patch-based code with the input frame kept out of SRAM: each tile's input "
            "window is requested from the caller (`model_read_input`, the interface a camera or "
            "sensor driver would provide; under emulation a semihosting call whose copy costs no "
            "Cortex-M7 instructions, on the host the harness's frame). This is how MCUNetV2's "
            "analytic numbers count the input. The split is chosen again for the smallest "
            "generated arena without the frame. TF-Lite Micro's arena must hold the whole input "
            "tensor, and so does our per-layer code.\n\n"
            + patch_c_table(metrics, cfg, "tinyengine_stream"),
        ),
        Section(
            "Fits / does not fit the STM32F746 (320 kB SRAM, 1 MB flash)", fits_table(metrics, cfg)
        ),
        Section(
            "Run time",
            "Seconds of work per stage on this machine, from the stages' own metrics (training: "
            "the sum of the epochs, resumed runs included; deployment and ablation: the stage's "
            "run; each stage process also takes about 10 s to start). LeNet-5 is trained by Deep "
            "Compression's baseline stage.\n\n" + runtime_table(metrics, cfg),
        ),
        Section(
            "Bit-exactness",
            "Every deployed model produced identical int8 outputs in the numpy reference, the host C build, the emulated "
            "Cortex-M7 and tflite-micro on "
            + ", ".join(f"{int(metrics.get(f'{k}/check_inputs', 0))} ({k})" for k in cfg.models)
            + " test images (the deploy stage fails on any difference).",
        ),
    ]
    publish_report(
        out,
        paper="mcunet",
        title=TITLE,
        stage=STAGE,
        intro=INTRO,
        profile=profile,
        results=results,
        sections=sections,
        scaled_down=scaled_down(profile, cfg, metrics),
        experiment=EXPERIMENT,
        config=cfg.deploy,
    )


def _flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--claims", type=Path, required=True)
    p.add_argument("--metrics-dir", type=Path, required=True)
    p.add_argument("--ablation", type=Path, required=True, help="steps.json of the ablation stage")
    p.add_argument("--out", type=Path, required=True)


def main(argv: list[str] | None = None) -> int:
    return run_stage(__doc__.split("\n")[0], _flags, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
