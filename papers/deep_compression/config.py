"""Typed configuration of the Deep Compression stages: a profile of ``params.yaml`` beside it.

Every network that goes through the whole pipeline (``lenet300``, ``lenet5`` and the VGG-style
analogue ``vgg``) has one entry in each of ``baseline``, ``prune`` and ``compress``; the analysis
stages (``tradeoff``, ``bitwidth``, ``speedup``) and the ImageNet rows (``imagenet``, ``paper``
profile only) have one section each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from common.compress import KMeansQuantConfig, MagnitudePruneConfig
from common.compress.kmeans import Init
from common.config import ConfigError, bounds
from common.models import check_model
from common.train import OptimizerConfig, TrainConfig


@dataclass(frozen=True)
class BaselineConfig:
    """One reference network, trained from scratch."""

    model: str
    train: TrainConfig
    dataset: Literal["mnist", "colour_digits"] = "mnist"
    model_kwargs: dict[str, int] = field(default_factory=dict)
    train_subset: int | None = field(default=None, metadata=bounds(ge=1))
    test_subset: int | None = field(default=None, metadata=bounds(ge=1))
    latency_repeats: int = field(default=50, metadata=bounds(ge=1))

    def __post_init__(self) -> None:
        check_model(self.model, self.model_kwargs)


@dataclass(frozen=True)
class PruneConfig:
    """Iterative pruning of a baseline (Section 2; Han et al. 2015).

    The final per-layer targets are reached in ``steps`` prune-and-retrain rounds (densities
    geometric from 1 to the target; each round retrains with ``retrain``).
    """

    pruning: MagnitudePruneConfig
    retrain: TrainConfig
    steps: int = field(default=3, metadata=bounds(ge=1))
    sensitivity_densities: list[float] = field(default_factory=list, metadata=bounds(gt=0, le=1))
    sensitivity_subset: int | None = field(default=2000, metadata=bounds(ge=1))


@dataclass(frozen=True)
class CompressConfig:
    """Trained quantization, then Huffman coding into the compressed file (Sections 3-4)."""

    quantization: KMeansQuantConfig
    index_bits: int = field(default=5, metadata=bounds(ge=1, le=16))
    finetune: TrainConfig | None = None


@dataclass(frozen=True)
class TradeoffConfig:
    """Figure 6: error against model size for pruning only, quantization only, and both.

    The network is chosen in dvc.yaml (``--name``; LeNet-300-100), which also wires its data.
    """

    densities: list[float] = field(
        default_factory=lambda: [0.2, 0.1, 0.05], metadata=bounds(gt=0, le=1)
    )
    bits: list[int] = field(default_factory=lambda: [6, 4, 2], metadata=bounds(ge=1, le=12))
    combined: list[tuple[float, int]] = field(default_factory=list)
    index_bits: int = field(default=5, metadata=bounds(ge=1, le=16))
    retrain: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1))
    # Centroid fine-tuning of the quantized points (retraining is for the pruned ones).
    finetune: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=1, optimizer=OptimizerConfig(lr=0.01))
    )
    train_subset: int | None = field(default=None, metadata=bounds(ge=1))
    no_loss_tolerance: float = field(default=0.1, metadata=bounds(ge=0))


@dataclass(frozen=True)
class BitwidthConfig:
    """Table 6 (conv bits x fc bits) and Figure 8 (centroid initialisation) on a pruned network.

    The network is chosen in dvc.yaml (``--name``; LeNet-5).
    """

    sweep: list[tuple[int, int]] = field(default_factory=lambda: [(8, 5), (8, 4), (4, 2)])
    init_bits: list[int] = field(
        default_factory=lambda: [2, 3, 4, 5, 6, 7, 8], metadata=bounds(ge=1, le=12)
    )
    inits: list[Init] = field(default_factory=lambda: ["linear", "density", "random"])
    finetune: TrainConfig | None = None
    train_subset: int | None = field(default=None, metadata=bounds(ge=1))


@dataclass(frozen=True)
class FcLayer:
    """A fully connected layer to time: its shape and the fraction of weights kept."""

    name: str
    out_features: int = field(metadata=bounds(ge=1))
    in_features: int = field(metadata=bounds(ge=1))
    density: float = field(metadata=bounds(gt=0, le=1))


@dataclass(frozen=True)
class SpeedupConfig:
    """Dense against sparse matrix-vector products at batch size 1 (Figures 9-10)."""

    layers: list[FcLayer] = field(default_factory=list)
    repeats: int = field(default=50, metadata=bounds(ge=3))
    warmup: int = field(default=5, metadata=bounds(ge=0))
    threads: int | None = field(default=None, metadata=bounds(ge=1))
    seed: int = 0


@dataclass(frozen=True)
class ImagenetConfig:
    """The AlexNet / VGG-16 rows: torchvision's pretrained network through the same pipeline."""

    model: Literal["alexnet", "vgg16"]
    pruning: MagnitudePruneConfig
    retrain: TrainConfig
    quantization: KMeansQuantConfig
    weights: str | None = "IMAGENET1K_V1"
    steps: int = field(default=3, metadata=bounds(ge=1))
    finetune: TrainConfig | None = None
    index_bits: int = field(default=4, metadata=bounds(ge=1, le=16))
    resolution: int = field(default=224, metadata=bounds(ge=32))
    train_subset: int | None = field(default=None, metadata=bounds(ge=1))
    val_subset: int | None = field(default=None, metadata=bounds(ge=1))


@dataclass(frozen=True)
class DeepCompressionProfile:
    """One profile (``smoke``, ``default`` or ``paper``) of the paper's ``params.yaml``."""

    baseline: dict[str, BaselineConfig]
    prune: dict[str, PruneConfig] = field(default_factory=dict)
    compress: dict[str, CompressConfig] = field(default_factory=dict)
    tradeoff: TradeoffConfig = TradeoffConfig()
    bitwidth: BitwidthConfig = BitwidthConfig()
    speedup: SpeedupConfig = SpeedupConfig()
    imagenet: dict[str, ImagenetConfig | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for section in ("prune", "compress"):
            missing = set(getattr(self, section)) - set(self.baseline)
            if missing:
                raise ConfigError(
                    f"{section} has networks without a baseline: {', '.join(sorted(missing))}"
                )
