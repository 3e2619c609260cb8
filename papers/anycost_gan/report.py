"""Stage ``anycost_gan_report``: ``reports/anycost_gan/`` from the metrics, the stages' figures and
``claims.yaml``.

The comparisons the claims read are derived here (``metrics/anycost_gan/derived.json``): FID
differences in units of their own noise (the standard deviation of one generator's FID over
the evaluation's latent seeds, combined over the two generators compared), the consistency gain of
distillation, the conditioned discriminator's gain on the sub-generators, and the paper
generator's MACs in G.
"""

from __future__ import annotations

import math
import shutil
import statistics
from pathlib import Path

from common.report.spec import (
    Col,
    Figure,
    Group,
    MetricTable,
    ReportData,
    ReportSpec,
    RunTime,
    Text,
    When,
    report_main,
    stage_seconds,
)
from papers.anycost_gan import channels as ch
from papers.anycost_gan.config import PHASES, AnycostGanProfile


def _k(ratio: float, res: int) -> str:
    return f"{ratio:g}x{res}"


def _size(r: ReportData) -> int:
    return r.config.generator.size


def _res(r: ReportData, phase: str = "anycost") -> list[int]:
    p = r.config.phases.get(phase)
    n = p.anycost.n_res if p else 1
    return [_size(r) // 2**i for i in range(n)]


def fid_sigma(metrics: dict, phase: str, size: int) -> float | None:
    """The standard deviation of the phase's full-generator FID over the latent seeds."""
    values = [metrics.get(f"{phase}/fid@{_k(1.0, size)}")]
    values += [v for k, v in metrics.items() if k.startswith(f"{phase}/fid_seed")]
    values = [v for v in values if v is not None]
    return statistics.stdev(values) if len(values) >= 2 else None


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def sub_mean(metrics: dict, phase: str, what: str, size: int, res: list[int]) -> float | None:
    """Mean of a metric over the phase's sub-generators (every ratio x resolution but the full)."""
    return _mean([metrics.get(f"{phase}/{what}@{_k(q, r)}") for q in ch.RATIOS for r in res
                  if (q, r) != (1.0, size)])  # fmt: skip


def derive(m: dict[str, float], r: ReportData) -> dict[str, float]:
    size, res = _size(r), _res(r)
    out: dict[str, float] = {}
    sig = {p: fid_sigma(m, p, size) for p in PHASES}
    for p, s in sig.items():
        if s is not None:
            out[f"compare/fid_sigma_{p}"] = s

    def gap(a_key: str, a: str, b_key: str, b: str) -> float | None:
        """(FID a - FID b) in units of their combined seed noise."""
        va, vb = m.get(a_key), m.get(b_key)
        if va is None or vb is None or sig.get(a) is None or sig.get(b) is None:
            return None
        noise = math.hypot(sig[a], sig[b])
        return (va - vb) / noise if noise > 0 else None

    full = _k(1.0, size)
    pairs = {
        "compare/multires_minus_single_sigma": (f"multires/fid@{full}", "multires", f"single_ft/fid@{full}", "single_ft"),
        "compare/allres_minus_multires_sigma": (f"allres/fid@{full}", "allres", f"multires/fid@{full}", "multires"),
        "compare/anycost_half_minus_small_sigma": (f"anycost/fid@{_k(0.5, size)}", "anycost", f"small/fid@{full}", "small"),
        "compare/anycost_minus_multires_sigma": (f"anycost/fid@{full}", "anycost", f"multires/fid@{full}", "multires"),
    }  # fmt: skip
    for name, args in pairs.items():
        v = gap(*args)
        if v is not None:
            out[name] = v
    for p in ("anycost", "nodistill", "nocond"):
        for what in ("fid", "class_agree", "perceptual", "mse"):
            v = sub_mean(m, p, what, size, res)
            if v is not None:
                out[f"compare/{p}_sub_{what}_mean"] = v
    if (
        "compare/anycost_sub_class_agree_mean" in out
        and "compare/nodistill_sub_class_agree_mean" in out
    ):
        out["compare/distill_agree_gain"] = (
            out["compare/anycost_sub_class_agree_mean"]
            - out["compare/nodistill_sub_class_agree_mean"]
        )
        out["compare/distill_perceptual_ratio"] = (
            out["compare/nodistill_sub_perceptual_mean"]
            / out["compare/anycost_sub_perceptual_mean"]
        )
    if "compare/anycost_sub_fid_mean" in out and "compare/nocond_sub_fid_mean" in out:
        noise = math.hypot(sig.get("anycost") or 0.0, sig.get("nocond") or 0.0)
        diff = out["compare/nocond_sub_fid_mean"] - out["compare/anycost_sub_fid_mean"]
        out["compare/gcond_sub_fid_gain"] = diff
        if noise > 0:
            out["compare/gcond_sub_fid_gain_sigma"] = diff / noise
    for q in ch.RATIOS:
        for rr in (1024, 512, 256, 128):
            v = m.get(f"configf/macs@{_k(q, rr)}")
            if v is not None:
                out[f"configf/gmacs@{_k(q, rr)}"] = v / 1e9
    red = [v for k, v in m.items() if k.startswith("latency/reduction@")]
    if red:
        out["latency/reduction_max"] = max(red)
    fspeed = [v for k, v in m.items() if k.startswith("configf/speedup@")]
    if fspeed:
        out["configf/speedup_max"] = max(fspeed)
    out.update(stage_seconds(m))
    return out


# ---------------------------------------------------------------------- figures from the stages
def copy_figure(*parts: str):
    """A draw function that copies a PNG a stage wrote (``--runs``/<parts>) into the report."""

    def draw(r: ReportData, path: Path) -> bool:
        source = Path(r.args.runs).joinpath(*parts)
        if not source.is_file():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        return True

    return draw


def draw_previews(r: ReportData, path: Path) -> bool:
    """The latency stage's preview strips (one per seed of ``preview_seeds``), one under another."""
    from PIL import Image

    files = [Path(r.args.runs) / "latency" / f"preview_seed{s}.png" for s in r.config.preview_seeds]
    images = [Image.open(f).convert("RGB") for f in files if f.is_file()]
    if not images:
        return False
    width = max(im.width for im in images)
    canvas = Image.new("RGB", (width, sum(im.height for im in images)), "white")
    top = 0
    for im in images:
        canvas.paste(im, (0, top))
        top += im.height
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return True


def draw_search(r: ReportData, path: Path) -> bool:
    """Distance to the full output against MACs: uniform sub-generators and searched ones."""
    data = r.json(Path(r.args.runs) / "search" / "search.json")
    if not data:
        return False
    from common.report.figures import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for res in sorted({u["res"] for u in data["uniform"]}):
        pts = sorted((u["macs"] / 1e6, u["distance"]) for u in data["uniform"] if u["res"] == res)
        ax.plot(*zip(*pts, strict=True), "o--", label=f"uniform ratios, {res} px", alpha=0.7)
    pts = sorted((s["macs"] / 1e6, s["distance"]) for s in data["searched"])
    ax.plot(*zip(*pts, strict=True), "r*-", markersize=10, label="searched (flexible)")
    for s in data["searched"]:
        ax.axvline(s["limit_macs"] / 1e6, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("MMACs (paper convention)")
    ax.set_ylabel("distance to the full output\n(MSE + perceptual)")
    ax.legend(fontsize=7)
    save(fig, path)
    return True


# ---------------------------------------------------------------------- tables
def _grid_rows(r: ReportData) -> list[tuple[str, str]]:
    res = _res(r)
    return [(f"{q:g}x channels, {rr} px", _k(q, rr)) for q in sorted(ch.RATIOS, reverse=True)
            for rr in res]  # fmt: skip


def _phase_rows(r: ReportData) -> list[tuple[str, str]]:
    return [(f"`{p}`: {r.config.phases[p].label}", p) for p in PHASES if p in r.config.phases]


def _at(what: str, ratio: float, res_of=None):
    def get(row: str, r: ReportData):
        res = _size(r) if res_of is None else res_of(r)
        return r.m(f"{row}/{what}@{_k(ratio, res)}")

    return get


def _low(r: ReportData) -> int:
    return _size(r) // 2


def _derived(name: str):
    return lambda row, r: r.m(f"compare/{row}_{name}")


def _sigma(row: str, r: ReportData):
    return r.m(f"compare/fid_sigma_{row}")


def _configf_rows(r: ReportData) -> list[tuple[str, str]]:
    return [(f"{q:g}x", f"{q:g}") for q in sorted(ch.RATIOS, reverse=True)]


def _configf(what: str, res: int, scale: float = 1.0):
    def get(row: str, r: ReportData):
        v = r.m(f"configf/{what}@{row}x{res}")
        return None if v is None else v * scale

    return get


def _scaled_down(r: ReportData) -> list[str]:
    c = r.config
    g = c.generator
    lines = [f"Profile: {r.profile}."]
    if c.data.dataset == "colour_digits":
        lines += [
            f"Data: {g.size} px colour digits ({c.data.train_images or 'all'} training images) "
            "instead of FFHQ at 1024 px, generated at MNIST-M's recipe (full-contrast, centred, "
            "untinted digits; the classification papers' colour digits fade, shift and tint "
            "them, strokes a GAN trained for minutes on a CPU learns too late).",
            f"Generator: config-F's channel table x {g.multiplier:g} capped at {g.cap} (the paper: "
            f"x 2 capped at 512), style width {g.style_dim}, {g.n_mlp} mapping layers (8); "
            f"{_size(r)}/{_size(r) // 2}/{_size(r) // 4} px outputs instead of 1024-128 px.",
            "FID and KID use the 128 features of a colour-digit classifier trained here "
            "(Inception-v3's weights cannot be downloaded on these machines), on "
            f"{c.evaluate.samples} samples against {c.data.eval_images} held-out real images "
            "(the paper: 50k samples, Inception, the training images): our FIDs rank the "
            "generators of this run and are not comparable with published FIDs.",
            "Consistency uses the digit class the same network reads (the paper: 40 CelebA "
            "attributes) and an LPIPS-form distance on its activations (the paper: LPIPS-VGG).",
        ]
    steps = {p: (ph.train.steps or 0) for p, ph in c.phases.items()}
    lines.append(
        "Training steps (batch "
        + ", ".join(f"{p} {s}" for p, s in steps.items())
        + "): the schedules are ours, a few thousand steps; the paper's are 357 + 20 + 130 epochs "
        "of FFHQ. R1 weight and EMA decay are ours too (see params.yaml)."
    )
    lines.append(
        "Latency is batch-1 wall clock on this machine's CPU; the paper's generator is timed with "
        "random weights (latency does not depend on them)."
    )
    return lines


def _scale(claim, r: ReportData) -> str:
    if claim.kind == "architecture":
        return "the paper's 1024 px config-F generator, built and counted here"
    if claim.id.startswith("ffhq"):
        return "paper profile only (FFHQ, Inception FID)"
    if claim.id.startswith("speed"):
        return "the paper's generator (random weights) timed on this machine's CPU"
    return (
        f"{r.profile} profile: {_size(r)} px colour digits, a generator of config-F's table x "
        f"{r.config.generator.multiplier:g}"
    )


def _real_confident(r: ReportData) -> str:
    v, c = r.m("anycost/real_confident"), r.m("anycost/real_classes")
    if v is None:
        return "not measured"
    return f"{v:.1f}%" + ("" if c is None else f"; digit classes of real images: {c:.2f}")


SPEC = ReportSpec(
    paper="anycost_gan",
    title="Anycost GAN (Lin, Zhang, Ganz, Han, Zhu, CVPR 2021): replication report",
    intro=(
        "One StyleGAN2 generator whose sub-generators (fewer channels, lower output resolution) "
        "run at a fraction of its cost and give previews that look like its full output. Trained "
        "here in the paper's three stages (single resolution, sampled multi-resolution, adaptive "
        "channels with the consistency loss and the generator-conditioned discriminator) with the "
        "ablations fine-tuned from the same starts. Code: [`papers/anycost_gan/`](../../papers/anycost_gan/)."
    ),
    config=AnycostGanProfile,
    derive=derive,
    scale=_scale,
    scaled_down=_scaled_down,
    flags=[("runs", {"type": Path, "required": True, "help": "runs/anycost_gan"})],
    sections=[
        Figure(
            "Samples of every sub-generator",
            "samples_anycost.png",
            copy_figure("eval", "anycost", "samples.png"),
            alt="samples per channel ratio and resolution",
            intro="The adaptive-channel generator: rows are uniform channel ratios, columns output "
            "resolutions (low ones shown enlarged); every cell draws the same six latents and noise.",
        ),
        Group(
            "Preview strips",
            [
                Text(
                    "",
                    "One latent from the cheapest sub-generator to the full one, with MACs and "
                    "batch-1 milliseconds on this CPU (`python -m papers.anycost_gan.preview --seed N` "
                    "draws any other).",
                ),
                Figure("", "previews.png", draw_previews, alt="preview strips"),
            ],
        ),
        When(
            lambda r: r.m(f"anycost/fid@{_k(1.0, _size(r))}") is not None,
            MetricTable(
                "Quality, consistency and cost of every sub-generator",
                rows=_grid_rows,
                columns=[
                    Col("anycost/fid@{row}", "FID", digits=3),
                    Col("anycost/kid@{row}", "KID", digits=3),
                    Col(
                        "anycost/confident@{row}",
                        "Reads as a digit (%)",
                        digits=3,
                    ),
                    Col("anycost/classes@{row}", "Digit classes (of 10)", digits=3),
                    Col(
                        "anycost/class_agree@{row}",
                        "Class agrees with full (%)",
                        digits=3,
                    ),
                    Col("anycost/perceptual@{row}", "Perceptual dist.", digits=3),
                    Col("anycost/mse@{row}", "MSE", digits=3),
                    Col("latency/macs@{row}", "MMACs", digits=4, scale=1e-6),
                    Col("latency/reduction@{row}", "MAC reduction (x)", digits=3),
                    Col("latency/ms@{row}", "ms (batch 1)", digits=3),
                    Col("latency/speedup@{row}", "Speed-up (x)", digits=3),
                ],
                row_header="Sub-generator",
                intro=lambda r: (
                    "The adaptive-channel phase (`anycost`). Consistency compares each sub-generator "
                    "with the full one on the same latents and noise (the full output area-resized to the "
                    'sub-generator\'s resolution for MSE). "Reads as a digit": the share of samples the '
                    "colour-digit classifier gives one class with probability above 0.9 (real images: "
                    + _real_confident(r)
                    + '). "Digit classes": exp of the entropy of the histogram of the digits the '
                    "classifier reads in the samples, how many of the ten the generator draws "
                    "(1: collapsed onto one). MACs in the paper's convention."
                ),
            ),
            "The evaluation did not run at this profile.",
            title="Quality, consistency and cost of every sub-generator",
        ),
        MetricTable(
            "The paper's generator: MACs and latency on this CPU",
            rows=_configf_rows,
            columns=[
                *[
                    Col(_configf("macs", rr, 1e-9), f"GMACs {rr} px", digits=3)
                    for rr in (1024, 512, 256, 128)
                ],
                Col(_configf("ms", 1024), "ms 1024 px", digits=4),
                Col(_configf("ms", 256), "ms 256 px", digits=4),
                Col(_configf("speedup", 256), "speed-up at 256 px (x)", digits=3),
            ],
            row_header="Channel ratio",
            intro="StyleGAN2 config-F at 1024 px as the reference code builds it (the uniform-ratio "
            "rule caps every layer at 512 channels *after* scaling, so 0.5x leaves the 4-32 px layers at "
            "512). MACs count the modulated convolutions and ToRGB layers, the upsampling transposed "
            "convolution on its (2H+1)^2 output: the convention that gives the paper's 144G. Latency: "
            "batch 1 on this CPU, random weights (a dash: not timed at this profile).",
        ),
        MetricTable(
            "Ablations",
            rows=_phase_rows,
            columns=[
                Col(_at("fid", 1.0), "FID full (32 px)", digits=3),
                Col(_at("confident", 1.0), "Reads as a digit (%)", digits=3),
                Col(_at("classes", 1.0), "Digit classes", digits=3),
                Col(_sigma, "FID seed std", digits=2),
                Col(_at("fid", 1.0, _low), "FID full, 16 px", digits=3),
                Col(_at("fid", 0.5), "FID 0.5x ch.", digits=3),
                Col(_derived("sub_fid_mean"), "Sub-gen. FID mean", digits=3),
                Col(_derived("sub_class_agree_mean"), "Class agree mean (%)", digits=3),
                Col(_derived("sub_perceptual_mean"), "Perceptual mean", digits=3),
                Col("{row}/steps", "Steps", digits=5),
                Col("{row}/train_seconds", "Train s", digits=4),
            ],
            row_header="Phase",
            intro="Every phase evaluated the same way (columns where the phase has the outputs). "
            "`single_ft` continues single-resolution training as long as `multires`/`allres` train, so "
            "the resolution ablation compares equal step counts; `anycost`, `nodistill` and `nocond` "
            "fine-tune the same multi-resolution start equally long; `small` (every layer at 0.5x) "
            "trains alone for as many steps as the whole anycost chain. Sub-generator means are over "
            "every ratio and resolution but the full one.",
        ),
        Figure(
            "Samples of the other phases",
            "samples_single.png",
            copy_figure("eval", "single_ft", "samples.png"),
            alt="samples of single-resolution training",
        ),
        Figure(
            "",
            "samples_multires.png",
            copy_figure("eval", "multires", "samples.png"),
            alt="samples of multi-resolution training",
        ),
        Figure(
            "",
            "samples_nodistill.png",
            copy_figure("eval", "nodistill", "samples.png"),
            alt="samples without distillation",
        ),
        Figure(
            "",
            "samples_small.png",
            copy_figure("eval", "small", "samples.png"),
            alt="samples of the separately trained 0.5x generator",
        ),
        Figure(
            "Budgeted search",
            "search.png",
            draw_search,
            alt="distance to the full output against MACs",
            intro="Once-for-All's evolutionary search over flexible configurations (a ratio per "
            "convolution and an output resolution) under MAC budgets, minimising the distance to the "
            "full output; the uniform sub-generators for comparison.",
        ),
        MetricTable(
            "",
            rows=lambda r: [(f"{b:g} of the full MACs", f"{b:g}") for b in r.config.search.budgets],
            columns=[
                Col("search/macs@{row}", "MMACs", digits=4, scale=1e-6),
                Col("search/distance@{row}", "Distance (searched)", digits=3),
                Col(
                    "search/uniform_distance@{row}",
                    "Best uniform within budget",
                    digits=3,
                ),
            ],
            row_header="Budget",
        ),
        Group(
            "Consistency-aware projection",
            [
                MetricTable(
                    "",
                    rows=[("plain (alpha = 0)", "plain"), ("consistency-aware", "aware")],
                    columns=[
                        Col(
                            "projection/full_error_{row}",
                            "Full reconstruction error",
                            digits=3,
                        ),
                        Col(
                            "projection/sub_error_{row}",
                            "Sub-generators' error",
                            digits=3,
                        ),
                        Col(
                            "projection/sub_full_gap_{row}",
                            "Sub vs full",
                            digits=3,
                        ),
                    ],
                    row_header="Projection",
                    intro="Held-out real images projected into W+ (Adam from the mean latent), without "
                    "and with the sub-generators' term; errors are MSE + perceptual distance.",
                ),
                Figure(
                    "",
                    "projection.png",
                    copy_figure("projection", "projection.png"),
                    alt="projections",
                ),
            ],
        ),
        MetricTable(
            "The feature network",
            rows=[("colour-digit classifier", "features")],
            columns=[
                Col("{row}/test_error", "Test error (%)", digits=3),
                Col("{row}/dim", "Features", digits=4),
            ],
            row_header="Network",
            intro="FID, KID, class consistency and the perceptual distance all read this network.",
        ),
        RunTime(40),
    ],
)


def main(argv: list[str] | None = None) -> int:
    return report_main(SPEC, argv)


if __name__ == "__main__":
    raise SystemExit(main())
