"""The profiles of Fast-LiDARNet's stages (``papers/fast_lidarnet/params.yaml``), typed and
validated before any stage starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from common.config import ConfigError, bounds
from common.driving import (
    FAILURES,
    FailureConfig,
    LidarConfig,
    MapConfig,
    VehicleConfig,
    WorldConfig,
)
from common.train import TrainConfig

FAMILIES = ("sparse3d", "resnet2d", "dense3d")
FUSIONS = ("none", "average", "evidential")


@dataclass(frozen=True)
class DataConfig:
    """The driving data. ``source: simulated`` builds ``maps`` seeded worlds per split and records
    the expert driving them (``papers/fast_lidarnet/simulate.py``); ``source: recorded`` reads the
    user's own drives from ``root`` (the format is in ``papers/fast_lidarnet/recorded.py``; relative
    to the data root ``$EFFML_DATA_ROOT`` unless absolute). ``bounds`` crops the points to the
    region every model sees (vehicle frame, metres: x forward, y left, z up from the ground);
    ``horizon`` future controls are predicted besides the current one."""

    source: Literal["simulated", "recorded"] = "simulated"
    root: str | None = None
    world: WorldConfig = field(default_factory=WorldConfig)
    lidar: LidarConfig = field(default_factory=LidarConfig)
    map: MapConfig = field(default_factory=MapConfig)
    vehicle: VehicleConfig = field(default_factory=VehicleConfig)
    maps: dict[str, int] = field(default_factory=lambda: {"train": 8, "val": 1, "test": 2})
    horizon: int = field(default=5, metadata=bounds(ge=0, le=20))
    lookahead_m: float = field(default=8.0, metadata=bounds(gt=0))
    perturb_sigma: float = field(default=0.03, metadata=bounds(ge=0))
    bounds: list[float] = field(default_factory=lambda: [-8.0, 24.0, -16.0, 16.0, -0.3, 3.7])
    seed: int = 0

    def __post_init__(self) -> None:
        if set(self.maps) != {"train", "val", "test"}:
            raise ConfigError(
                f"data.maps: needs exactly train, val and test, got {sorted(self.maps)}"
            )
        if any(n < 1 for n in self.maps.values()):
            raise ConfigError(f"data.maps: every split needs at least one map, got {self.maps}")
        b = self.bounds
        if len(b) != 6 or not (b[0] < b[1] and b[2] < b[3] and b[4] < b[5]):
            raise ConfigError(f"data.bounds: [xmin, xmax, ymin, ymax, zmin, zmax], got {b}")
        if self.source == "recorded" and not self.root:
            raise ConfigError("data.root: the recorded source needs the folder of your drives")


@dataclass(frozen=True)
class ModelConfig:
    """One network: ``family`` sparse3d (Fast-LiDARNet: sparse 3D -> bird's-eye 2D), resnet2d
    (a 2D ResNet on the bird's-eye raster) or dense3d (MinkowskiNet-style 3D residual network on
    the dense voxel grid); ``voxel_size`` in metres and ``width`` (channels of the first stage)
    are what the hardware-aware design stage chooses for sparse3d (``design``); ``coeff`` is the
    evidential regulariser's weight."""

    family: Literal["sparse3d", "resnet2d", "dense3d"] = "sparse3d"
    voxel_size: float = field(default=0.25, metadata=bounds(gt=0))
    width: int = field(default=16, metadata=bounds(ge=1))
    blocks: list[int] = field(default_factory=lambda: [1, 1, 1])
    map_width: int = field(default=16, metadata=bounds(ge=1))
    hidden: int = field(default=64, metadata=bounds(ge=1))
    coeff: float = field(default=0.01, metadata=bounds(ge=0))
    designed: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if not self.blocks or any(b < 0 for b in self.blocks):
            raise ConfigError(f"blocks: one non-negative count per stage, got {self.blocks}")


@dataclass(frozen=True)
class DesignConfig:
    """Hardware-aware design of the sparse network: every (voxel size, width) candidate is timed
    on this CPU (batch 1, on ``frames`` validation scans) and the most accurate-looking one (finest
    voxels, then widest) whose median latency is within ``budget_ms`` is chosen."""

    voxel_sizes: list[float] = field(default_factory=lambda: [0.2, 0.25, 0.4])
    widths: list[int] = field(default_factory=lambda: [8, 16, 24])
    budget_ms: float = field(default=25.0, metadata=bounds(gt=0))
    frames: int = field(default=8, metadata=bounds(ge=1))
    repeats: int = field(default=5, metadata=bounds(ge=1))

    def __post_init__(self) -> None:
        if not self.voxel_sizes or not self.widths:
            raise ConfigError("design: voxel_sizes and widths need at least one value each")


@dataclass(frozen=True)
class KernelsConfig:
    """The sparse-kernel benchmark: ``layers`` submanifold convolutions (+ one strided) of
    ``channels`` channels on ``frames`` batched validation scans voxelised at ``voxel_size``."""

    frames: int = field(default=8, metadata=bounds(ge=1))
    voxel_size: float = field(default=0.2, metadata=bounds(gt=0))
    channels: int = field(default=16, metadata=bounds(ge=1))
    layers: int = field(default=3, metadata=bounds(ge=1))
    repeats: int = field(default=5, metadata=bounds(ge=1))


@dataclass(frozen=True)
class EfficiencyConfig:
    """MACs (on the non-zero sites for sparse layers, averaged over ``frames`` test scans) and
    batch-1 CPU latency (median of ``repeats`` after ``warmup``) of every trained network."""

    frames: int = field(default=16, metadata=bounds(ge=1))
    warmup: int = field(default=3, metadata=bounds(ge=0))
    repeats: int = field(default=10, metadata=bounds(ge=1))
    threads: int | None = field(default=None, metadata=bounds(ge=1))


@dataclass(frozen=True)
class FusionConfig:
    """Hybrid Evidential Fusion (``papers/fast_lidarnet/fusion.py``): the current prediction and
    the earlier frames' forecasts of this step, corrected with odometry (``gain_lateral``,
    ``gain_heading``: the pure-pursuit feedback on the deviation from the forecast path), weighted
    by inverse variance (``uncertainty``: epistemic, aleatoric or both; older forecasts inflated by
    ``age_inflation`` per step); a candidate whose variance exceeds the ``quantile`` of the
    validation frames' is dropped, and when every candidate is dropped the last confident
    forecast path is followed."""

    uncertainty: Literal["epistemic", "aleatoric", "total"] = "epistemic"
    age_inflation: float = field(default=0.1, metadata=bounds(ge=0))
    quantile: float = field(default=0.95, metadata=bounds(gt=0, le=1))
    gain_lateral: float = field(default=0.03, metadata=bounds(ge=0))
    gain_heading: float = field(default=0.25, metadata=bounds(ge=0))


@dataclass(frozen=True)
class DriveConfig:
    """Closed-loop evaluation on the test maps (unseen in training): every ``failures`` kind at
    ``failure``'s rate, with each ``fusions`` mode, for the ``fused_model``; every other model of
    the profile drives with each of ``baseline_failures`` without fusion. The runs of one failure
    kind share their seeds (the same failure episodes at the same places), so the fusion modes
    are compared on the same events."""

    failures: list[str] = field(default_factory=lambda: list(FAILURES))
    fusions: list[str] = field(default_factory=lambda: list(FUSIONS))
    fused_model: str = "sparse3d"
    baseline_failures: list[str] = field(default_factory=lambda: ["none"])
    failure: FailureConfig = field(default_factory=FailureConfig)
    max_distance_m: float | None = field(default=None, metadata=bounds(gt=0))
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [f for f in [*self.failures, *self.baseline_failures] if f not in FAILURES]
        if bad:
            raise ConfigError(f"drive.failures: unknown {bad}; known: {', '.join(FAILURES)}")
        bad = [f for f in self.fusions if f not in FUSIONS]
        if bad:
            raise ConfigError(f"drive.fusions: unknown {bad}; known: {', '.join(FUSIONS)}")


@dataclass(frozen=True)
class FastLidarnetProfile:
    """A profile of ``papers/fast_lidarnet/params.yaml``."""

    data: DataConfig = DataConfig()
    models: dict[str, ModelConfig] = field(default_factory=dict)
    design: DesignConfig = DesignConfig()
    kernels: KernelsConfig = KernelsConfig()
    efficiency: EfficiencyConfig = EfficiencyConfig()
    fusion: FusionConfig = FusionConfig()
    drive: DriveConfig = DriveConfig()

    def __post_init__(self) -> None:
        for name, m in self.models.items():
            if name != m.family:
                raise ConfigError(
                    f"models.{name}: each model is named after its family "
                    f"({', '.join(FAMILIES)}); got family {m.family!r}"
                )
        missing = [f for f in FAMILIES if f not in self.models]
        if missing:
            raise ConfigError(
                f"models: the pipeline trains and compares all of {', '.join(FAMILIES)}; "
                f"missing {', '.join(missing)}. Fix: add them to the profile"
            )
        if self.drive.fused_model not in self.models:
            raise ConfigError(
                f"drive.fused_model: {self.drive.fused_model!r} is not a model of the profile; "
                f"it has {', '.join(self.models)}"
            )
