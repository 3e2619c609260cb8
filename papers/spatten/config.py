"""The profiles of SpAtten's stages (``papers/spatten/params.yaml``), typed and validated before
any stage starts."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config import ConfigError, bounds
from common.train import TrainConfig

TASKS = ("paraphrase", "section")


@dataclass(frozen=True)
class EncoderConfig:
    """The BERT checkpoint (``minilm``: the bundled all-MiniLM-L6-v2; or a folder in Hugging
    Face's layout) and the length sentences are cut or padded to."""

    checkpoint: str = "minilm"
    max_length: int = field(default=64, metadata=bounds(ge=8, le=512))


@dataclass(frozen=True)
class TaskConfig:
    """One classification task: its data and the dense fine-tuning."""

    train_subset: int | None = field(default=None, metadata=bounds(ge=1))
    valid_subset: int | None = field(default=None, metadata=bounds(ge=1))
    test_subset: int | None = field(default=None, metadata=bounds(ge=1))
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class PruneConfig:
    """The per-task search (on the validation set) and the pruned fine-tune.

    The search takes the smallest final keep fraction of tokens, then of heads, then of V rows
    (each from its list, with the earlier choices in place) whose validation accuracy stays
    within ``noise`` bootstrap standard deviations of the dense model's: "no accuracy loss",
    with the noise of the measurement as tolerance. K and V are quantized statically to
    ``k_bits``/``v_bits`` (the paper quantizes BERT statically; the progressive scheme is for
    the memory-bound decoder). The chosen network is fine-tuned for ``finetune``.
    """

    token_keep: list[float] = field(
        default_factory=lambda: [0.8, 0.6, 0.4, 0.3, 0.2], metadata=bounds(gt=0, le=1)
    )
    head_keep: list[float] = field(
        default_factory=lambda: [0.83, 0.67, 0.5], metadata=bounds(gt=0, le=1)
    )
    value_keep: list[float] = field(
        default_factory=lambda: [0.5, 0.3, 0.2], metadata=bounds(gt=0, le=1)
    )
    protect_tokens: int | None = field(default=None, metadata=bounds(ge=0))
    protect_heads: float = field(default=0.3, metadata=bounds(ge=0, le=1))
    noise: float = field(default=2.0, metadata=bounds(ge=0))
    k_bits: int | None = field(default=8, metadata=bounds(ge=2, le=16))
    v_bits: int | None = field(default=8, metadata=bounds(ge=2, le=16))
    finetune: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1))
    bootstrap: int = field(default=1000, metadata=bounds(ge=10))
    latency_sentences: int = field(default=40, metadata=bounds(ge=1))
    latency_repeats: int = field(default=3, metadata=bounds(ge=1))
    example: str = "As a visual treat, the film is almost perfect."

    def __post_init__(self) -> None:
        for name in ("token_keep", "head_keep", "value_keep"):
            values = getattr(self, name)
            if list(values) != sorted(values, reverse=True):
                raise ConfigError(f"{name}: list the fractions from the largest down, got {values}")


@dataclass(frozen=True)
class LMConfig:
    """The GPT-style decoder (the house's ``DecoderLM``) trained on the English verses, and how
    it is scored: summarise a ``prompt``-token passage of consecutive test verses, then generate
    ``generate`` tokens (teacher-forced), for ``passages`` passages."""

    dim: int = field(default=128, metadata=bounds(ge=8))
    layers: int = field(default=6, metadata=bounds(ge=1))
    heads: int = field(default=4, metadata=bounds(ge=1))
    ffn_ratio: float = field(default=4.0, metadata=bounds(gt=0))
    dropout: float = field(default=0.0, metadata=bounds(ge=0, lt=1))
    vocab_size: int = field(default=2000, metadata=bounds(ge=100))
    max_tokens: int = field(default=4096, metadata=bounds(ge=16))
    block_tokens: int = field(default=256, metadata=bounds(ge=8))
    train_subset: int | None = field(default=None, metadata=bounds(ge=1))
    train: TrainConfig = field(default_factory=TrainConfig)
    prompt: int = field(default=224, metadata=bounds(ge=2))
    generate: int = field(default=32, metadata=bounds(ge=1))
    passages: int = field(default=20, metadata=bounds(ge=1))
    token_keep: list[float] = field(
        default_factory=lambda: [0.6, 0.4, 0.25, 0.15, 0.1], metadata=bounds(gt=0, le=1)
    )
    protect_tokens: int | None = field(default=None, metadata=bounds(ge=0))
    value_keep: list[float] = field(
        default_factory=lambda: [0.5, 0.3, 0.2], metadata=bounds(gt=0, le=1)
    )
    noise: float = field(default=2.0, metadata=bounds(ge=0))
    k_msb_bits: int = field(default=6, metadata=bounds(ge=1, le=16))
    k_lsb_bits: int = field(default=4, metadata=bounds(ge=0, le=8))
    v_bits: int = field(default=6, metadata=bounds(ge=1, le=16))
    tau: list[float] = field(
        default_factory=lambda: [0.0, 0.02, 0.05, 0.1, 0.2], metadata=bounds(ge=0, le=1)
    )
    tau_operating: float = field(default=0.05, metadata=bounds(ge=0, le=1))
    kv_start: int = field(default=4, metadata=bounds(ge=0))
    kv_budgets: list[int] = field(default_factory=lambda: [32, 64, 128], metadata=bounds(ge=2))
    bootstrap: int = field(default=1000, metadata=bounds(ge=10))

    def __post_init__(self) -> None:
        if self.dim % self.heads:
            raise ConfigError(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")
        if self.prompt + self.generate > 512:
            raise ConfigError(
                f"prompt + generate ({self.prompt + self.generate}) must fit the decoder's 512 positions"
            )
        if self.tau_operating not in self.tau:
            raise ConfigError(f"tau_operating ({self.tau_operating}) must be one of tau {self.tau}")


@dataclass(frozen=True)
class SpattenProfile:
    """A profile of ``papers/spatten/params.yaml``."""

    encoder: EncoderConfig = EncoderConfig()
    tasks: dict[str, TaskConfig] = field(default_factory=dict)
    prune: PruneConfig = PruneConfig()
    lm: LMConfig = LMConfig()

    def __post_init__(self) -> None:
        bad = [t for t in self.tasks if t not in TASKS]
        if bad:
            raise ConfigError(f"tasks: {bad[0]!r} is not a task; the tasks are {', '.join(TASKS)}")
