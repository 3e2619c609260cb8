"""Stage ``fast_lidarnet_report``: ``reports/fast_lidarnet/`` from the metrics, the stages' side
files (design candidates, closed-loop traces, the scene) and ``claims.yaml``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.io import read_history
from common.report.figures import pyplot, save
from common.report.markdown import fmt, table
from common.report.spec import (
    Col,
    Figure,
    MetricTable,
    ReportData,
    ReportSpec,
    RunTime,
    Targets,
    Text,
    report_main,
    stage_seconds,
)
from papers.fast_lidarnet.config import FastLidarnetProfile

LABELS = {
    "sparse3d": "Fast-LiDARNet (sparse 3D -> BEV)",
    "resnet2d": "2D ResNet (BEV raster)",
    "dense3d": "Dense 3D (MinkowskiNet-style)",
}
FAILURE_LABELS = {
    "none": "no failure",
    "frame_drop": "frame drops",
    "blackout": "blackouts",
    "beam_loss": "beam loss",
    "occlusion": "occlusion",
    "noise_burst": "noise bursts",
}


def derive(m: dict[str, float], r: ReportData) -> dict[str, float]:
    return dict(stage_seconds(m))


def _runs(r: ReportData) -> Path:
    return Path(r.args.runs)


# ---------------------------------------------------------------------- figures
def draw_scene(r: ReportData, path: Path) -> bool:
    """Bird's-eye view of a test-map scene: scenery, the scan, the route and the forecast path."""
    f = _runs(r) / "drive" / "scene.npz"
    if not f.is_file():
        return False
    from common.driving import build_world
    from common.driving import draw_scene as draw

    with np.load(f) as z:
        s = {k: z[k] for k in z.files}
    world = build_world(r.config.data.world, int(s["seed"]))
    plt = pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 5.2), gridspec_kw={"width_ratios": [2, 1]})
    draw(ax, world, s["pose"], points=s["points"], path=s["path"], radius_m=35)
    ax.set_title("simulated scene: LiDAR points (colour = height), route, forecast path")
    ax2.imshow(np.stack([s["raster"][0], s["raster"][1], np.zeros_like(s["raster"][0])], -1),
               origin="upper")  # row 0 = farthest ahead  # fmt: skip
    ax2.set_title("noisy GPS map raster, the car at the bottom\n(red: route, green: roads)")
    ax2.set_xticks([])
    ax2.set_yticks([])
    save(fig, path)
    return True


def draw_uncertainty_vs_error(r: ReportData, path: Path) -> bool:
    """Open-loop |error| of the current curvature against the predicted uncertainty (binned)."""
    f = _runs(r) / "drive" / "uncertainty.npz"
    if not f.is_file():
        return False
    with np.load(f) as z:
        d = {k: z[k] for k in z.files}
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, kind in zip(axes, ("epistemic", "aleatoric"), strict=True):
        for name in r.config.models:
            if f"{name}_{kind}" not in d:
                continue
            u, e = d[f"{name}_{kind}"], d[f"{name}_error"] * 1000
            order = np.argsort(u)
            bins = np.array_split(order, 10)
            ax.plot([np.median(u[b]) for b in bins], [e[b].mean() for b in bins], "o-",
                    label=LABELS.get(name, name))  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel(f"predicted {kind} variance (deciles)")
        ax.set_ylabel("mean |curvature error| (1/km)")
        ax.legend(fontsize=7)
    save(fig, path)
    return True


def _trace(r: ReportData) -> tuple[str, dict] | None:
    data = r.json(_runs(r) / "drive" / "runs.json")
    if not data:
        return None
    fm = r.config.drive.fused_model
    for failure in ("blackout", "occlusion", "beam_loss", "noise_burst"):
        recs = data.get(f"{fm}/{failure}/evidential")
        if recs:
            return failure, recs[0]
    return None


def draw_uncertainty_over_time(r: ReportData, path: Path) -> bool:
    """Around the first failure episode of a closed-loop run: uncertainty, commands, failure."""
    found = _trace(r)
    if found is None:
        return False
    failure, rec = found
    failed = np.asarray(rec["failed"], dtype=bool)
    if not failed.any():
        return False
    start = int(np.argmax(failed))
    lo, hi = max(start - 25, 0), min(start + 45, len(failed))
    t = np.arange(lo, hi) * r.config.data.vehicle.dt
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    for ax in (a1, a2):
        for i in range(lo, hi):
            if failed[i]:
                ax.axvspan(i * r.config.data.vehicle.dt, (i + 1) * r.config.data.vehicle.dt,
                           color="red", alpha=0.12, lw=0)  # fmt: skip
    a1.semilogy(t, np.asarray(rec["epistemic"])[lo:hi], label="epistemic")
    a1.semilogy(t, np.asarray(rec["aleatoric"])[lo:hi], label="aleatoric")
    a1.set_ylabel("variance of the\ncurrent prediction")
    a1.legend(fontsize=7)
    a2.plot(t, np.asarray(rec["gamma"])[lo:hi] * 1000, label="current frame's prediction")
    a2.plot(t, np.asarray(rec["command"])[lo:hi] * 1000, label="fused command")
    a2.set_ylabel("curvature (1/km)")
    a2.set_xlabel(f"time (s); red: {FAILURE_LABELS.get(failure, failure)} injected")
    a2.legend(fontsize=7)
    save(fig, path)
    return True


def draw_training(r: ReportData, path: Path) -> bool:
    """Validation curvature error per epoch of every network."""
    files = {n: Path(r.args.metrics_dir) / f"train_{n}_history.csv" for n in r.config.models}
    if not any(p.is_file() for p in files.values()):
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, p in files.items():
        if p.is_file():
            rows = [row for row in read_history(p) if "eval_mae_now" in row]
            ax.plot([row["epoch"] for row in rows], [row["eval_mae_now"] for row in rows], "o-",
                    label=LABELS.get(name, name))  # fmt: skip
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation |curvature error| (1/km)")
    ax.legend(fontsize=7)
    save(fig, path)
    return True


# ---------------------------------------------------------------------- tables
def _models(r: ReportData) -> list[tuple[str, str]]:
    return [(LABELS.get(n, n), n) for n in r.config.models]


def _matched(what: str):
    """A baseline's cost at the sparse network's voxel size (the ratios' basis); the sparse
    network's own cost on its row."""

    def get(row: str, r: ReportData):
        return r.m(f"{row}/{what}") if row == "sparse3d" else r.m(f"{row}/matched_{what}")

    return get


def _design(r: ReportData) -> str:
    d = r.json(_runs(r) / "design" / "design.json")
    if not d:
        return "The design stage did not run at this profile."
    chosen = d["chosen"]
    rows = [
        [f"{c['voxel_size']:g}", c["width"], fmt(c["macs"] / 1e9, 3), fmt(c["latency_ms"], 3),
         "**chosen**" if c == chosen else ("" if c["latency_ms"] <= d["budget_ms"] else "over budget")]
        for c in d["candidates"]
    ]  # fmt: skip
    return (
        "Every candidate (voxel size x width of the sparse network, untrained weights) timed at "
        f"batch 1 on this CPU ({d['threads']} threads); the finest voxels, then the widest network, "
        f"within {d['budget_ms']:g} ms is chosen (`design` in params.yaml).\n\n"
        + table(["voxel (m)", "width", "GMACs", "latency (ms)", ""], rows, align="rrrrl")
    )


def _drive_table(r: ReportData) -> str:
    d, fm = r.config.drive, r.config.drive.fused_model
    if r.m(f"drive/{fm}/none/{d.fusions[0]}/takeovers_per_km") is None:
        return "The closed-loop stage did not run at this profile."
    rows = []
    for f in [*d.failures, "failures"]:
        label = "**all failure kinds**" if f == "failures" else FAILURE_LABELS.get(f, f)
        cells = [label]
        for mode in d.fusions:
            v = r.m(f"drive/{fm}/{f}/{mode}/takeovers_per_km")
            n = r.m(f"drive/{fm}/{f}/{mode}/takeovers")
            cells.append("–" if v is None else (f"{v:.2f}" + ("" if n is None else f" ({n:.0f})")))
        frac = r.m(f"drive/{fm}/{f}/{d.fusions[0]}/failed_fraction")
        cells.append("–" if frac is None else f"{100 * frac:.1f}%")
        rows.append(cells)
    km = r.m(f"drive/{fm}/none/{d.fusions[0]}/km")
    head = (
        f"Takeovers per km (count in brackets) of {LABELS.get(fm, fm)} driving the "
        f"{r.config.data.maps['test']} unseen test maps (about {0 if km is None else km:.2f} km per "
        "run); each failure kind's runs of the three modes meet the same failure episodes."
    )
    body = table(["injected failure", *[f"fusion: {m}" for m in d.fusions], "frames failed"], rows,
                 align="l" + "r" * (len(d.fusions) + 1))  # fmt: skip
    base = []
    for n in r.config.models:
        if n == fm:
            continue
        for f in d.baseline_failures:
            v = r.m(f"drive/{n}/{f}/none/takeovers_per_km")
            if v is not None:
                base.append([LABELS.get(n, n), FAILURE_LABELS.get(f, f), f"{v:.2f}"])
    extra = ""
    if base:
        extra = "The baselines, without fusion:\n\n" + table(
            ["model", "injected failure", "takeovers / km"], base, align="llr"
        )
    ci = []
    for other in ("none", "average"):
        v = r.m(f"compare/takeovers_evidential_over_{other}")
        lo = r.m(f"compare/takeovers_evidential_over_{other}_p05")
        hi = r.m(f"compare/takeovers_evidential_over_{other}_p95")
        if v is not None and lo is not None and hi is not None:
            ci.append(f"evidential over {other}: {v:.2f} (90% paired bootstrap interval "
                      f"{lo:.2f}-{hi:.2f})")  # fmt: skip
    tail = (
        (
            "Under failures, takeovers per km of " + "; ".join(ci) + ". An interval that "
            "includes 1 means the difference is within the noise of this many km."
        )
        if ci
        else ""
    )
    return "\n\n".join([head, body, tail, extra])


def _auroc(r: ReportData) -> str:
    rows = []
    for n in r.config.models:
        for f in r.config.drive.failures:
            e, a = r.m(f"auroc/{n}/{f}/epistemic"), r.m(f"auroc/{n}/{f}/aleatoric")
            if e is not None or a is not None:
                rows.append([LABELS.get(n, n), FAILURE_LABELS.get(f, f), fmt(e, 3) if e else "–",
                             fmt(a, 3) if a else "–"])  # fmt: skip
    if not rows:
        return "No closed-loop runs with failures at this profile."
    return (
        "How well the current frame's predicted variance separates corrupted frames from clean "
        "ones during the closed-loop runs (0.5: not at all, 1: perfectly). Frame drops are left "
        "out: the re-delivered scan is a clean one.\n\n"
        + table(["model", "failure", "AUROC epistemic", "AUROC aleatoric"], rows, align="llrr")
    )


def _kernels(r: ReportData) -> str:
    if r.m("kernels/naive_ms") is None:
        return "The kernel benchmark did not run at this profile."
    rows = []
    for impl, what in (
        (
            "naive",
            "naive: dictionary kernel map rebuilt every layer, one gather-matmul-scatter per offset",
        ),
        ("reuse", "+ vectorised hash map, reused by layers of the same stride"),
        ("optimized", "+ fused gather / grouped matmul (the optimised kernels)"),
        ("dense", "dense `conv3d` over the whole grid (same layers)"),
    ):
        ms, ms_b = r.m(f"kernels/{impl}_ms"), r.m(f"kernels/{impl}_train_ms")
        rows.append([what, fmt(ms, 3) if ms else "–", fmt(ms_b, 3) if ms_b else "–",
                     fmt(r.m("kernels/naive_ms") / ms, 3) if ms else "–"])  # fmt: skip
    n = r.m("kernels/active_sites")
    g = r.m("kernels/grid_sites")
    intro = (
        f"A stack of {r.config.kernels.layers} submanifold 3x3x3 convolutions and one strided one "
        f"({r.config.kernels.channels} channels) on {r.config.kernels.frames} validation scans "
        f"voxelised at {r.config.kernels.voxel_size:g} m"
        + (f" ({n:.0f} active of {g:.0f} sites, {100 * n / g:.2f}%)" if n and g else "")
        + "; median milliseconds on this CPU."
    )
    return intro + "\n\n" + table(["implementation", "forward (ms)", "forward + backward (ms)",
                                   "forward speed-up over naive"], rows, align="lrrr")  # fmt: skip


def _reconstructed(r: ReportData) -> str:
    return (
        "**What is known and what is ours.** No code of Fast-LiDARNet was released and its method "
        "and experiment sections could not be read. Known (abstract, Figure 1, the contribution "
        "list, MIT CSAIL's article): raw LiDAR points and a noisy topometric GPS map in; control "
        "and its uncertainty out, for the current and future steps; sparse convolution made fast "
        "by kernel optimisation and hardware-aware design; Hybrid Evidential Fusion of neighbouring "
        "frames' predictions with odometry correction; fewer takeovers under sensor failures; the "
        "ratios 6.2x / 89x and 11 FPS on an AGX Xavier. The evidential loss is the official one of "
        "the co-author's Deep Evidential Regression code. **Ours**: the simulated world, LiDAR and "
        "GPS model (`common/driving`); the pure-PyTorch sparse convolution (`common/sparse`); every "
        "layer, width and voxel size of the three networks; curvature as the control; the fusion "
        "rule, its thresholds and its fall-back (`papers/fast_lidarnet/fusion.py`); the failure "
        "kinds and rates; the takeover rule (the car's centre leaves its lane)."
    )


def _scaled_down(r: ReportData) -> list[str]:
    c = r.config
    d = c.data
    lines = [f"Profile: {r.profile}."]
    if d.source == "simulated":
        lines += [
            f"Data: a simulated world instead of a full-scale car: {sum(d.maps.values())} "
            f"procedural maps ({d.maps['train']} train, {d.maps['val']} validation, {d.maps['test']} "
            f"test), a {d.lidar.beams}-beam LiDAR at {d.lidar.azimuth_res_deg:g} deg azimuth "
            f"steps (real 32/64-beam sensors: 0.1-0.2 deg), the expert's commands as labels.",
            "Networks: small enough to train on 2 CPU cores in minutes (see the efficiency "
            "table); the paper's are unknown.",
        ]
    lines += [
        "Latency and FPS are batch-1 wall clock on this machine's CPU, not on the paper's NVIDIA "
        "Jetson AGX Xavier; MACs are counted on the executed operations.",
        "Takeovers are counted in simulation when the car's centre leaves its lane; the paper "
        "counts a safety driver's interventions on a real car.",
    ]
    return lines


SPEC = ReportSpec(
    paper="fast_lidarnet",
    title="Fast-LiDARNet (Liu, Amini, Zhu, Karaman, Han, Rus, ICRA 2021): replication report",
    intro=(
        "End-to-end driving from raw LiDAR points and a coarse GPS map: a sparse 3D network made "
        "fast by kernel optimisation and hardware-aware design, and Hybrid Evidential Fusion, "
        "which predicts current and future controls with their uncertainty in one pass and fuses "
        "them across frames. A documented reconstruction in a simulated world (see below). "
        "Code: [`papers/fast_lidarnet/`](../../papers/fast_lidarnet/)."
    ),
    config=FastLidarnetProfile,
    derive=derive,
    scaled_down=_scaled_down,
    flags=[("runs", {"type": Path, "required": True, "help": "runs/fast_lidarnet"})],
    sections=[
        Text("What is reconstructed", _reconstructed),
        Figure("A simulated scene", "scene.png", draw_scene, alt="bird's-eye view of a scene"),
        MetricTable(
            "Efficiency of the three networks",
            rows=_models,
            columns=[
                Col("{row}/gmacs", "GMACs", digits=3),
                Col("{row}/latency_ms", "CPU latency (ms)", digits=3),
                Col("{row}/fps", "FPS (CPU)", digits=3),
                Col(_matched("gmacs"), "GMACs at the sparse net's voxels", digits=3),
                Col(_matched("latency_ms"), "latency (ms) there", digits=3),
                Col("{row}/mae_now", "open-loop |error| now (1/km)", digits=3),
                Col("{row}/mae_all", "over the horizon (1/km)", digits=3),
                Col("{row}/params", "parameters", digits=3),
                Col("{row}/voxel_size", "voxel (m)"),
                Col("{row}/width", "width"),
            ],
            row_header="network",
            intro=lambda r: (
                "Batch 1, end to end from the points (voxelisation / rasterisation included); MACs "
                "of sparse convolutions counted on the active sites. The ratios of the claims use "
                "the columns measured at the sparse network's voxel size (a baseline trained on "
                "coarser voxels is measured there untrained: cost does not depend on the weights). "
                "Open-loop error on the test "
                "maps' frames (the labels' standard deviation is "
                + (fmt(r.m("sparse3d/label_std"), 3) if r.m("sparse3d/label_std") else "–")
                + " /km). The paper's Fast-LiDARNet runs at 11 FPS on an AGX Xavier; our FPS "
                "are this CPU's."
            ),
        ),
        Targets(),
        Text("Hardware-aware design (this CPU)", _design),
        Text("Sparse convolution kernels", _kernels),
        Text("Closed loop: takeovers under sensor failures", _drive_table),
        Text("Does the uncertainty flag failed frames?", _auroc),
        Figure(
            "Uncertainty around a failure",
            "uncertainty_time.png",
            draw_uncertainty_over_time,
            alt="uncertainty over time",
        ),
        Figure(
            "Uncertainty against error",
            "uncertainty_error.png",
            draw_uncertainty_vs_error,
            alt="uncertainty vs error",
        ),
        Figure("Training", "training.png", draw_training, alt="validation error per epoch"),
        RunTime(25.0),
    ],
)


def main(argv: list[str] | None = None) -> int:
    return report_main(SPEC, argv)


if __name__ == "__main__":
    raise SystemExit(main())
