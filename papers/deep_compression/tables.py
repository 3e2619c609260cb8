"""The report's hand-built tables and notes: Table 1's mix of claim cells and analogue rows, the
rates after each stage, and the tables of the analysis stages' side files (points and rows that
are not flat metrics)."""

from __future__ import annotations

from typing import Any

from common.report.markdown import fmt, mark, table
from common.report.spec import ReportData, cell
from papers.deep_compression.figures import LABELS, NETS


def table1(r: ReportData) -> str:
    """Table 1 (claims: ours (paper) mark) and the analogue's rows in italics."""
    claims, pv = r.claims, r.paper_value

    def c(metric: str, claim: str = "", digits: int = 3, unit: str = "") -> str:
        res = claims.get(claim)
        text = cell(r.m(metric), None if res is None else res.paper, digits, unit)
        return text if res is None else f"{text} {mark(res)}"

    def weights_only(net: str) -> str:
        size, rate = r.m(f"{net}/compressed/size_weights_kb"), r.m(f"{net}/compressed/rate_weights")
        return "–" if size is None else f"{fmt(size)} KB, {fmt(rate)}×"

    rows = []
    for net in ("lenet300", "lenet5"):
        b, k, t, label = f"{net}/baseline/", f"{net}/compressed/", f"table1.{net}.", LABELS[net]
        rows += [
            [f"{label} reference", c(b + "test_error", t + "ref_error", unit="%"), "–",
             c(b + "size_kb", t + "ref_size", 4, " KB"), "–", "–"],
            [f"{label} compressed", c(k + "test_error", t + "compressed_error", unit="%"), "–",
             c(k + "size_kb", t + "compressed_size", unit=" KB"),
             c(k + "rate", t + "rate", unit="×"), weights_only(net)],
        ]  # fmt: skip
    for net in ("alexnet", "vgg16"):
        p, t, label = f"{net}/imagenet/", f"table1.{net}.", LABELS[net]
        rows += [
            [f"{label} reference", c(p + "ref_top1_error", t + "ref_top1_error", 4, "%"),
             c(p + "ref_top5_error", t + "ref_top5_error", 4, "%"),
             c(p + "original_mb", t + "ref_size", unit=" MB"), "–", "–"],
            [f"{label} compressed",
             c(p + "compressed_top1_error", t + "compressed_top1_error", 4, "%"),
             c(p + "compressed_top5_error", t + "compressed_top5_error", 4, "%"),
             c(p + "size_mb", t + "compressed_size", unit=" MB"),
             c(p + "rate", t + "rate", unit="×"), "–"],
        ]  # fmt: skip
    if r.m("vgg/compressed/test_error") is not None:
        b, k, label = "vgg/baseline/", "vgg/compressed/", LABELS["vgg"]
        rows += [
            [f"*{label} reference*", c(b + "test_error", digits=4, unit="%"), "–",
             c(b + "size_kb", digits=4, unit=" KB"), "–", "–"],
            [f"*{label} compressed*", c(k + "test_error", digits=4, unit="%"), "–",
             c(k + "size_kb", digits=4, unit=" KB"), c(k + "rate", digits=4, unit="×"),
             weights_only("vgg")],
        ]  # fmt: skip
    rate, ref = pv("table2.lenet300.total.rate_pqh"), pv("table1.lenet300.ref_size")
    note = (
        "Each cell: ours (paper). *Size* and *rate* are those of the compressed file: every byte "
        "needed to rebuild the model (header, codebooks, Huffman code tables, bit streams, float32 "
        "biases, checksum); the compressed error is that of the model decoded from that file. The "
        f"paper's sizes match its weight-only accounting (LeNet-300-100: {fmt(rate)}% of "
        f"{fmt(ref)} KB = {fmt(rate * ref / 100, 3)} KB), which the last column applies to ours: "
        "the compressed layers' streams, codebooks and code tables only. AlexNet and VGG-16 run "
        "only at the `paper` profile (ImageNet); a dash means not run at this profile. The "
        "*italic* rows are the laptop-scale analogue, a VGG-style network on colour digits, not "
        "one of the paper's networks."
    )
    tuned = [
        f"{LABELS[net]} {fmt(r.m(f'{net}/compressed/tuned/size_kb'))} KB "
        f"({fmt(r.m(f'{net}/compressed/tuned/rate'))}×)"
        for net in NETS
        if r.m(f"{net}/compressed/tuned/size_kb") is not None
    ]
    if tuned:
        note += (
            "\n\n*Beyond the paper*: the paper fixes one relative-index width per network "
            f"({fmt(pv('table2.lenet300.total.idx_bits_pq'))} bits for LeNet-300-100). With "
            "Huffman coding a wider index is usually cheaper (fewer filler entries outweigh longer "
            "codes); choosing the width per layer gives files of "
            + ", ".join(tuned)
            + " (`model_tuned.dcmp`; not used for any claim)."
        )
    headers = ["Network", "Top-1 error", "Top-5 error", "Size (file)", "Rate (file)"]
    return table([*headers, "Weights only: size, rate"], rows) + "\n\n" + note


def paper_total_check(prefix: str, source: str) -> Any:
    """A note when the paper's total P+Q+H rate is not the #W-weighted mean of its layer rows."""

    def note(r: ReportData) -> str:
        start = f"{prefix}."
        paper = {c.id[len(start) :]: c.paper for c in r.results if c.id.startswith(start)}
        layers = sorted({key.split(".")[0] for key in paper} - {"total"})
        try:
            weights = {la: paper[f"{la}.weights"] for la in layers}
            rates = {la: paper[f"{la}.rate_pqh"] for la in layers}
            total = paper["total.rate_pqh"]
        except KeyError:
            return ""
        implied = sum(weights[la] * rates[la] for la in layers) / sum(weights.values())
        if abs(implied - total) < 0.05:
            return ""
        return (
            f"Note: the paper's own layer rows of {source}, weighted by their weights, give a "
            f"total P+Q+H size of {implied:.2f}%, not the {total:g}% of its total row (a "
            f"compression of {100 / implied:.1f}× rather than {100 / total:.0f}×); our total is "
            "compared with the printed value."
        )

    return note


def staged_table(r: ReportData) -> str:
    """Each network's size and error after P, P+Q and P+Q+H, and the paper's ImageNet stages."""
    rows = []
    for net in r.config.compress:
        t, k = f"{net}/compressed/total/", f"{net}/compressed/"
        if r.m(t + "kept_pct") is None:
            continue
        rows.append(
            [
                LABELS.get(net, net),
                f"{fmt(r.m(f'{net}/baseline/test_error'))}%",
                f"{fmt(r.m(t + 'kept_pct'))}% ({fmt(r.m(f'{net}/derived/pruned_rate'))}×)",
                f"{fmt(r.m(f'{net}/pruned/test_error'))}%",
                f"{fmt(r.m(t + 'rate_pq_pct'))}% ({fmt(r.m(f'{net}/derived/pq_rate'))}×)",
                f"{fmt(r.m(t + 'rate_pqh_pct'))}% ({fmt(r.m(k + 'rate_weights'))}×)",
                f"{fmt(r.m(k + 'test_error'))}%",
                f"{fmt(r.m(k + 'size_pq_kb'))} → {fmt(r.m(k + 'size_kb'))} KB",
            ]
        )
    headers = ["Network", "Error (reference)", "After P: kept", "Error after P", "After P+Q"]
    headers += ["After P+Q+H", "Error after P+Q+H", "File: fixed-width → Huffman"]
    paper = []
    for tab, net in (("table4", "alexnet"), ("table5", "vgg16")):
        vals = [
            r.paper_value(f"{tab}.{net}.total.{k}") for k in ("kept_pct", "rate_pq", "rate_pqh")
        ]
        if None not in vals:
            stages = " → ".join(f"{v:g}% ({100 / v:.0f}×)" for v in vals)
            paper.append(f"{LABELS[net]} (Table {tab[-1]}) goes {stages}")
    return table(headers, rows) + (
        "\n\nPercentages are of the dense 32-bit weights of the compressed layers (the paper's "
        "rates, P counting only the weights kept, as its tables do); the last column is the real "
        "files, P+Q with fixed-width codes and P+Q+H with Huffman codes."
        + (" For comparison, the paper's " + "; ".join(paper) + "." if paper else "")
    )


def noise_note(error_pct: float, n: float | None) -> str:
    """One binomial standard deviation of a test error, to read small differences against."""
    if not n:
        return ""
    sd = 100 * (error_pct / 100 * (1 - error_pct / 100) / n) ** 0.5
    return (
        f"With {int(n):,} test images, one binomial standard deviation of an error near "
        f"{fmt(error_pct)}% is {sd:.2f} points: smaller differences between rows are noise."
    )


def side(r: ReportData, file: str) -> Any:
    """A side file of an analysis stage (points, rows), or ``None`` when it did not run."""
    return r.json(r.args.metrics_dir / file)


def tradeoff_text(r: ReportData) -> str:
    data = side(r, "tradeoff_lenet300.json")
    if not data:
        return "(the tradeoff stage did not run)"
    base = data["baseline_error"]
    rows = [
        [
            p["method"],
            p["label"],
            f"{fmt(p['size_pct'])}%",
            f"{fmt(p['error'])}%",
            f"{p['error'] - base:+.2f}",
        ]
        for p in data["points"]
    ]
    return (
        f"{LABELS.get(data['network'], data['network'])}, uncompressed error {fmt(base)}%; "
        f"'no loss' means at most +{data['no_loss_tolerance']:g} points.\n\n"
        + table(["Method", "Setting", "Size", "Error", "Δ error"], rows)
    )


def bitwidth_text(r: ReportData) -> str:
    data = side(r, "bitwidth_lenet5.json")
    if not data:
        return "(the bitwidth stage did not run)"
    rows = [["32 / 32 (pruned, unquantized)", f"{fmt(data['ref_error'])}%", "–", "–"]]
    for row in data["sweep"]:
        paper = r.paper_value(f"table6.{row['conv_bits']}_{row['fc_bits']}.delta_top1")
        rows.append(
            [
                f"{row['conv_bits']} / {row['fc_bits']}",
                f"{fmt(row['error'])}%",
                f"{row['delta']:+.2f}",
                "–" if paper is None else f"{paper:+.2f}",
            ]
        )
    headers = ["Conv bits / FC bits", "Top-1 error (ours)", "Δ top-1 (ours)"]
    return (
        f"{LABELS.get(data['network'], data['network'])} after pruning; each row quantizes a fresh "
        "copy (linear initialisation) and fine-tunes its centroids for the same budget.\n\n"
        + table([*headers, "Δ top-1 (paper, AlexNet)"], rows)
        + "\n\nTop-5 error is not meaningful on a 10-class task and is not reported. "
        + noise_note(data["ref_error"], r.m("lenet5/baseline/test_samples"))
    )


def init_text(r: ReportData) -> str:
    data = side(r, "bitwidth_lenet5.json")
    if not data or not data.get("init"):
        return ""
    bits = sorted({p["bits"] for p in data["init"]})
    err = {(p["init"], p["bits"]): p["error"] for p in data["init"]}
    rows = [
        [init, *[f"{fmt(err[(init, b)])}%" for b in bits]]
        for init in sorted({p["init"] for p in data["init"]})
    ]
    return (
        table(["Initialisation", *[f"{b} bits" for b in bits]], rows)
        + "\n\n"
        + noise_note(data["ref_error"], r.m("lenet5/baseline/test_samples"))
    )


def vgg_layers(r: ReportData) -> list[tuple[str, str]]:
    """The analogue's layers and total: in the model's order from its storage accounting, else
    (without the compress stage's files) in the order of the metric names."""
    storage = r.json(r.args.runs / "compressed" / "vgg" / "storage.json")
    if storage:
        return [(row["layer"], f"vgg/compressed/{row['layer']}") for row in storage["rows"]]
    start, end = "vgg/compressed/", "/rate_pqh_pct"
    keys = [k[: -len(end)] for k in r.metrics if k.startswith(start) and k.endswith(end)]
    return [(k[len(start) :], k) for k in keys]
