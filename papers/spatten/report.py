"""Stage ``spatten_report``: ``reports/spatten/`` from the metrics and ``claims.yaml``.

The averages the claims compare are derived by :func:`derive` from the stage metrics
(``metrics/spatten/derived.json``); the curves come from the stages' JSON files. Nothing of ours is
typed by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

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
from papers.spatten.config import SpattenProfile, prefix

LABELS = {"paraphrase": "paraphrase (pair)", "section": "Bible section (single)"}
MODELS = {"base": "BERT-base", "large": "BERT-large", "gpt2": "GPT-2", "gpt2m": "GPT-2-medium"}


def row_label(row: str) -> str:
    """``base_sst2`` -> ``BERT-base sst2`` (SQuAD rows: scored by F1)."""
    if row in LABELS:
        return LABELS[row]
    model, bench = row.split("_", 1)
    return f"{MODELS.get(model, model)} {bench}" + (" (F1)" if bench.startswith("squad") else "")


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return sum(vals) / len(vals) if len(vals) == len(values) and vals else None


def derive(metrics: dict[str, float], r: ReportData) -> dict[str, float]:
    """The averages over the benchmarks and the shares in % that the claims compare."""

    def get(key: str) -> float | None:
        v = metrics.get(key)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    d: dict[str, float] = {}
    tasks = r.config.active("tasks")
    decoders = [prefix(x) for x in r.config.active("lms")]
    for key, out, decoder in (
        ("dram_reduction", "dram_reduction_mean", "dram_reduction"),
        ("token_reduction", "token_reduction_mean", "kv_reduction"),
        ("head_reduction", "head_reduction_mean", None),
        ("compute_reduction", "compute_reduction_mean", None),
        ("speedup", "cpu_speedup_mean", None),
    ):
        values = [get(f"{t}/{key}") for t in tasks]
        values += [get(f"{q}/{decoder}") for q in decoders] if decoder else []
        mean = _mean(values)
        if mean is not None:
            d[f"summary/{out}"] = mean
    for key, out, scale in (
        ("kv_reduction", "decoder_kv_reduction_mean", 1.0),
        ("token_reduction", "decoder_token_reduction_mean", 1.0),
        ("quant_saving", "decoder_quant_saving_mean", 1.0),
        ("requant_fraction", "decoder_requant_pct_mean", 100.0),
    ):
        mean = _mean([get(f"{q}/{key}") for q in decoders])
        if mean is not None:
            d[f"summary/{out}"] = scale * mean
    losses = []
    for t in tasks:
        change, std = get(f"{t}/accuracy_change"), get(f"{t}/accuracy_change_std")
        if change is not None and std is not None:
            losses.append(0.0 if change >= 0 else (-change / std if std > 0 else math.inf))
    for q in decoders:
        change, std = get(f"{q}/quant_ppl_change_pct"), get(f"{q}/quant_ppl_change_std_pct")
        if change is not None and std is not None:
            losses.append(0.0 if change <= 0 else (change / std if std > 0 else math.inf))
    expected = len(tasks) + len(decoders)
    if losses and len(losses) == expected and all(math.isfinite(x) for x in losses):
        d["summary/worst_loss_sigma"] = max(losses)
    kv = get("workload/gpt2_small/kv_fraction")
    if kv is not None:
        d["workload/gpt2_small/kv_pct"] = 100.0 * kv
    acc, majority = get("section/dense_test_accuracy"), get("section/majority_accuracy")
    if acc is not None and majority is not None:
        d["sanity/section_margin"] = acc - majority
    d.update(stage_seconds(metrics))
    return d


# ---------------------------------------------------------------------- figures
def _runs(r: ReportData) -> Path:
    return Path(r.args.runs)


def draw_tokens(r: ReportData, path: Path) -> bool:
    """Accuracy (perplexity) against the token reduction: cascade vs layer-local pruning."""
    curves = {t: r.json(_runs(r) / "prune" / t / "curves.json") for t in r.config.active("tasks")}
    decoders = {x: r.json(_runs(r) / "decode" / x / "curves.json") for x in r.config.active("lms")}
    panels = [t for t, c in curves.items() if c] + [x for x, c in decoders.items() if c]
    if not panels:
        return False
    plt = pyplot()
    cols = min(len(panels), 4)
    rows_n = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.6 * cols, 3.6 * rows_n), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, panels, strict=False):
        if name in decoders:
            rows = decoders[name]["token"]
            ax.plot([1.0] + [x["key_reduction"] for x in rows],
                    [r.m(f"{prefix(name)}/dense_ppl")] + [x["ppl"] for x in rows], "o-",
                    label="cascade")  # fmt: skip
            ax.set_ylabel("perplexity of generated tokens")
            ax.set_title(f"{name} decoder (summarise + generate)")
        else:
            for kind, style, label, x_key in (
                ("token_cascade", "o-", "cascade (SpAtten)", "token_reduction"),
                ("token_local", "s--", "layer-local", "key_reduction"),
            ):
                rows = curves[name][kind]
                ax.plot([x[x_key] for x in rows], [x["accuracy"] for x in rows], style, label=label)
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(row_label(name))
        ax.set_xlabel("token reduction (x)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, path)
    return True


def draw_heads(r: ReportData, path: Path) -> bool:
    curves = {t: r.json(_runs(r) / "prune" / t / "curves.json") for t in r.config.active("tasks")}
    curves = {t: c for t, c in curves.items() if c}
    if not curves:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, c in curves.items():
        ax.plot([x["head_reduction"] for x in c["head"]], [x["accuracy"] for x in c["head"]], "o-",
                label=row_label(name))  # fmt: skip
    ax.set_xlabel("head reduction (x)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    save(fig, path)
    return True


def draw_tau(r: ReportData, path: Path) -> bool:
    decoders = {x: r.json(_runs(r) / "decode" / x / "curves.json") for x in r.config.active("lms")}
    decoders = {x: c for x, c in decoders.items() if c and c["tau"]}
    if not decoders:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax2 = ax.twinx()
    for name, c in decoders.items():
        rows = c["tau"]
        taus = [x["tau"] for x in rows]
        ax.plot(taus, [x["ppl"] for x in rows], "o-", color="tab:blue", label=f"{name} perplexity")
        ax2.plot(taus, [100 * x["requant_fraction"] for x in rows], "s--", color="tab:red",
                 label=f"{name} re-fetches")  # fmt: skip
    ax.set_xlabel("tau (re-fetch K's LSBs when the largest probability is below)")
    ax.set_ylabel("perplexity", color="tab:blue")
    ax2.set_ylabel("attentions re-fetching LSBs (%)", color="tab:red")
    fig.tight_layout()
    save(fig, path)
    return True


def draw_workloads(r: ReportData, path: Path) -> bool:
    per_layer = r.json(_runs(r) / "workloads" / "per_layer.json")
    if not per_layer:
        return False
    plt = pyplot()
    fig, axes = plt.subplots(1, len(per_layer), figsize=(5.2 * len(per_layer), 3.6), squeeze=False)
    for ax, (name, w) in zip(axes[0], per_layer.items(), strict=True):
        for label, style in (("summarization", "o-"), ("last_step", "s--")):
            step = w[label]
            layers = range(len(step["keys"]))
            dense = [h * step["length"] for h in [max(step["heads"])] * len(step["keys"])]
            ax.plot(layers, [100 * k / d for k, d in zip(step["keys"], dense, strict=True)], style,
                    label=f"K, {label.replace('_', ' ')}")  # fmt: skip
            ax.plot(layers, [100 * v / d for v, d in zip(step["values"], dense, strict=True)], style,
                    alpha=0.5, label=f"V, {label.replace('_', ' ')}")  # fmt: skip
        ax.set_title(name.replace("_", " ").replace("gpt2", "GPT-2"))
        ax.set_xlabel("layer")
        ax.set_ylabel("rows fetched (% of dense)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, path)
    return True


# ---------------------------------------------------------------------- tables and text
def benchmarks(r: ReportData) -> list[tuple[str, str]]:
    return [(row_label(t), t) for t in r.config.active("tasks")]


def decoder_table(r: ReportData) -> str:
    parts = []
    for name in r.config.active("lms"):
        c, q, cfg = (
            r.json(_runs(r) / "decode" / name / "curves.json"),
            prefix(name),
            r.config.lms[name],
        )
        if not c:
            parts.append(f"The decoder stage of {name} has not run.")
            continue
        rows = [
            ["dense", fixed(r.m(f"{q}/dense_ppl")), "1.00", "1.0"],
            [f"cascade token pruning (final keep {fixed(r.m(f'{q}/token_keep_final'))}) + local V "
             f"(keep {fixed(r.m(f'{q}/value_keep'))})", fixed(r.m(f"{q}/pruned_ppl")),
             fixed(r.m(f"{q}/kv_reduction")), fixed(r.m(f"{q}/dram_reduction_16bit"), 1)],
            [f"+ progressive quantization (K {cfg.k_msb_bits}+{cfg.k_lsb_bits}, V {cfg.v_bits} "
             f"bits, tau {cfg.tau_operating})", fixed(r.m(f"{q}/quant_ppl")),
             fixed(r.m(f"{q}/kv_reduction")), fixed(r.m(f"{q}/dram_reduction"), 1)],
        ]  # fmt: skip
        out = f"**{name}**\n\n" + table(
            ["decoder", "perplexity", "K+V rows reduction (x)", "DRAM reduction (x)"], rows
        )
        budget = [
            [str(x["size"]), x["kind"].replace("_", " + "), fixed(x["ppl"])] for x in c["kv_budget"]
        ]
        out += (
            "\n\nThe reference repository's KV-cache variant: a cache of a fixed number of tokens "
            "per layer, the start tokens + the most important + the most recent (SpAtten) against "
            "the start + the most recent (the baseline), after summarising the prompt:\n\n"
            + table(["cache size", "kept", "perplexity"], budget)
        )
        parts.append(out)
    return "\n\n".join(parts) if parts else "No decoder runs at this profile."


def example_text(r: ReportData) -> str:
    ex = r.json(_runs(r) / "prune" / "section" / "example.json")
    if not ex or "layers" not in ex:
        return "The section task has not run."
    rows = [[str(i + 1), str(len(layer["tokens"])), str(layer["heads"]), " ".join(layer["tokens"])]
            for i, layer in enumerate(ex["layers"])]  # fmt: skip
    return (
        f"The paper's teaser, on our section classifier with its chosen pruning: the tokens of "
        f'"{ex["sentence"]}" that each layer runs (WordPiece tokens; `[CLS]` is never pruned).\n\n'
        + table(["layer", "tokens", "heads", "kept"], rows)
    )


def scaled_down(r: ReportData) -> list[str]:
    c = r.config
    tasks = ", ".join(
        f"{t} ({c.tasks[t].train_subset or 'all'} training / {c.tasks[t].test_subset or 'all'} "
        "test examples)"
        for t in c.active("tasks")
    )
    if "verses" not in c.active("lms"):  # the paper profile: the paper's models and data
        return [
            f"Profile: {r.profile}: the paper's models and benchmarks from the user's files.",
            f"Encoder rows: {tasks}.",
            f"Decoder rows: {', '.join(c.active('lms'))}.",
            "Not run: STS-B (a regression; the pruning search scores examples right or wrong).",
            "Traffic: counted from what our code runs (papers/spatten/traffic.py), not from the "
            "accelerator's simulator; K and V rows are fetched once per head and layer.",
        ]
    lm = c.lms["verses"]
    return [
        f"Profile: {r.profile}.",
        f"Encoder: {c.encoder.checkpoint} (all-MiniLM-L6-v2: 6 layers, 12 heads, width 384) "
        "instead of BERT-base/large; sentences cut to "
        f"{c.encoder.max_length} WordPiece tokens.",
        f"Tasks: {tasks}, built from the Bible instead of GLUE and SQuAD.",
        f"Decoder: the house's GPT-style model, {lm.layers} layers, width {lm.dim}, trained "
        f"here on English verses, instead of GPT-2; {lm.passages} test passages of "
        f"{lm.prompt} + {lm.generate} tokens instead of 992 + 32.",
        "Traffic: counted from what our code runs (papers/spatten/traffic.py), not from the "
        "accelerator's simulator; K and V rows are fetched once per head and layer.",
    ]


SPEC = ReportSpec(
    paper="spatten",
    title="SpAtten (Wang et al., HPCA 2021): replication report",
    intro="""SpAtten prunes attention where it is computed: tokens whose accumulated attention is
small are removed for every later layer (cascade token pruning), so are unimportant heads
(cascade head pruning), each query fetches only its largest-probability values (local value
pruning), and K is fetched in its most significant bits first, the rest only when the softmax is
flat (progressive quantization). The paper's main metric is the DRAM traffic of attention. Its
authors released the hardware and a Llama KV-cache demo, not the BERT/GPT-2 algorithm code: here
that code runs, and counts the traffic, on a laptop.
Code: [`papers/spatten/`](../../papers/spatten/) (encoder [`bert.py`](../../papers/spatten/bert.py),
decoder [`decoder.py`](../../papers/spatten/decoder.py), top-k engine
[`topk.py`](../../papers/spatten/topk.py), traffic counter
[`traffic.py`](../../papers/spatten/traffic.py)).""",
    config=SpattenProfile,
    flags=[("runs", {"type": Path, "required": True, "help": "runs/spatten"})],
    derive=derive,
    scaled_down=scaled_down,
    sections=[
        MetricTable(
            "The encoder tasks: dense against SpAtten",
            rows=benchmarks,
            row_header="Task",
            columns=[
                Col("{row}/dense_test_accuracy", "Dense acc. (%)", digits=4),
                Col("{row}/pruned_test_accuracy", "SpAtten acc. (%)", digits=4),
                Col("{row}/accuracy_change_std", "± (bootstrap)", digits=2),
                Col("{row}/token_keep_final", "Token keep (last layer)", digits=2),
                Col("{row}/head_keep_final", "Head keep", digits=2),
                Col("{row}/value_keep", "V keep", digits=2),
                Col("{row}/token_reduction", "Tokens (x)", digits=3),
                Col("{row}/head_reduction", "Heads (x)", digits=3),
                Col("{row}/compute_reduction", "MACs (x)", digits=3),
                Col("{row}/dram_reduction", "DRAM (x)", digits=3),
                Col("{row}/speedup", "CPU batch 1 (x)", digits=3),
            ],
            note=lambda r: (
                "Keep fractions: the most aggressive that the search on the validation set "
                "accepted (within 2 bootstrap standard deviations of dense), then fine-tuned with "
                "the pruning in place. DRAM: dense 16-bit over pruned with K and V at "
                f"{r.config.prune.k_bits}/{r.config.prune.v_bits} bits. CPU: wall-clock of the "
                "dense encoder over the pruned one, one sentence at a time, timed in turn: the "
                "pruned forward does only what a CPU can skip (the tokens removed, the pruned "
                "heads' projections and attention; tokens picked with torch.topk), in floating "
                "point, without simulating the quantization or the value pruning (no gain on a "
                "CPU, whose cache holds every V row)."
            ),
        ),
        Figure(
            "Accuracy against token pruning: cascade against layer-local",
            "tokens.png",
            draw_tokens,
            alt="accuracy vs token reduction",
        ),
        Figure("Accuracy against head pruning", "heads.png", draw_heads, alt="accuracy vs heads"),
        Text("The decoder: summarise, then generate", decoder_table),
        Figure(
            "Progressive quantization: the threshold tau",
            "tau.png",
            draw_tau,
            alt="perplexity and re-fetch share vs tau",
            note="The released workloads use tau = 0.05; the paper's review mentions 0.1.",
        ),
        Figure(
            "The released GPT-2 schedules under our counter",
            "workloads.png",
            draw_workloads,
            alt="rows fetched per layer in the released workloads",
            intro="The fetch counts SpAtten's authors released for GPT-2 on WikiText-2 "
            "(`data/spatten/workloads`), per layer, as a share of what the dense model fetches.",
        ),
        Text("Which tokens survive (the paper's teaser)", example_text),
        Targets(),
        RunTime(25),
    ],
)


def main(argv: list[str] | None = None) -> int:
    return report_main(SPEC, argv)


if __name__ == "__main__":
    raise SystemExit(main())
