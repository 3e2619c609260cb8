"""The MCUNet report's figures: peak SRAM per engine, and the optimisation ablation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import NullFormatter, ScalarFormatter

from common.report.figures import pyplot, save
from common.report.spec import ReportData
from papers.mcunet.config import limit_label

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


def _budget_panels(r: ReportData) -> tuple[Any, list[tuple[Any, dict]]] | None:
    """One panel per MCU budget of the space stage's results (``--space``): the figure and
    ``(axes, budget results)`` pairs; None without the results."""
    budgets = (r.json(r.args.space) or {}).get("budgets", {})
    if not budgets:
        return None
    fig, axes = pyplot().subplots(1, len(budgets), figsize=(5.2 * len(budgets), 4), squeeze=False)
    # our engine's spaces (the engine TinyNAS is for); each budget's entry merged with them
    ours = [{**b, **b["engines"]["ours"]} for b in budgets.values()]
    return fig, list(zip(axes[0], ours, strict=True))


def draw_space_cdf(r: ReportData, path: Path) -> bool:
    """MCUNet Fig. 3 from our data: for each MCU budget, the cumulative distribution of the MACs
    of the random networks that fit, in the best space, the runner-up, the median space and the
    space that fits the most networks; ``False`` without the space stage's results."""
    if (panels := _budget_panels(r)) is None:
        return False
    fig, pairs = panels
    for ax, b in pairs:
        fitting = [s for s in b["spaces"] if s["fitting"]]
        ranked = sorted(fitting, key=lambda s: -s["mean_macs"])
        picks = ranked[:2] + ranked[len(ranked) // 2 : len(ranked) // 2 + 1]
        most = max(fitting, key=lambda s: (s["fitting"], s["mean_macs"]), default=None)
        if most is not None and most not in picks:
            picks.append(most)
        for i, s in enumerate(picks):
            macs = np.array(b["fitting_macs"][s["name"]]) / 1e6
            y = np.arange(1, len(macs) + 1) / s["samples"]
            label = (
                f"{s['name']}: mean {s['mean_macs'] / 1e6:.1f}M, {100 * s['fit_fraction']:.0f}% fit"
            )
            ax.step(macs, y, where="post", lw=2.2 if i == 0 else 1.2, label=label)
        bud = b["budget"]
        ax.set_title(
            f"{b['label']}\nours: {bud['sram_kb']:.0f} kB SRAM, {bud['flash_kb']:.0f} kB flash",
            fontsize=9,
        )
        ax.set_xlabel("MMACs of the networks that fit")
        ax.set_ylabel("cumulative share of the sampled networks")
        if picks:
            ax.legend(fontsize=7, loc="upper left")
        else:
            ax.text(0.5, 0.5, "no sampled network fits", ha="center", transform=ax.transAxes)
    save(fig, path)
    return True


def draw_space_grid(r: ReportData, path: Path) -> bool:
    """Mean MACs of the fitting networks over the resolution x width grid, one panel per budget
    (blank: nothing fits), the best space marked."""
    if (panels := _budget_panels(r)) is None:
        return False
    fig, pairs = panels
    for ax, b in pairs:
        rs = sorted({s["resolution"] for s in b["spaces"]})
        ws = sorted({s["width_mult"] for s in b["spaces"]})
        grid = np.full((len(rs), len(ws)), np.nan)
        for s in b["spaces"]:
            if s["fitting"]:
                grid[rs.index(s["resolution"]), ws.index(s["width_mult"])] = s["mean_macs"] / 1e6
        im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        ax.grid(False)
        ax.set_xticks(range(len(ws)), [f"{w:g}" for w in ws])
        ax.set_yticks(range(len(rs)), [str(x) for x in rs])
        ax.set_xlabel("width multiplier")
        ax.set_ylabel("resolution (px)")
        best = next((s for s in b["spaces"] if s["name"] == b["best"]), None)
        if best is not None:
            ax.plot(ws.index(best["width_mult"]), rs.index(best["resolution"]), "r*", ms=14)
        ax.set_title(b["label"], fontsize=9)
        fig.colorbar(im, ax=ax, label="mean MMACs of the fitting networks")
    save(fig, path)
    return True


# the families of the co-design table (tinynas.codesign.families) as the report names them
FAMILY_TITLES = {
    "mobilenet_v2": "Scaled MobileNetV2",
    "proxyless_mobile": "Scaled ProxylessNAS",
    "mcunet_style": "Scaled MCUNet-style",
    "tinynas": "TinyNAS (searched per engine)",
}


def draw_codesign(r: ReportData, path: Path) -> bool:
    """Table 2's memory half: every member of each family grid as (peak SRAM, MACs) under each
    engine, the budget's SRAM line, and the largest member that fits each engine circled;
    ``False`` without the co-design stage's results."""
    res = r.json(r.args.codesign) if getattr(r.args, "codesign", None) else None
    if not res or not res.get("families"):
        return False
    plt = pyplot()
    fams = list(res["families"].items())
    fig, axes = plt.subplots(1, len(fams), figsize=(5.2 * len(fams), 4.2), squeeze=False)
    budget = res["budget"]["sram_kb"]
    colours = {"tflm": "tab:red", "ours": "tab:blue"}
    for ax, (family, e) in zip(axes[0], fams, strict=True):
        for key, colour in colours.items():
            label = res["engines"][key]["label"]
            ms = e[key]["members"]
            sram = np.array([m["sram_bytes"] for m in ms]) / 1024
            macs = np.array([m["macs"] for m in ms]) / 1e6
            ax.scatter(sram, macs, s=12, color=colour, alpha=0.45, label=label)
            best = e[key]["largest"]
            if best is not None:
                ax.scatter(
                    [best["sram_bytes"] / 1024],
                    [best["macs"] / 1e6],
                    s=140,
                    facecolors="none",
                    edgecolors=colour,
                    linewidths=2,
                )
                ax.annotate(
                    f"{best['name']}",
                    (best["sram_bytes"] / 1024, best["macs"] / 1e6),
                    xytext=(6, 6),
                    textcoords="offset points",
                    fontsize=8,
                    color=colour,
                )
        ax.axvline(budget, color="black", ls="--", lw=1)
        ax.text(budget, ax.get_ylim()[1] * 0.95, f" budget {budget:.0f} kB", fontsize=8, va="top")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # plain numbers, no crowded minor labels
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(NullFormatter())
        ax.set_xticks([t for t in (5, 10, 20, 50, 100, 200, 500) if t <= ax.get_xlim()[1]])
        ax.set_xlabel("peak activation SRAM (kB)")
        ax.set_ylabel("MMACs")
        title = FAMILY_TITLES.get(family, family)
        ax.set_title(f"{title}: every width x resolution of the grid", fontsize=9)
        ax.legend(fontsize=8, loc="lower right")
    save(fig, path)
    return True


def draw_table2(r: ReportData, path: Path) -> bool:
    """Table 2's accuracy half: per network, each engine's cell as its mean accuracy (bar) and
    every seed's (dots), labelled with the cell's member; ``False`` without the stage's
    results."""
    res = r.json(r.args.table2) if getattr(r.args, "table2", None) else None
    if not res or not res.get("cells"):
        return False
    plt = pyplot()
    cells = res["cells"]
    families = list(dict.fromkeys(c["family"] for c in cells.values()))
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    colours = {"tflm": "tab:red", "ours": "tab:blue"}
    width = 0.38
    for j, (engine, colour) in enumerate(colours.items()):
        for i, family in enumerate(families):
            c = cells.get(f"{family}/{engine}")
            x = i + (j - 0.5) * width
            if c is None or not c["accuracies"]:
                ax.text(x, 1, "none\nfits", ha="center", va="bottom", fontsize=7)
                continue
            label = res["engines"][engine] if i == 0 else None
            ax.bar(x, c["mean"], width * 0.92, color=colour, alpha=0.6, label=label)
            ax.scatter([x] * len(c["accuracies"]), c["accuracies"], s=12, color="black", zorder=3)
            ax.annotate(
                c["name"],
                (x, c["mean"]),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                fontsize=7,
            )
    ax.set_xticks(range(len(families)), [FAMILY_TITLES.get(f, f) for f in families], fontsize=8)
    ax.set_ylabel("top-1 % (colour digits; dots: seeds)")
    ax.set_title("Same MCU budget, one training schedule: the cells of MCUNet Table 2", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    save(fig, path)
    return True


def draw_table3(r: ReportData, path: Path) -> bool:
    """Table 3: each row's accuracy (mean, seeds as dots) per latency column, the column's limit
    in its label; ``False`` without the stage's results."""
    res = r.json(r.args.table3) if getattr(r.args, "table3", None) else None
    if not res or not res.get("cells"):
        return False
    plt = pyplot()
    cols = res["columns"]
    labels = [
        "no limit"
        if c == "none"
        else f"{limit_label(c)}\n≤ {res['limits'][c]['latency_ms']:.1f} ms"
        for c in cols
    ]
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    styles = {
        "tflm": ("tab:red", "MobileNetV2, reference kernels + TF-Lite Micro plan"),
        "ours": ("tab:blue", "MobileNetV2, our engine"),
        "tinynas": ("tab:green", "TinyNAS, our engine"),
    }
    for j, (row, (colour, label)) in enumerate(styles.items()):
        xs, ys = [], []
        for i, col in enumerate(cols):
            c = res["cells"][col].get(row, {})
            x = i + (j - 1) * 0.08
            if not c.get("accuracies"):
                ax.text(x, 2, "none\nwithin", ha="center", va="bottom", fontsize=7, color=colour)
                continue
            xs.append(x)
            ys.append(c["mean"])
            ax.scatter([x] * len(c["accuracies"]), c["accuracies"], s=10, color=colour, alpha=0.5)
        ax.plot(xs, ys, "o-", color=colour, label=label)
    ax.set_xticks(range(len(cols)), labels, fontsize=8)
    ax.set_ylabel("top-1 % (colour digits; dots: seeds)")
    ax.set_ylim(0, 100)
    ax.set_title("Same MCU budget under latency limits: MCUNet Table 3", fontsize=9)
    ax.legend(fontsize=8, loc="lower left")
    save(fig, path)
    return True


def draw_table6(r: ReportData, path: Path) -> bool:
    """Table 6: each space's network accuracy (mean, seeds as dots) against the space's mean MACs
    of its fitting networks (stage 1's statistic), the chosen space marked; ``False`` without
    the stage's results."""
    res = r.json(r.args.table6) if getattr(r.args, "table6", None) else None
    if not res or not res.get("spaces"):
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, s in res["spaces"].items():
        chosen = s["role"] == "chosen"
        colour = "tab:green" if chosen else "tab:grey"
        x = s["space_mean_macs"] / 1e6
        ax.scatter([x] * len(s["accuracies"]), s["accuracies"], s=12, color=colour, alpha=0.5)
        ax.scatter([x], [s["mean"]], s=60, color=colour, marker="*" if chosen else "o",
                   label="chosen space (stage 1)" if chosen else None)  # fmt: skip
        ax.annotate(name, (x, s["mean"]), textcoords="offset points", xytext=(5, 4), fontsize=7)
    randoms = [res["spaces"][n]["mean"] for n in res["random"]]
    if randoms:
        mean = float(np.mean(randoms))
        ax.axhline(mean, color="tab:grey", ls="--", lw=1,
                   label=f"random spaces' mean ({len(randoms)})")  # fmt: skip
    ax.set_xlabel("space: mean MMACs of its networks that fit the budget (stage 1)")
    ax.set_ylabel("top-1 % of its largest fitting network (dots: seeds)")
    ax.set_title("The chosen space against random spaces: MCUNet Table 6", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    save(fig, path)
    return True
