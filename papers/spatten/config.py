"""The profiles of SpAtten's stages (``papers/spatten/params.yaml``), typed and validated before
any stage starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common.config import ConfigError, bounds
from common.train import TrainConfig
from papers.spatten.benchmarks import BENCHMARKS

TASKS = ("paraphrase", "section")  # the default profile's tasks, built from the Bible
# The rows of the encoder stages (dvc.yaml's foreach): the Bible tasks, then the paper's BERT-base
# and BERT-large benchmarks (null at the default profile: not run).
TASK_ROWS = (*TASKS, *(f"{m}_{b}" for m in ("base", "large") for b in BENCHMARKS))
LM_CORPORA = ("wikitext2", "wikitext103", "ptb", "1bw")
# The rows of the decoder stages: the house decoder on the verses, then GPT-2 small and medium on
# the paper's four corpora.
LM_ROWS = ("verses", *(f"{m}_{c}" for m in ("gpt2", "gpt2m") for c in LM_CORPORA))


@dataclass(frozen=True)
class EncoderConfig:
    """The BERT checkpoint (``minilm``: the bundled all-MiniLM-L6-v2; or a folder in Hugging
    Face's layout) and the length sentences are cut or padded to."""

    checkpoint: str = "minilm"
    max_length: int = field(default=64, metadata=bounds(ge=8, le=512))


@dataclass(frozen=True)
class TaskConfig:
    """One encoder task: its data and the dense fine-tuning.

    ``benchmark`` is the data (default: the row's name): ``paraphrase`` / ``section`` (the Bible),
    a GLUE task (``cola``, ``sst2``, ``mrpc``, ``qqp``, ``mnli``, ``qnli``, ``rte``, ``wnli``) or
    ``squad1`` / ``squad2``, read from ``root`` (GLUE: the folder holding ``SST-2/`` etc.; SQuAD:
    the folder of its JSON files), relative to the data root ``$EFFML_DATA_ROOT`` unless absolute.
    ``encoder`` replaces the profile's for this task (BERT-large rows). GLUE's dev set is the test
    set; ``valid_subset`` examples held out from the end of its training file are the validation
    set (default 5%). ``doc_stride``: SQuAD's window overlap.
    """

    benchmark: str | None = None
    root: str | None = None
    encoder: EncoderConfig | None = None
    train_subset: int | None = field(default=None, metadata=bounds(ge=1))
    valid_subset: int | None = field(default=None, metadata=bounds(ge=1))
    test_subset: int | None = field(default=None, metadata=bounds(ge=1))
    doc_stride: int = field(default=128, metadata=bounds(ge=8))
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.benchmark is not None and self.benchmark not in (*TASKS, *BENCHMARKS):
            raise ConfigError(
                f"benchmark: {self.benchmark!r} is not one of {', '.join((*TASKS, *BENCHMARKS))}"
            )
        if self.benchmark in BENCHMARKS and not self.root:
            raise ConfigError(
                f"root: benchmark {self.benchmark!r} needs the folder that holds it (relative to "
                "the data root $EFFML_DATA_ROOT, or absolute)"
            )


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
    """A decoder and how it is scored: summarise a ``prompt``-token passage of consecutive test
    lines, then generate ``generate`` tokens (teacher-forced), for ``passages`` passages.

    Without ``checkpoint``: the house's GPT-style ``DecoderLM`` (``dim``, ``layers``, ...)
    trained here on the English verses. With ``checkpoint`` (a Hugging Face GPT-2 folder): GPT-2
    with its own tokenizer, on the text files ``pattern`` (with ``{split}``: ``train``, ``valid``,
    ``test``) in ``root`` (relative to ``$EFFML_DATA_ROOT`` unless absolute), fine-tuned there for
    ``train`` unless ``train`` is null. ``device`` runs the decoding (``cuda`` for GPT-2-medium).
    """

    checkpoint: str | None = None
    root: str | None = None
    pattern: str = "lm_{split}.txt"
    device: str = "cpu"
    dim: int = field(default=128, metadata=bounds(ge=8))
    layers: int = field(default=6, metadata=bounds(ge=1))
    heads: int = field(default=4, metadata=bounds(ge=1))
    ffn_ratio: float = field(default=4.0, metadata=bounds(gt=0))
    dropout: float = field(default=0.0, metadata=bounds(ge=0, lt=1))
    vocab_size: int = field(default=2000, metadata=bounds(ge=100))
    max_tokens: int = field(default=4096, metadata=bounds(ge=16))
    block_tokens: int = field(default=256, metadata=bounds(ge=8))
    train_subset: int | None = field(default=None, metadata=bounds(ge=1))
    train: TrainConfig | None = field(default_factory=TrainConfig)
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
        positions = 1024 if self.checkpoint else 512
        if self.prompt + self.generate > positions:
            raise ConfigError(
                f"prompt + generate ({self.prompt + self.generate}) must fit the decoder's "
                f"{positions} positions"
            )
        if self.checkpoint and not self.root:
            raise ConfigError("root: a GPT-2 row needs the folder of its text files")
        if self.checkpoint is None and self.train is None:
            raise ConfigError("train: the house decoder is trained here; give its training")
        if "{split}" not in self.pattern:
            raise ConfigError(f"pattern: {self.pattern!r} must contain {{split}}")
        if self.tau_operating not in self.tau:
            raise ConfigError(f"tau_operating ({self.tau_operating}) must be one of tau {self.tau}")


@dataclass(frozen=True)
class SpattenProfile:
    """A profile of ``papers/spatten/params.yaml``."""

    encoder: EncoderConfig = EncoderConfig()
    # A row set to null is not run at this profile (the paper's rows at the default one).
    tasks: dict[str, TaskConfig | None] = field(default_factory=dict)
    prune: PruneConfig = PruneConfig()
    lms: dict[str, LMConfig | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for what, given, rows in (("tasks", self.tasks, TASK_ROWS), ("lms", self.lms, LM_ROWS)):
            bad = [t for t in given if t not in rows]
            if bad:
                raise ConfigError(
                    f"{what}: {bad[0]!r} is not a row of dvc.yaml; the rows are {', '.join(rows)}"
                )
        for row, task in self.tasks.items():
            if task is not None and self.benchmark(row) not in (*TASKS, *BENCHMARKS):
                raise ConfigError(
                    f"tasks.{row}.benchmark: say which benchmark the row runs "
                    f"({', '.join((*TASKS, *BENCHMARKS))})"
                )

    def row(self, what: str, name: str) -> TaskConfig | LMConfig | None:
        """The config of a row of ``tasks`` or ``lms`` (``None``: not run at this profile, also
        when the profile does not list it)."""
        rows = TASK_ROWS if what == "tasks" else LM_ROWS
        if name not in rows:
            raise ConfigError(f"{what}: {name!r} is not a row; the rows are {', '.join(rows)}")
        return getattr(self, what).get(name)

    def benchmark(self, row: str) -> str:
        """The data of an encoder row."""
        task = self.tasks.get(row)
        return (task.benchmark if task else None) or row

    def encoder_of(self, row: str) -> EncoderConfig:
        task = self.tasks.get(row)
        return (task.encoder if task else None) or self.encoder

    def active(self, what: str) -> list[str]:
        """The rows of ``tasks`` or ``lms`` that run at this profile, in dvc.yaml's order."""
        given = getattr(self, what)
        return [r for r in (TASK_ROWS if what == "tasks" else LM_ROWS) if given.get(r)]


def prefix(row: str) -> str:
    """The metric prefix of a decoder row (``decoder`` for the default profile's ``verses``)."""
    return "decoder" if row == "verses" else row


def user_path(path: str) -> Path:
    """A path of the paper profile (a checkpoint, a benchmark's folder): relative to the data
    root ``$EFFML_DATA_ROOT`` (else ``data/``) unless absolute or starting with ``~``."""
    from common.paths import data_root

    p = Path(path).expanduser()
    return p if p.is_absolute() else data_root() / p
