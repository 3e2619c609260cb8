"""The profiles of Anycost GAN's stages (``papers/anycost_gan/params.yaml``), typed and validated
before any stage starts."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config import ConfigError, bounds
from common.train import AdversarialConfig, TrainConfig
from papers.anycost_gan import channels as ch
from papers.anycost_gan.stylegan2 import GeneratorConfig
from papers.anycost_gan.task import AnycostConfig

# The training phases of dvc.yaml, in the order they run: the paper's chain (single resolution ->
# sampled multi-resolution -> adaptive channels), the ablations fine-tuned from the same starts
# (all resolutions every step; no distillation; no conditioned discriminator) and the separately
# trained smaller generator of the "better than training it alone" comparison.
PHASES = ("single", "single_ft", "multires", "allres", "anycost", "nodistill", "nocond", "small")


@dataclass(frozen=True)
class DataConfig:
    """The images the GAN learns: ``colour_digits`` (the prepared set, ``--data``) or ``folder``
    (every PNG/JPEG under ``root``, recursively, e.g. FFHQ's ``images1024x1024``; relative to the
    data root ``$EFFML_DATA_ROOT`` unless absolute), resized to the generator's size.
    ``train_images``: how many to learn from (None: all); ``eval_images``: real images whose
    features are FID's reference statistics (the training set's, as the paper's protocol)."""

    dataset: str = "colour_digits"
    root: str | None = None
    train_images: int | None = field(default=None, metadata=bounds(ge=1))
    eval_images: int = field(default=2000, metadata=bounds(ge=2))
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dataset not in ("colour_digits", "folder"):
            raise ConfigError(f"data.dataset: colour_digits or folder, got {self.dataset!r}")
        if self.dataset == "folder" and not self.root:
            raise ConfigError("data.root: the folder dataset needs the folder of its images")


@dataclass(frozen=True)
class FeaturesConfig:
    """The network whose features FID and KID use. ``kind: digits`` trains the colour-digit
    classifier here (``width``, ``train``); ``kind: inception`` reads Inception-v3's FID weights
    from ``weights`` (a torchvision ``inception_v3`` state dict, relative to the data root unless
    absolute: the paper profile's, which these machines cannot download)."""

    kind: str = "digits"
    width: int = field(default=32, metadata=bounds(ge=4))
    train_images: int | None = field(default=20000, metadata=bounds(ge=1))
    weights: str | None = None
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=2))

    def __post_init__(self) -> None:
        if self.kind not in ("digits", "inception"):
            raise ConfigError(f"features.kind: digits or inception, got {self.kind!r}")
        if self.kind == "inception" and not self.weights:
            raise ConfigError("features.weights: the inception features need their weights file")


@dataclass(frozen=True)
class PhaseConfig:
    """One training phase. ``init``: the phase whose generator, EMA generator and discriminator
    it starts from (None: from nothing); ``teacher``: the phase whose full EMA generator the
    consistency loss distils from; ``sort_channels``: reorder the start's channels by importance
    first; ``width_ratio``: a generator with every layer at this uniform ratio of the full one's
    widths (the separately trained baseline; 1: the full generator)."""

    label: str = ""
    init: str | None = None
    teacher: str | None = None
    sort_channels: bool = False
    width_ratio: float = field(default=1.0, metadata=bounds(gt=0, le=1))
    anycost: AnycostConfig = field(default_factory=AnycostConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=100))


@dataclass(frozen=True)
class EvalConfig:
    """The sample-quality grid: FID / KID of ``samples`` images of every uniform channel ratio at
    every output resolution of the phase's generator, and consistency with the full output;
    ``seeds``: the full generator's FID is also computed with these other sample seeds (the
    metric's own noise, which sets the claims' tolerances); ``truncation`` 1 = none."""

    samples: int = field(default=2000, metadata=bounds(ge=2))
    batch: int = field(default=250, metadata=bounds(ge=1))
    ratios: list[float] = field(default_factory=lambda: list(ch.RATIOS))
    seeds: list[int] = field(default_factory=lambda: [1])
    truncation: float = field(default=1.0, metadata=bounds(gt=0, le=1))
    kid_subsets: int = field(default=20, metadata=bounds(ge=1))
    kid_subset_size: int = field(default=500, metadata=bounds(ge=2))
    device: str = "cpu"

    def __post_init__(self) -> None:
        bad = [r for r in self.ratios if r not in ch.RATIOS]
        if bad:
            raise ConfigError(f"evaluate.ratios: each one of {list(ch.RATIOS)}, got {bad}")


@dataclass(frozen=True)
class LatencyConfig:
    """Batch-1 CPU latency of sub-generators: the trained one's grid, and the paper's 1024 px
    config-F generator built with random weights (latency does not depend on the weights) at the
    ``config_f`` output resolutions (empty: not measured). ``repeats`` timed runs after
    ``warmup``, median reported."""

    repeats: int = field(default=5, metadata=bounds(ge=1))
    warmup: int = field(default=2, metadata=bounds(ge=0))
    config_f: list[int] = field(default_factory=lambda: [1024, 512, 256, 128])
    config_f_repeats: int = field(default=2, metadata=bounds(ge=1))
    threads: int | None = field(default=None, metadata=bounds(ge=1))


@dataclass(frozen=True)
class SearchConfig:
    """Once-for-All's evolutionary search over flexible sub-generators: per budget (a fraction
    of the full generator's MACs at full resolution), the config whose output is closest to the
    full generator's (mean perceptual + pixel distance over ``samples`` latents)."""

    budgets: list[float] = field(default_factory=lambda: [0.8, 0.6, 0.4, 0.25])
    samples: int = field(default=64, metadata=bounds(ge=1))
    population: int = field(default=24, metadata=bounds(ge=2))
    generations: int = field(default=8, metadata=bounds(ge=1))
    parent_ratio: float = field(default=0.25, metadata=bounds(gt=0, le=1))
    mutation_ratio: float = field(default=0.5, metadata=bounds(ge=0, le=1))
    mutate_prob: float = field(default=0.2, metadata=bounds(ge=0, le=1))
    seed: int = 0


@dataclass(frozen=True)
class ProjectionConfig:
    """Consistency-aware projection of ``images`` held-out real images into W+ (``steps`` of Adam
    at ``lr``), without and with the sub-generators' term (``alpha``; the paper's 1), the
    sub-generators being the uniform ``ratios``."""

    images: int = field(default=8, metadata=bounds(ge=1))
    steps: int = field(default=150, metadata=bounds(ge=1))
    lr: float = field(default=0.05, metadata=bounds(gt=0))
    alpha: float = field(default=1.0, metadata=bounds(ge=0))
    ratios: list[float] = field(default_factory=lambda: [0.25, 0.5])


@dataclass(frozen=True)
class AnycostGanProfile:
    """A profile of ``papers/anycost_gan/params.yaml``: the generator every phase shares, the
    phases, and the evaluation, latency, search, projection and preview settings."""

    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    phases: dict[str, PhaseConfig] = field(default_factory=dict)
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    preview_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])

    def __post_init__(self) -> None:
        unknown = sorted(set(self.phases) - set(PHASES))
        if unknown:
            raise ConfigError(f"phases: {unknown} are not phases; the phases: {', '.join(PHASES)}")
        for name, p in self.phases.items():
            for ref in (p.init, p.teacher):
                if ref is not None and ref not in self.phases:
                    raise ConfigError(f"phases.{name}: {ref!r} is not a phase of this profile")
            if p.anycost.distill_alpha and p.teacher is None:
                raise ConfigError(f"phases.{name}: distill_alpha > 0 needs a teacher phase")
            n = len(ch.resolutions(self.generator.size)) - 1
            if p.anycost.n_res > n:
                raise ConfigError(
                    f"phases.{name}.anycost.n_res: at most {n} at {self.generator.size} px"
                )
