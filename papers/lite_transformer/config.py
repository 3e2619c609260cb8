"""The profiles of Lite Transformer's stages (``papers/lite_transformer/params.yaml``), typed and
validated before any stage starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from common.config import ConfigError, bounds
from common.train import TrainConfig

PAPER_KERNELS = [3, 7, 15, 31, 31, 31]


@dataclass(frozen=True)
class TokenizerConfig:
    """A joint SentencePiece model (both languages of a parallel corpus), trained on the
    training split; at most ``train_sentences`` sentences of it, a fixed random sample (the
    paper-scale corpora have millions)."""

    vocab_size: int = field(default=4000, metadata=bounds(ge=100, le=300000))
    model_type: Literal["unigram", "bpe", "word"] = "unigram"
    train_sentences: int | None = field(default=None, metadata=bounds(ge=100))


@dataclass(frozen=True)
class CorpusConfig:
    """Where a model's data comes from (``common/text/corpus.py`` reads each layout).

    * ``bible``: the committed Bible corpus (``data/prepared/bible``): English -> Spanish verse
      pairs for translation, English verses for language modelling.
    * ``parallel``: a user's corpus in fairseq's raw layout: ``{train,valid,test}.<source>`` and
      ``.<target>`` in ``root``, one sentence a line, aligned (WMT, IWSLT; CNN-DailyMail as
      ``source``/``target``).
    * ``text``: a user's monolingual corpus, one file a split named by ``pattern``
      (WikiText-103: ``wiki.{split}.tokens``), cut into blocks of ``block_tokens`` tokens
      (``None``: a line an example).

    ``truncate_source`` keeps the first that many tokens of each source (CNN-DailyMail's
    articles).

    ``root`` is relative to the data root (``$EFFML_DATA_ROOT``, else ``data/``) unless
    absolute. ``tokenizer`` replaces the profile's tokenizer for this corpus. ``metric`` is how
    a translation model's test output is scored: BLEU, or ROUGE-L for summarization.
    """

    kind: Literal["bible", "parallel", "text"] = "bible"
    root: str | None = None
    source: str = "en"
    target: str = "es"
    pattern: str = "{split}.txt"
    block_tokens: int | None = field(default=None, metadata=bounds(ge=3))
    truncate_source: int | None = field(default=None, metadata=bounds(ge=1))
    tokenizer: TokenizerConfig | None = None
    metric: Literal["bleu", "rouge_l"] = "bleu"
    label: str = ""

    def __post_init__(self) -> None:
        if self.kind != "bible" and not self.root:
            raise ConfigError(
                f"root: a {self.kind} corpus needs the folder that holds it (relative to the "
                "data root $EFFML_DATA_ROOT, or absolute)"
            )
        if "{split}" not in self.pattern:
            raise ConfigError(f"pattern: {self.pattern!r} must contain {{split}}")


@dataclass(frozen=True)
class ModelConfig:
    """One network: its task, token mixer and Mult-Adds budget. The width ``dim`` is chosen by
    the training stage as the one whose Mult-Adds (layers only, a 30-token source and target: the
    paper's convention) come closest to ``budget``, or to the Mult-Adds of the model named by
    ``match`` (so a Transformer and a Lite Transformer compared at "the same budget" are as close
    as their widths allow), unless ``dim`` is given."""

    task: Literal["translation", "lm"] = "translation"
    corpus: str = "bible"
    mixer: Literal["attention", "lsra"] = "lsra"
    budget: float = field(default=4e6, metadata=bounds(gt=0))
    match: str | None = None
    dim: int | None = field(default=None, metadata=bounds(ge=8))
    ffn_ratio: float = field(default=1.0, metadata=bounds(gt=0))
    layers: int = field(default=3, metadata=bounds(ge=1, le=16))
    heads: int = field(default=4, metadata=bounds(ge=1))
    conv: Literal["lightweight", "dynamic"] = "dynamic"
    glu: bool = True
    kernel_sizes: list[int] = field(default_factory=lambda: list(PAPER_KERNELS))
    dropout: float = field(default=0.1, metadata=bounds(ge=0, lt=1))
    attention_dropout: float = field(default=0.0, metadata=bounds(ge=0, lt=1))
    weight_dropout: float = field(default=0.0, metadata=bounds(ge=0, lt=1))
    max_tokens: int = field(default=4096, metadata=bounds(ge=16))
    max_length: int = field(default=96, metadata=bounds(ge=8))
    max_positions: int = field(default=512, metadata=bounds(ge=8))
    update_freq: int = field(default=1, metadata=bounds(ge=1))
    train_subset: int | None = field(default=None, metadata=bounds(ge=1))
    label: str = ""
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.max_length > self.max_positions:
            raise ConfigError(
                f"max_length ({self.max_length}) is above max_positions ({self.max_positions}): "
                "raise max_positions"
            )
        if len(self.kernel_sizes) < self.layers:
            raise ConfigError(
                f"kernel_sizes gives {len(self.kernel_sizes)} kernels for {self.layers} layers"
            )
        step = self.heads if self.mixer == "attention" else 2 * self.heads
        if self.dim is not None and self.dim % step:
            raise ConfigError(
                f"dim ({self.dim}) must be a multiple of {step} for mixer {self.mixer}"
            )


@dataclass(frozen=True)
class EvalConfig:
    """Decoding and scoring of the test set (the paper's test script: beam 4, length penalty
    0.6), and the bootstrap that gives BLEU differences their noise."""

    beam: int = field(default=4, metadata=bounds(ge=1))
    length_penalty: float = 0.6
    test_subset: int | None = field(default=None, metadata=bounds(ge=1))
    batch_sentences: int = field(default=64, metadata=bounds(ge=1))
    bootstrap: int = field(default=1000, metadata=bounds(ge=10))


@dataclass(frozen=True)
class AnalysisConfig:
    """Attention distances on test sentences, batch-1 greedy decoding latency."""

    sentences: int = field(default=200, metadata=bounds(ge=1))
    latency_sentences: int = field(default=10, metadata=bounds(ge=1))
    latency_repeats: int = field(default=3, metadata=bounds(ge=1))
    # BLEU differences A - B with their paired-bootstrap noise: {name: [model A, model B]}.
    comparisons: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class CompressConfig:
    """Deep Compression on the largest Lite Transformer (``papers/lite_transformer/compress.py``):
    k-means weight sharing at ``bits``; then per-layer pruning to the lowest of ``densities`` that
    costs at most ``sensitivity_drop`` nats of validation loss per token (each layer alone),
    ``finetune``, and weight sharing again, stored with ``index_bits`` relative indices."""

    bits: int = field(default=8, metadata=bounds(ge=2, le=8))
    densities: list[float] = field(default_factory=lambda: [0.5, 0.25], metadata=bounds(gt=0, le=1))
    sensitivity_drop: float = field(default=0.05, metadata=bounds(ge=0))
    index_bits: int = field(default=4, metadata=bounds(ge=1, le=8))
    finetune: TrainConfig = field(default_factory=lambda: TrainConfig(steps=50))
    valid_subset: int | None = field(default=200, metadata=bounds(ge=1))


@dataclass(frozen=True)
class LiteTransformerProfile:
    """A profile of ``papers/lite_transformer/params.yaml``."""

    tokenizer: TokenizerConfig = TokenizerConfig()
    corpora: dict[str, CorpusConfig] = field(default_factory=lambda: {"bible": CorpusConfig()})
    # A model set to null is not run at this profile (the paper-only rows at the default one).
    models: dict[str, ModelConfig | None] = field(default_factory=dict)
    evaluation: EvalConfig = EvalConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    compress: CompressConfig = CompressConfig()

    def __post_init__(self) -> None:
        run = self.active
        for key, m in run.items():
            other = run.get(m.match) if m.match else None
            if m.match and (other is None or other.match or other.task != m.task):
                raise ConfigError(
                    f"models.{key}.match: {m.match!r} must be another {m.task} model of the "
                    f"profile that does not itself match one (models: {', '.join(run)})"
                )
            corpus = self.corpora.get(m.corpus)
            if corpus is None:
                raise ConfigError(
                    f"models.{key}.corpus: {m.corpus!r} is not a corpus of the profile "
                    f"(corpora: {', '.join(self.corpora)})"
                )
            wanted = {"translation": ("bible", "parallel"), "lm": ("bible", "text")}[m.task]
            if corpus.kind not in wanted:
                raise ConfigError(
                    f"models.{key}.corpus: {m.corpus!r} is a {corpus.kind} corpus; a {m.task} "
                    f"model needs a {' or '.join(wanted)} one"
                )
            if corpus.block_tokens is not None and corpus.block_tokens > min(
                m.max_length, m.max_positions, m.max_tokens
            ):
                raise ConfigError(
                    f"models.{key}: corpus {m.corpus!r} cuts blocks of {corpus.block_tokens} "
                    "tokens: max_length, max_positions and max_tokens must hold one"
                )
            if m.match and other is not None and other.corpus != m.corpus:
                raise ConfigError(
                    f"models.{key}.match: {m.match!r} is trained on {other.corpus!r}, "
                    f"{key} on {m.corpus!r}: compare models on one corpus"
                )
        for key, pair in self.analysis.comparisons.items():
            bad = [m for m in pair if m not in run or run[m].task != "translation"]
            if len(pair) != 2 or bad or run[pair[0]].corpus != run[pair[1]].corpus:
                raise ConfigError(
                    f"analysis.comparisons.{key}: give two translation models of the profile "
                    f"trained on the same corpus (models run at this profile: {', '.join(run)})"
                )

    @property
    def active(self) -> dict[str, ModelConfig]:
        """The models this profile runs (the others are null)."""
        return {k: m for k, m in self.models.items() if m is not None}

    def tokenizer_for(self, corpus: str) -> TokenizerConfig:
        return self.corpora[corpus].tokenizer or self.tokenizer

    @property
    def used_corpora(self) -> list[str]:
        """The corpora of the models this profile runs, in order of first use."""
        return list(dict.fromkeys(m.corpus for m in self.active.values()))
