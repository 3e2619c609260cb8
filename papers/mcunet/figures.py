"""The MCUNet report's figures: peak SRAM per engine, and the optimisation ablation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.report.figures import pyplot, save
from common.report.spec import ReportData

# (legend, metric under <model>/): the bars of the memory figure, one group per network
MEMORY_SERIES = [
    ("TF-Lite Micro arena", "tflm/arena_head_bytes"),
    ("TinyEngine-style (per layer)", "tinyengine/arena_bytes"),
    ("+ patch-based, generated C (input frame in SRAM)", "tinyengine_patch/arena_bytes"),
    ("+ patch-based, generated C (input streamed)", "tinyengine_stream/arena_bytes"),
    ("+ patch-based, analytic (input streamed)", "patch/peak_bytes"),
]


def draw_memory(r: ReportData, path: Path) -> None:
    """Peak activation SRAM of every network in every executor, against the STM32F746's 320 kB."""
    plt = pyplot()
    keys = list(r.config.models)
    labels = [r.config.models[k].label or k for k in keys]
    fig, ax = plt.subplots(figsize=(9, 4))
    x = np.arange(len(keys))
    width = 0.8 / len(MEMORY_SERIES)
    for i, (name, metric) in enumerate(MEMORY_SERIES):
        vals = [r.metrics.get(f"{k}/{metric}", 0) / 1024 for k in keys]
        ax.bar(x + (i - (len(MEMORY_SERIES) - 1) / 2) * width, vals, width, label=name)
    ax.axhline(320, color="k", ls="--", lw=1, label="STM32F746 SRAM (320 kB)")
    ax.set_xticks(x, labels, rotation=15, ha="right")
    ax.set_ylabel("peak activation SRAM (kB)")
    ax.legend(fontsize=8)
    save(fig, path)


def draw_ablation(r: ReportData, path: Path) -> bool:
    """Instructions of each ablation step (``--ablation``'s steps.json); ``False`` without it."""
    steps = r.json(r.args.ablation)
    if not steps:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [s["key"] for s in steps["steps"]]
    vals = [s["instructions"] / 1e6 for s in steps["steps"]]
    ax.barh(labels[::-1], vals[::-1], color="tab:blue")
    ax.set_xlabel("Cortex-M7 instructions (millions), emulated")
    ax.set_title(f"{steps['model']}: optimisations switched on one by one")
    save(fig, path)
    return True


def draw_fuzz_memory(r: ReportData, path: Path) -> bool:
    """Our per-layer arena against TF-Lite Micro's for every random model of the fuzz campaign
    (``--fuzz``'s summary.json), log-log, with the diagonal; ``False`` without it."""
    rep = r.json(r.args.fuzz)
    mem = [m for m in (rep or {}).get("memory", []) if m["tflm"] == m["tflm"] and m["tflm"] > 0]
    if not mem:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    tflm = np.array([m["tflm"] for m in mem]) / 1024
    ours = np.array([m["tinyengine"] for m in mem]) / 1024
    extends = np.array([m["scratch"] > 0 for m in mem])
    ax.scatter(tflm[~extends], ours[~extends], s=14, label="scratch fits in gaps")
    ax.scatter(tflm[extends], ours[extends], s=14, marker="x", label="scratch extends the arena")
    lo, hi = min(tflm.min(), ours.min()) * 0.8, max(tflm.max(), ours.max()) * 1.25
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="equal")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("TF-Lite Micro arena (kB, interpreter)")
    ax.set_ylabel("ours, per layer: activations + scratch (kB)")
    ax.set_title(f"{len(mem)} random int8 models")
    ax.legend(fontsize=8)
    save(fig, path)
    return True
