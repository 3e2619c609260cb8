"""Stage ``lite_transformer_report``: ``reports/lite_transformer/`` from the metrics and ``claims.yaml``.

Ratios and differences are derived by :func:`derive` from the stage metrics
(``metrics/lite_transformer/derived.json``); the paper's curve points drawn beside ours are the
ones read from its figures (``PAPER_*`` below, with their source). Nothing of ours is typed by hand.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from common.report.figures import pyplot, save
from common.report.markdown import fixed, table
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
from papers.lite_transformer.config import LiteTransformerProfile

# The paper's points (Mult-Adds in millions, score), read from its trade-off figure shipped in the
# official repository (figures/tradeoff.png): (a) WMT'14 En-Fr BLEU, (b) WikiText-103 test PPL.
PAPER_MT = {
    "Transformer": [(86, 33.6), (340, 37.6), (525, 38.4), (1334, 39.9)],
    "Lite Transformer": [(90, 35.3), (361, 39.1), (527, 39.6), (1324, 40.8)],
}
PAPER_LM = {
    "Transformer": [(291, 32.3), (453, 28.4), (1153, 24.0), (2578, 22.0)],
    "Lite Transformer": [(242, 27.3), (376, 25.2), (580, 23.7), (1142, 22.2)],
}
# The compression figure (figures/compression.png): size in MB and BLEU of each step.
PAPER_COMPRESSION = [
    ("Transformer", 176.0, 39.9),
    ("Lite Transformer", 69.2, 39.6),
    ("+ 8-bit quantization", 17.3, 39.6),
    ("+ 8-bit quantization + pruning", 9.7, 39.5),
]


def _mt(r: ReportData, mixer: str) -> list[str]:
    return [
        k for k, m in r.config.active.items()
        if m.task == "translation" and m.mixer == mixer and m.ffn_ratio == (1.0 if mixer == "lsra" else 4.0)
    ]  # fmt: skip


def _lm(r: ReportData, mixer: str) -> list[str]:
    return [k for k, m in r.config.active.items() if m.task == "lm" and m.mixer == mixer]


def derive(metrics: dict[str, float], r: ReportData) -> dict[str, float]:
    """The differences and ratios the claims compare; left out when an input is missing."""
    d: dict[str, float] = {}

    def get(key: str) -> float | None:
        v = metrics.get(key)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    for k in (1, 2, 3):
        gain, t_bleu = get(f"compare/gain_{k}/difference"), get(f"mt_transformer_{k}/bleu")
        if gain is not None and t_bleu:
            d[f"tradeoff/b{k}/relative_gain"] = 100 * gain / t_bleu
        std = get(f"compare/gain_{k}/std")
        if std is not None and t_bleu:
            d[f"tradeoff/b{k}/relative_gain_std"] = 100 * std / t_bleu
        ratio, spread = (
            get(f"compare/gain_{k}/distance_ratio"),
            get(f"compare/gain_{k}/distance_ratio_std"),
        )
        if ratio is not None and spread is not None:
            d[f"analysis/b{k}/distance_ratio"] = ratio
            d[f"analysis/b{k}/distance_ratio_lower"] = ratio - 2 * spread
    t4, l3 = get("mt_transformer_4/mult_adds"), get("mt_lite_3/mult_adds")
    if t4 and l3:
        d["tradeoff/arrow/compute_ratio"] = t4 / l3
    for k in (1, 2):
        t, lite = get(f"lm_transformer_{k}/test_ppl"), get(f"lm_lite_{k}/test_ppl")
        if t and lite:
            d[f"lm/b{k}/ppl_gain"] = t - lite
            d[f"lm/b{k}/ppl_reduction_pct"] = 100 * (t - lite) / t
    ratio = lm_compute_ratio(metrics)
    if ratio is not None:
        d["lm/arrow/compute_ratio"], d["lm/arrow/bound"] = ratio
    share = get("mt_transformer_3/ffn_share")
    if share is not None:
        d["mt_transformer_3/ffn_share_pct"] = 100 * share
    c = {k: get(f"compress/{k}") for k in (
        "baseline_bytes", "quant_bytes", "quant_prune_bytes", "baseline_bleu", "quant_bleu",
        "quant_prune_bleu",
    )}  # fmt: skip
    t4_params, l3_params = get("mt_transformer_4/params_total"), get("mt_lite_3/params_total")
    if t4_params and l3_params:
        d["compression/transformer_over_lite"] = t4_params / l3_params
    if c["baseline_bytes"] and c["quant_bytes"]:
        d["compression/quant_ratio"] = c["baseline_bytes"] / c["quant_bytes"]
    if c["quant_bytes"] and c["quant_prune_bytes"]:
        d["compression/prune_ratio"] = c["quant_bytes"] / c["quant_prune_bytes"]
    if t4_params and c["quant_prune_bytes"]:
        d["compression/total_ratio"] = 4 * t4_params / c["quant_prune_bytes"]
    if c["baseline_bleu"] is not None and c["quant_bleu"] is not None:
        d["compression/quant_bleu_drop"] = c["baseline_bleu"] - c["quant_bleu"]
    if c["baseline_bleu"] is not None and c["quant_prune_bleu"] is not None:
        d["compression/quant_prune_bleu_drop"] = c["baseline_bleu"] - c["quant_prune_bleu"]
    lite3, copy = get("mt_lite_3/bleu"), get(f"baseline/{corpus_of(r, 'mt_lite_3')}/copy_bleu")
    if lite3 is not None and copy is not None:
        d["sanity/copy_margin"] = lite3 - copy
    # A model trained on one of the paper's corpora (the paper profile) also gives the absolute
    # scores the paper's README reports: <corpus>/<model>/{bleu, rouge_l, ppl}.
    for name, m in r.config.active.items():
        if r.config.corpora[m.corpus].kind == "bible":
            continue
        for key, out in (("bleu", "bleu"), ("rouge_l", "rouge_l"), ("test_ppl", "ppl")):
            v = get(f"{name}/{key}")
            if v is not None:
                d[f"{m.corpus}/{name}/{out}"] = v
    d.update(stage_seconds(metrics))
    return d


def corpus_of(r: ReportData, model: str) -> str:
    """The corpus a model is trained on (``bible`` if the profile does not run it)."""
    m = r.config.active.get(model)
    return "bible" if m is None else m.corpus


def copy_bleu(r: ReportData) -> float | None:
    """The BLEU of copying the source, on the test set of the largest Lite Transformer."""
    return r.m(f"baseline/{corpus_of(r, 'mt_lite_3')}/copy_bleu")


def uniform_distance(r: ReportData) -> float | None:
    """The mean attention distance of uniform attention on the analysed test sentences."""
    return r.m(f"analysis/{corpus_of(r, 'mt_lite_2')}/uniform_distance")


def lm_compute_ratio(metrics: dict[str, float]) -> tuple[float, float] | None:
    """Mult-Adds of the larger Transformer LM over those the Lite LM needs for its perplexity, by
    log-log interpolation between the two Lite LMs; ``(ratio, bound)`` with bound 0 (inside their
    range), -1 (a lower bound: the smaller Lite LM is already better) or +1 (an upper bound)."""
    try:
        t_madds, t_ppl = metrics["lm_transformer_2/mult_adds"], metrics["lm_transformer_2/test_ppl"]
        (m1, p1), (m2, p2) = (
            (metrics[f"lm_lite_{k}/mult_adds"], metrics[f"lm_lite_{k}/test_ppl"]) for k in (1, 2)
        )
    except KeyError:
        return None
    if t_ppl >= p1:
        return t_madds / m1, -1.0
    if t_ppl <= p2 or p1 == p2:
        return t_madds / m2, 1.0
    f = (math.log(p1) - math.log(t_ppl)) / (math.log(p1) - math.log(p2))
    need = math.exp(math.log(m1) + f * (math.log(m2) - math.log(m1)))
    return t_madds / need, 0.0


# ---------------------------------------------------------------------- figures
def _curve(r: ReportData, names: list[str], score: str) -> list[tuple[float, float]]:
    pts = [(r.m(f"{n}/mult_adds"), r.m(f"{n}/{score}")) for n in names]
    return sorted((x / 1e6, y) for x, y in pts if x is not None and y is not None)


def _two_panels(
    r: ReportData, path: Path, *, ours: dict, paper: dict, ylabel: str, what: str
) -> bool:
    if not any(ours.values()):
        return False
    plt = pyplot()
    from matplotlib import ticker

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, data, title in ((axes[0], ours, f"ours: {what}"), (axes[1], paper, "the paper")):
        for (label, pts), marker in zip(data.items(), ("s-", "o-"), strict=False):
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker, label=label)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("Mult-Adds (M), 30-token sentence")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    save(fig, path)
    return True


def _ours_and_paper(select: Any, score: str, paper: dict, ylabel: str, what: str) -> Any:
    """A figure drawer: our Transformer and Lite curves of ``score`` (models from ``select``)
    beside the paper's points."""

    def draw(r: ReportData, path: Path) -> bool:
        ours = {
            label: _curve(r, select(r, mixer), score)
            for label, mixer in (("Transformer", "attention"), ("Lite Transformer", "lsra"))
        }
        return _two_panels(r, path, ours=ours, paper=paper, ylabel=ylabel, what=what)

    return draw


draw_tradeoff = _ours_and_paper(_mt, "bleu", PAPER_MT, "BLEU", "En->Es Bible (test verses)")
draw_lm = _ours_and_paper(_lm, "test_ppl", PAPER_LM, "test perplexity", "English Bible verses")


def draw_attention(r: ReportData, path: Path) -> bool:
    maps_file = Path(r.args.runs) / "analysis" / "attention_maps.npz"
    if not maps_file.is_file():
        return False
    maps = np.load(maps_file)
    pair = [n for n in ("mt_transformer_2", "mt_lite_2") if f"{n}/l0" in maps.files]
    plt = pyplot()
    fig, axes = plt.subplots(
        1, len(pair) + 1, figsize=(4.5 * (len(pair) + 1) + 1, 4), squeeze=False,
        gridspec_kw={"wspace": 0.55},
    )  # fmt: skip
    axes = list(axes[0])
    for ax, name in zip(axes, pair, strict=False):
        ax.imshow(maps[f"{name}/l0"], cmap="viridis")
        ax.set_title(f"{r.config.active[name].label}: layer 1")
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
    names = [n for n, m in r.config.active.items() if r.m(f"{n}/attention_distance") is not None]
    ax = axes[-1]
    ax.barh(
        [n.replace("mt_", "") for n in names], [r.m(f"{n}/attention_distance") for n in names],
        color=["tab:orange" if r.config.active[n].mixer == "lsra" else "tab:blue" for n in names],
    )  # fmt: skip
    uniform = uniform_distance(r)
    if uniform is not None:
        ax.axvline(uniform, color="k", ls="--", lw=1, label="uniform attention")
        ax.legend(loc="lower left", fontsize=8)
    ax.set_xlabel("mean attention distance (tokens)")
    ax.set_title("encoder self-attention")
    save(fig, path)
    return True


# ---------------------------------------------------------------------- tables
def models(r: ReportData) -> list[tuple[str, str]]:
    return [(f"`{k}` ({m.label})", k) for k, m in r.config.active.items()]


def comparisons_table(r: ReportData) -> str:
    rows = []
    for key, (a, b) in r.config.analysis.comparisons.items():
        p = f"compare/{key}"
        rows.append([
            f"`{a}` − `{b}`", fixed(r.m(f"{a}/bleu")), fixed(r.m(f"{b}/bleu")), fixed(r.m(f"{p}/difference")),
            fixed(r.m(f"{p}/std")), fixed(None if r.m(f"{p}/win_rate") is None else 100 * r.m(f"{p}/win_rate"), 1),
        ])  # fmt: skip
    intro = (
        f"Paired bootstrap over the test verses ({r.config.evaluation.bootstrap} resamples): the "
        "standard deviation of the difference is the noise every BLEU gain above is read against."
    )
    header = [
        "A − B",
        "BLEU A",
        "BLEU B",
        "Difference",
        "Std (bootstrap)",
        "A wins (% of resamples)",
    ]
    return f"{intro}\n\n{table(header, rows)}"


def compression_table(r: ReportData) -> str:
    ours = [
        ("Transformer (budget 4, float32)", _mb(r.m("mt_transformer_4/params_total"), 4), r.m("mt_transformer_4/bleu")),
        ("Lite Transformer (budget 3, float32)", _mb(r.m("compress/baseline_bytes")), r.m("compress/baseline_bleu")),
        (f"+ {r.config.compress.bits}-bit weight sharing", _mb(r.m("compress/quant_bytes")), r.m("compress/quant_bleu")),
        ("+ sharing + pruning", _mb(r.m("compress/quant_prune_bytes")), r.m("compress/quant_prune_bleu")),
        ("  (same, Huffman-coded)", _mb(r.m("compress/quant_prune_huffman_bytes")), None),
    ]  # fmt: skip
    rows = []
    for i, (label, mb, bleu) in enumerate(ours):
        paper = PAPER_COMPRESSION[i] if i < len(PAPER_COMPRESSION) else None
        rows.append([
            label, "–" if mb is None else f"{mb * 1000:.1f} kB", fixed(bleu),
            "" if paper is None else paper[0], "" if paper is None else f"{paper[1]} MB",
            "" if paper is None else f"{paper[2]}",
        ])  # fmt: skip
    density = r.m("compress/density")
    note = (
        "Sizes are the bytes of the files the stage wrote (`runs/lite_transformer/compress/*.dcmp`, "
        "read back by `common.compress.read_compressed`), headers and codebooks included; the "
        "Transformer's is its float32 parameter count x 4. "
        + ("" if density is None else f"Weights kept after pruning: {100 * density:.1f}%.")
    )
    header = ["Ours", "Size", "BLEU", "Paper", "Size", "BLEU (WMT'14 En-Fr)"]
    return f"{table(header, rows)}\n\n{note}"


def _mb(v: float | None, scale: float = 1.0) -> float | None:
    return None if v is None else v * scale / 1e6


BOUNDS = {
    -1.0: " (a lower bound: the smaller Lite LM already beats the larger Transformer LM)",
    1.0: " (an upper bound: even the larger Lite LM does not reach it)",
}


def lm_note(r: ReportData) -> str:
    reductions = ", ".join(
        f"budget {k}: {fixed(r.m(f'lm/b{k}/ppl_reduction_pct'), 1)}%" for k in (1, 2)
    )
    bound = BOUNDS.get(r.m("lm/arrow/bound") or 0.0, "")
    return (
        f"Our perplexities are on sentence-level English verses with a {r.config.tokenizer.vocab_size:,}-piece joint "
        "vocabulary: not comparable in absolute value with WikiText-103's. Relative reductions: "
        f"{reductions}. The 2x arrow: {fixed(r.m('lm/arrow/compute_ratio'))}x{bound}."
    )


def scaled_down(r: ReportData) -> list[str]:
    cfg = r.config
    active = cfg.active
    mt = [m for m in active.values() if m.task == "translation"]
    steps = sorted({m.train.steps or 0 for m in active.values()})
    devices = sorted({m.train.device for m in active.values()})
    used = cfg.used_corpora
    if used and all(cfg.corpora[c].kind == "bible" for c in used):
        data = (
            "Data: English->Spanish verse pairs of the Bible (World English Bible x Reina-Valera "
            "1909, split by whole chapters) instead of WMT'14 En-Fr / En-De; English verses (two "
            "translations) instead of WikiText-103 for the language models."
        )
    else:
        data = (
            "Data: "
            + "; ".join(
                f"{c} ({cfg.corpora[c].label or cfg.corpora[c].kind}: {cfg.corpora[c].root or 'data/bible'})"
                for c in used
            )
            + "."
        )
    layers = sorted({m.layers for m in mt})
    skipped = [k for k, m in cfg.models.items() if m is None]
    lines = [
        f"Profile: {r.profile}.",
        data,
        f"Models: {' or '.join(map(str, layers)) or '?'} encoder + decoder layers each (the "
        "paper: 6 + 6); widths "
        + (
            "chosen for Mult-Adds budgets 60x below the paper's"
            if any(m.dim is None for m in mt)
            else "as the paper's configs"
        )
        + "; joint SentencePiece vocabularies of "
        + ", ".join(f"{cfg.tokenizer_for(c).vocab_size} ({c})" for c in used)
        + " pieces.",
        f"Training: {' or '.join(str(s) for s in steps)} optimizer steps (per model), batches of at "
        f"most {mt[0].max_tokens if mt else '?'} tokens x update frequency "
        f"{' or '.join(str(u) for u in sorted({m.update_freq for m in active.values()}))}, on "
        f"{' / '.join(devices)}, dropout "
        f"{' or '.join(f'{d:g}' for d in sorted({m.dropout for m in active.values()}))} "
        "(the paper: 50k steps on 8 GPUs, dropout 0.1-0.3).",
        f"Test: the first {cfg.evaluation.test_subset or 'all'} test sentences, beam "
        f"{cfg.evaluation.beam}, length penalty {cfg.evaluation.length_penalty} (the paper's test script).",
        "BLEU: tokenized BLEU on sacreBLEU's 13a tokens (the paper scores Moses-tokenized text with "
        "fairseq's score.py); sacreBLEU's own score is in the table of networks.",
    ]
    if skipped:
        lines.append(
            "Not run at this profile (paper-only rows, they need the paper's corpora): "
            + ", ".join(f"`{k}`" for k in skipped)
            + "."
        )
    return lines


SPEC = ReportSpec(
    paper="lite_transformer",
    title="Lite Transformer (Wu et al., ICLR 2020): replication report",
    intro="""Lite Transformer splits each layer's channels in half: one half goes through attention
(long range), the other through a convolution (short range; here the dynamic convolution with a GLU
input, as the paper's WMT models), and the feed-forward network is "flattened" (as wide as the
model). The paper reports more BLEU than a Transformer at the same mobile budget of Mult-Adds, the
same BLEU at 2.5x less computation, and an 18.2x smaller model after 8-bit quantization and
pruning. Here every model is trained and tested on a laptop CPU from one command.
Code: [`common/layers/`](../../common/layers/) (attention, convolutions, LSRA),
[`common/models/transformer.py`](../../common/models/transformer.py),
[`common/text/`](../../common/text/) (tokenizer, BLEU, decoding),
[`papers/lite_transformer/`](../../papers/lite_transformer/) (stages).

Mult-Adds follow the paper's convention: one 30-token source and target sentence, the layers only
(embeddings and the output projection excluded; with them, the paper's smallest WMT model would be
far above its 90M).""",
    config=LiteTransformerProfile,
    flags=[("runs", {"type": Path, "required": True, "help": "runs/lite_transformer"})],
    derive=derive,
    scaled_down=scaled_down,
    sections=[
        MetricTable(
            "The networks",
            rows=models,
            row_header="Model",
            columns=[
                Col("{row}/dim", "Width", digits=0),
                Col("{row}/mult_adds", "Mult-Adds (M)", scale=1e-6, digits=2),
                Col("{row}/params", "Params (K, w/o embeddings)", scale=1e-3, digits=0),
                Col("{row}/bleu", "BLEU", digits=2),
                Col("{row}/sacrebleu", "sacreBLEU", digits=2),
                Col("{row}/test_ppl", "Test PPL", digits=1),
                Col("{row}/latency_ms", "Latency ms (batch 1, CPU)", digits=1),
                Col("{row}/train_seconds", "Training s", digits=0),
            ],
            note=lambda r: (
                f"Copying the source sentence scores BLEU {fixed(copy_bleu(r))}. Latency: "
                "greedy decoding of a test verse, one at a time (translation), or one 30-token forward "
                "pass (language models); medians on a shared machine, so compare ratios."
            ),
        ),
        Figure(
            "BLEU against Mult-Adds (paper: trade-off figure a)",
            "tradeoff.png",
            draw_tradeoff,
            alt="BLEU vs Mult-Adds, ours and the paper's",
        ),
        Text("BLEU differences and their noise", comparisons_table),
        Figure(
            "Language modelling (paper: trade-off figure b)",
            "lm.png",
            draw_lm,
            alt="perplexity vs Mult-Adds",
            note=lm_note,
        ),
        Text("Compression (paper: compression figure)", compression_table),
        Figure(
            "Where the attention looks (paper: attention-weight figure)",
            "attention.png",
            draw_attention,
            alt="attention maps and mean attention distance",
            intro=lambda r: (
                "Encoder self-attention of one test verse (first layer), and the mean distance "
                "between a query and the keys it attends to, averaged over layers and test verses. "
                f"Attention spread evenly over every key would give {fixed(uniform_distance(r))} "
                "tokens: after a few hundred steps on a CPU the encoders' attention is still close "
                "to that, so the distances of the two models differ by well under 1%; the paper's "
                "maps come from fully trained WMT models."
            ),
        ),
        Targets(),
        RunTime(30, after="Training dominates: see the table of networks."),
    ],
)


def main(argv: list[str] | None = None) -> int:
    return report_main(SPEC, argv)


if __name__ == "__main__":
    raise SystemExit(main())
