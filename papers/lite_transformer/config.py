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
    """The joint English/Spanish SentencePiece model, trained on the training split."""

    vocab_size: int = field(default=4000, metadata=bounds(ge=100, le=64000))
    model_type: Literal["unigram", "bpe"] = "unigram"


@dataclass(frozen=True)
class ModelConfig:
    """One network: its task, token mixer and Mult-Adds budget. The width ``dim`` is chosen by
    the training stage as the one whose Mult-Adds (layers only, a 30-token source and target: the
    paper's convention) come closest to ``budget``, or to the Mult-Adds of the model named by
    ``match`` (so a Transformer and a Lite Transformer compared at "the same budget" are as close
    as their widths allow), unless ``dim`` is given."""

    task: Literal["translation", "lm"] = "translation"
    mixer: Literal["attention", "lsra"] = "lsra"
    budget: float = field(default=4e6, metadata=bounds(gt=0))
    match: str | None = None
    dim: int | None = field(default=None, metadata=bounds(ge=8))
    ffn_ratio: float = field(default=1.0, metadata=bounds(gt=0))
    layers: int = field(default=3, metadata=bounds(ge=1, le=6))
    heads: int = field(default=4, metadata=bounds(ge=1))
    conv: Literal["lightweight", "dynamic"] = "dynamic"
    glu: bool = True
    kernel_sizes: list[int] = field(default_factory=lambda: list(PAPER_KERNELS))
    dropout: float = field(default=0.1, metadata=bounds(ge=0, lt=1))
    attention_dropout: float = field(default=0.0, metadata=bounds(ge=0, lt=1))
    weight_dropout: float = field(default=0.0, metadata=bounds(ge=0, lt=1))
    max_tokens: int = field(default=4096, metadata=bounds(ge=16))
    max_length: int = field(default=96, metadata=bounds(ge=8))
    train_subset: int | None = field(default=None, metadata=bounds(ge=1))
    label: str = ""
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
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
    models: dict[str, ModelConfig] = field(default_factory=dict)
    evaluation: EvalConfig = EvalConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    compress: CompressConfig = CompressConfig()

    def __post_init__(self) -> None:
        for key, m in self.models.items():
            other = self.models.get(m.match) if m.match else None
            if m.match and (other is None or other.match or other.task != m.task):
                raise ConfigError(
                    f"models.{key}.match: {m.match!r} must be another {m.task} model of the "
                    f"profile that does not itself match one (models: {', '.join(self.models)})"
                )
        for key, pair in self.analysis.comparisons.items():
            bad = [m for m in pair if m not in self.models or self.models[m].task != "translation"]
            if len(pair) != 2 or bad:
                raise ConfigError(
                    f"analysis.comparisons.{key}: give two translation models of the profile "
                    f"(models: {', '.join(self.models)})"
                )
