"""Typed configuration of the MCUNet stages (a profile of ``papers/mcunet/params.yaml``).

``models`` lists the networks of the deployment tables: each is trained here on the colour-digit
set at its deployment resolution (``train`` section) or taken from another paper's stage
(``source: deep_compression/lenet5``: Deep Compression's LeNet-5 on MNIST). ``deploy`` holds what
every deployment measures; ``patch`` the analytic MCUNetV2 Table 1 row; ``fuzz`` the campaign of
random and malformed models run through the deploy command; ``tinynas`` TinyNAS: its search-space
optimisation and its one-shot search (:mod:`common.tinynas`). A model named ``tinynas`` is the
architecture that search found (stage ``mcunet_tinynas``), deployed like the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from common.config import ConfigError, bounds
from common.models import check_model
from common.ofa import OFAMobileNetV3Config
from common.ofa.search import EvolutionConfig
from common.tinynas import MemoryBudget, MemoryModel, SpaceGrid
from common.train import TrainConfig

SEARCHED = "tinynas"  # ModelConfig.model of the network TinyNAS searched (stage mcunet_tinynas)
# the co-design tables' two engines (TinyNASConfig.memory_models), as the report names them
ENGINES = {"tflm": "TF-Lite Micro plan + reference kernels", "ours": "our engine"}


@dataclass(frozen=True)
class ModelConfig:
    """One network of the tables. ``model`` is a registered architecture, or ``tinynas``: the
    network the TinyNAS search found, whose architecture and resolution come with its weights
    (``resolution`` is then left out)."""

    model: str
    resolution: int | None = field(default=None, metadata=bounds(ge=8, le=512))
    label: str = ""
    model_kwargs: dict[str, float] = field(default_factory=dict)
    dataset: Literal["mnist", "colour_digits"] = "colour_digits"
    train: TrainConfig | None = None  # None: trained by another stage (see dvc.yaml)
    train_subset: int | None = field(default=None, metadata=bounds(ge=1))
    test_subset: int | None = field(default=None, metadata=bounds(ge=1))
    # train (and run the float model) in channels-last memory format: 1.4-1.6x faster steps on
    # CPU for these depthwise-separable networks (measured on 2 cores at 160-176 px)
    channels_last: bool = True

    def __post_init__(self) -> None:
        if self.model == SEARCHED:
            if self.resolution is not None or self.train is not None or self.model_kwargs:
                raise ConfigError(
                    f"model {SEARCHED}: the searched network's resolution and architecture come "
                    "from the search (stage mcunet_tinynas): remove resolution, model_kwargs and "
                    "train from its entry"
                )
            return
        check_model(self.model, self.model_kwargs)
        if self.resolution is None:
            raise ConfigError(f"model {self.model}: resolution is required")


@dataclass(frozen=True)
class DeployConfig:
    """What the deploy stage measures for every model."""

    target: str = "stm32f746"
    calibration_samples: int = field(default=256, metadata=bounds(ge=1))
    eval_samples: int = field(default=1000, metadata=bounds(ge=1))  # int8 accuracy, host C build
    check_samples: int = field(default=2, metadata=bounds(ge=1))  # bit-exact in all four executors
    emulate: bool = True  # Cortex-M7 build + emulation (instruction counts)
    reference_kernels: bool = True  # also emulate the reference-kernel build (the slow baseline)
    patches: list[int] = field(default_factory=lambda: [2, 3, 4], metadata=bounds(ge=1, le=16))
    max_patch_overhead: float = field(default=0.3, metadata=bounds(ge=0))
    stack_bytes: int = field(default=16384, metadata=bounds(ge=1024))
    opt: str = "-O2"
    # flash (kB) the per-channel code may add over the int8 GEMM (CodegenOptions.channel_flash)
    channel_flash_kb: int = field(default=192, metadata=bounds(ge=0, le=4096))


@dataclass(frozen=True)
class PatchConfig:
    """MCUNetV2 Table 1's setting: MobileNetV2 (width 1.0, 1000 classes) at 224 px, 4x4 patches.

    Peak memory and MACs do not depend on the weights, so this analytic row needs no ImageNet.
    """

    width: float = field(default=1.0, metadata=bounds(gt=0))
    resolution: int = field(default=224, metadata=bounds(ge=32))
    num_classes: int = field(default=1000, metadata=bounds(ge=2))
    patches: int = field(default=4, metadata=bounds(ge=1))
    max_overhead: float = field(default=0.3, metadata=bounds(ge=0))


@dataclass(frozen=True)
class FuzzConfig:
    """The engine on models nobody wrote for it (:func:`common.mcu.fuzz.run`): ``models`` random
    int8 models from seed ``seed`` on, each deployed on every engine and compared with TF-Lite
    Micro on ``inputs`` inputs (every ``emulate_every``-th model, the first included, also on
    the emulated Cortex-M7; 0: none), and ``malformed`` broken files, each given to the deploy command in a
    fresh process. Run in chunks of ``chunk`` models (with their share of the malformed files),
    each recorded as it finishes, so an interrupted campaign resumes."""

    models: int = field(default=200, metadata=bounds(ge=1))
    malformed: int = field(default=200, metadata=bounds(ge=0))
    emulate_every: int = field(default=20, metadata=bounds(ge=0))
    inputs: int = field(default=3, metadata=bounds(ge=1))
    chunk: int = field(default=20, metadata=bounds(ge=1))
    seed: int = field(default=0, metadata=bounds(ge=0))


@dataclass(frozen=True)
class ReferenceGrid:
    """The grid the MCUs' budgets are for (the paper's: ImageNet's 1000 classes, up to 224 px and
    width 1.0): the budgets are scaled from its largest network to ours."""

    num_classes: int = field(default=1000, metadata=bounds(ge=2))
    resolution: int = field(default=224, metadata=bounds(ge=8))
    width_mult: float = field(default=1.0, metadata=bounds(gt=0))


@dataclass(frozen=True)
class SearchConfig:
    """TinyNAS stage 2 (:mod:`common.tinynas.search`) for the MCU ``budget`` (a key of
    ``tinynas.budgets``), in the space stage 1 chose for it.

    The supernet trains on ``train_subset`` training images (the same images as the table
    networks, same seed): the largest network for ``full_steps``, then every choice at once for
    ``joint_steps`` with ``subnets_per_step`` sub-networks per step, distilled from the largest
    (``kd_ratio``); ``train`` gives the optimiser and batch (its length is replaced). The search
    measures candidates on ``holdout`` further training images (never trained on), after BN
    recalibration on ``calibration_images`` of the training images; the winner is fine-tuned
    with ``finetune`` and tested on ``test_subset`` test images."""

    budget: str
    train: TrainConfig
    full_steps: int = field(metadata=bounds(ge=1))
    joint_steps: int = field(metadata=bounds(ge=1))
    finetune: TrainConfig
    evolution: EvolutionConfig = field(
        default_factory=lambda: EvolutionConfig(population=16, generations=6)
    )
    subnets_per_step: int = field(default=2, metadata=bounds(ge=1))
    kd_ratio: float = field(default=1.0, metadata=bounds(ge=0))
    train_subset: int | None = field(default=None, metadata=bounds(ge=1))
    holdout: int = field(default=1000, metadata=bounds(ge=1))
    test_subset: int | None = field(default=None, metadata=bounds(ge=1))
    calibration_images: int = field(default=500, metadata=bounds(ge=1))
    calibration_batch: int = field(default=100, metadata=bounds(ge=1))
    seed: int = 0


@dataclass(frozen=True)
class CodesignConfig:
    """MCUNet Table 2's memory half (stage ``mcunet_codesign``; :mod:`common.tinynas.codesign`):
    every member (``tinynas.grid``'s width multipliers x resolutions) of each baseline family
    (registered architectures with a ``width`` argument) measured under both engines' memory
    (:meth:`TinyNASConfig.memory_models`) for ``budget`` (a key of ``tinynas.budgets``, scaled
    as stage 1 scaled it)."""

    budget: str
    families: list[str]

    def __post_init__(self) -> None:
        if not self.families:
            raise ConfigError("tinynas.codesign.families: list at least one architecture")
        for name in self.families:
            check_model(name, {"width": 1.0})


@dataclass(frozen=True)
class Table2Config:
    """MCUNet Table 2's accuracy half (stage ``mcunet_table2``): every cell (each family's
    largest member per engine from ``mcunet_codesign``, and the network TinyNAS found under each
    engine's memory) trained from scratch with the same ``train`` schedule on the same
    ``train_subset`` images (drawn with ``data_seed``, as the table networks' are) and tested on
    ``test_subset``, once per seed of ``seeds``. The seeds' spread, pooled over the cells, is the
    noise estimate of the claims (at least two seeds are needed for it)."""

    train: TrainConfig
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    train_subset: int | None = field(default=None, metadata=bounds(ge=1))
    test_subset: int | None = field(default=None, metadata=bounds(ge=1))
    data_seed: int = 0

    def __post_init__(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(
                f"tinynas.table2.seeds: need distinct seeds (two or more for a noise estimate), "
                f"got {self.seeds}"
            )


def limit_label(key: str) -> str:
    """A key of ``tinynas.table3.limits`` as the report names its column: ``5fps`` -> ``5 FPS``."""
    return key[:-3] + " FPS" if key.endswith("fps") else key


@dataclass(frozen=True)
class Table3Config:
    """MCUNet Table 3 (stage ``mcunet_table3``): ``family`` (one of ``tinynas.codesign.families``)
    under each engine and TinyNAS under our engine, with no latency limit (Table 2's cells) and
    under each of ``limits`` (key: the column, e.g. ``5fps``).

    ``unit: ms``: a limit is a latency *estimate* in ms at the target's clock and an assumed IPC
    of 1 (the paper's 200 and 100 ms); ``unit: fraction``: a fraction of the no-limit TinyNAS
    network's estimate under our engine (the rule where the networks are far smaller than the
    paper's). Every latency is an exact instruction count on the emulated Cortex-M7: a family's
    cell is its member with the most MACs that fits the engine's memory *and* is measured within
    the limit (``probes`` and ``margin`` only decide which members are measured:
    :func:`common.tinynas.latency.largest_within`); TinyNAS searches the supernet again with the
    limit as one more constraint, predicted by an instruction table of ``table_archs`` covering
    sub-networks (checked on ``validate_archs`` random ones), and its winner is measured: when
    over, the search runs again with the limit tightened by the overshoot, at most ``retries``
    times. The cells are trained as Table 2's (its schedule, seeds and images)."""

    limits: dict[str, float]
    unit: Literal["ms", "fraction"] = "fraction"
    family: str = "mobilenet_v2"
    probes: int = field(default=4, metadata=bounds(ge=1))
    margin: float = field(default=0.2, metadata=bounds(ge=0))
    table_archs: int = field(default=8, metadata=bounds(ge=1))
    validate_archs: int = field(default=3, metadata=bounds(ge=0))
    calibration_images: int = field(default=64, metadata=bounds(ge=1))
    retries: int = field(default=2, metadata=bounds(ge=0))

    def __post_init__(self) -> None:
        if not self.limits:
            raise ConfigError("tinynas.table3.limits: give at least one limit, e.g. {5fps: 0.5}")
        for key, value in self.limits.items():
            if not re.fullmatch(r"[a-z0-9_]+", key) or key == "none":
                raise ConfigError(
                    f"tinynas.table3.limits: {key!r}: use lower-case letters, digits and _ "
                    "(it names metrics; 'none' is the no-limit column)"
                )
            if not value > 0 or (self.unit == "fraction" and value > 1):
                raise ConfigError(
                    f"tinynas.table3.limits.{key}: {value} is out of range: a fraction in "
                    "(0, 1] of the no-limit network's latency, or ms > 0 with unit: ms"
                )


@dataclass(frozen=True)
class SpaceAblationConfig:
    """MCUNet Table 6 (stage ``mcunet_space_ablation``): the space stage 1 chose for
    ``tinynas.search.budget`` under our engine against ``random_spaces`` spaces drawn with
    ``seed`` among the grid's other spaces where at least ``candidates`` of stage 1's random
    networks fit. Every space gets the same search, a cheap one: its network is the one with
    the most MACs (stage 1's own statistic) among its first ``candidates`` fitting samples (the
    same number in every space), trained from scratch as Table 2's cells (its schedule, seeds
    and images)."""

    random_spaces: int = field(default=4, metadata=bounds(ge=1))
    candidates: int = field(default=10, metadata=bounds(ge=1))
    seed: int = 0


@dataclass(frozen=True)
class TinyNASConfig:
    """TinyNAS stage 1, search-space optimisation (:mod:`common.tinynas.space`): ``space`` is the
    skeleton and choices (its ``width_mult`` and ``resolution_range`` are replaced by each grid
    point's), ``budgets`` the MCUs' memories as the paper gives them, ``code_kb`` the flash the
    engine's code takes besides the model's constants (a setting), ``reference_code_kb`` the
    same for the reference kernels with TF-Lite Micro (a setting), ``reference`` the grid the
    budgets are scaled from (None: used as they are); ``search`` stage 2 (None: not run; it runs
    once per engine); ``codesign`` and ``table2`` Table 2's memory and accuracy halves (None: not
    run)."""

    space: OFAMobileNetV3Config
    grid: SpaceGrid
    budgets: dict[str, MemoryBudget]
    code_kb: float = field(default=0.0, metadata=bounds(ge=0))
    reference_code_kb: float = field(default=0.0, metadata=bounds(ge=0))
    reference: ReferenceGrid | None = None
    search: SearchConfig | None = None
    codesign: CodesignConfig | None = None
    table2: Table2Config | None = None
    table3: Table3Config | None = None
    space_ablation: SpaceAblationConfig | None = None

    def __post_init__(self) -> None:
        for key, block in (("search", self.search), ("codesign", self.codesign)):
            if block is not None and block.budget not in self.budgets:
                raise ConfigError(
                    f"tinynas.{key}.budget: {block.budget!r} is not one of the budgets "
                    f"({', '.join(self.budgets)})"
                )
        if self.table2 is not None and (self.search is None or self.codesign is None):
            raise ConfigError(
                "tinynas.table2 trains the cells that tinynas.search and tinynas.codesign "
                "choose: set both blocks (see the default profile) or remove tinynas.table2"
            )
        if self.space_ablation is not None and self.table2 is None:
            raise ConfigError(
                "tinynas.space_ablation trains its networks as tinynas.table2: set "
                "tinynas.table2 (see the default profile) or remove tinynas.space_ablation"
            )
        if self.table3 is not None:
            if self.table2 is None:
                raise ConfigError(
                    "tinynas.table3 trains its cells as tinynas.table2 and takes its no-limit "
                    "column from it: set tinynas.table2 (see the default profile) or remove "
                    "tinynas.table3"
                )
            assert self.codesign is not None
            if self.table3.family not in self.codesign.families:
                raise ConfigError(
                    f"tinynas.table3.family: {self.table3.family!r} is not one of "
                    f"tinynas.codesign.families ({', '.join(self.codesign.families)})"
                )

    def memory_models(self) -> dict[str, MemoryModel]:
        """The two engines of the co-design tables, by key: ``tflm``, the reference kernels
        with TF-Lite Micro's memory plan and ``reference_code_kb`` of code; ``ours``, our
        engine's TinyEngine-style plan with ``code_kb``."""
        return {
            "tflm": MemoryModel(code_kb=self.reference_code_kb, planner="tflm"),
            "ours": MemoryModel(code_kb=self.code_kb, planner="tinyengine"),
        }


@dataclass(frozen=True)
class MCUNetProfile:
    models: dict[str, ModelConfig]
    deploy: DeployConfig = DeployConfig()
    patch: PatchConfig = PatchConfig()
    fuzz: FuzzConfig = FuzzConfig()
    tinynas: TinyNASConfig | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        searched = [k for k, m in self.models.items() if m.model == SEARCHED]
        if searched and (self.tinynas is None or self.tinynas.search is None):
            raise ConfigError(
                f"models.{searched[0]} is the TinyNAS-searched network, but tinynas.search is "
                "not set: add it (see the default profile) or remove the model"
            )
