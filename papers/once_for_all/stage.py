"""What the Once-for-All stages share: the stage decorator with this paper's flags, the data
splits, saving and loading supernets and sub-networks."""

from __future__ import annotations

import copy
import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset

from common.checkpoint import CheckpointError, load_model, save_model
from common.config import ConfigError
from common.data import build_dataset
from common.data.arrays import ArrayDataset
from common.data.loader import build_loader
from common.data.vision import imagenet_transform
from common.ofa import OFAMobileNetV3, OFAMobileNetV3Config
from common.ofa.supernet import build_static_subnet, subnet_spec
from common.ofa.training import Arch, calibration_batches
from common.stage import STAGE_FLAGS, stage
from papers.once_for_all.config import OFAProfile

SECTION = "once_for_all"
SUPERNET_FILE = "supernet.safetensors"

FLAGS: dict[str, dict[str, Any]] = {
    **STAGE_FLAGS,
    "phase": {"required": True, "help": "phase: a key of the profile's phases"},
    "init": {"type": Path, "default": None, "help": "directory of the phase this one starts from"},
    "teacher": {"type": Path, "default": None, "help": "directory of the full network (teacher)"},
    "supernet": {"type": Path, "required": True, "help": "directory of the trained supernet"},
    "nops": {"type": Path, "required": True, "help": "directory of the no-PS supernet"},
    "full": {"type": Path, "required": True, "help": "directory of the full network (phase full)"},
    "kernel": {"type": Path, "required": True, "help": "directory of the elastic-kernel phase"},
    "predictor": {"type": Path, "required": True, "help": "directory of the accuracy predictor"},
    "samples": {"type": Path, "required": True, "help": "measured [arch, accuracy] JSON"},
    "latency": {"type": Path, "required": True, "help": "latency lookup table JSON"},
    "mcu-table": {"type": Path, "required": True, "help": "MCU instruction lookup table JSON"},
    "search": {"type": Path, "required": True, "help": "directory of the search results"},
    "scratch": {
        "type": Path,
        "default": None,
        "help": "directory of the from-scratch networks (the ablation reuses its mbv3_w1)",
    },
}

# ``@ofa_stage(name=..., flags=[...], track=...)``: a stage of this paper (common.stage.stage with
# the section, the profile class and the flag catalogue filled in).
ofa_stage = functools.partial(stage, section=SECTION, config=OFAProfile, catalogue=FLAGS)


# ---------------------------------------------------------------------- data
@dataclass
class Splits:
    """``train``: what the phases train on; ``holdout``: disjoint from ``train``, measures the
    predictor's sub-networks; ``calibration``: fixed BN-recalibration batches from ``train``;
    ``test``: the reported accuracies."""

    train: Dataset
    holdout: Dataset
    calibration: list[Tensor]
    test: Dataset
    num_classes: int


def _channels_last(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def _take(ds: Dataset, idx: Tensor) -> Dataset:
    if isinstance(ds, ArrayDataset):
        return ArrayDataset(
            ds.images[idx],
            ds.labels[idx],
            mean=ds.mean.flatten().tolist(),
            std=ds.std.flatten().tolist(),
            num_classes=ds.num_classes,
            name=ds.name,
            transform=ds.transform,
        )
    out = Subset(ds, idx.tolist())
    out.num_classes = ds.num_classes  # type: ignore[attr-defined]
    return out


def subset(ds: Dataset, n: int | None, seed: int) -> Dataset:
    """A fixed random ``n`` of ``ds`` (in their original order), drawn with ``seed``; all of
    ``ds`` when ``n`` is None or not smaller."""
    if n is None or n >= len(ds):
        return ds
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))
    return _take(ds, perm[:n].sort().values)


def stage_seconds(t_start: float, recorded: float, spent: float) -> float:
    """Seconds of a stage's work when it may have resumed from checkpoints: this invocation's
    wall time since ``t_start`` (``time.perf_counter``), plus the resumed work at the seconds
    it took when it ran (``recorded`` covers all the work, ``spent`` the part this invocation
    ran itself)."""
    return time.perf_counter() - t_start + max(0.0, recorded - spent)


def load_splits(cfg: OFAProfile, data: Path) -> Splits:
    """The four splits of the profile (deterministic in ``cfg.seed``)."""
    d = cfg.data
    kwargs: dict[str, Any] = {}
    if d.dataset in ("imagenet", "imagefolder"):
        kwargs["resolution"] = max(cfg.space.resolution_choices())
        root = d.root or (str(data) if d.dataset == "imagefolder" else None)
        train_full = build_dataset(d.dataset, "train", root=root, **kwargs)
        test = build_dataset(d.dataset, "val", root=root, **kwargs)
        # The held-out images are measured, not trained on: evaluation transforms for them.
        train_eval = copy.copy(train_full)
        train_eval.transform = imagenet_transform(False, kwargs["resolution"])
    else:
        train_full = build_dataset(d.dataset, "train", root=data)
        test = build_dataset(d.dataset, "test", root=data)
        train_eval = train_full
    if d.channels_last and isinstance(train_full, ArrayDataset):
        train_full.transform = test.transform = _channels_last
    n = len(train_full)
    if d.holdout_images >= n:
        raise ConfigError(
            f"data.holdout_images ({d.holdout_images}) must be below the {n} training images"
        )
    g = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(n, generator=g)
    holdout_idx = perm[: d.holdout_images].sort().values
    rest = perm[d.holdout_images :]
    train_idx = (rest if d.train_images is None else rest[: d.train_images]).sort().values
    train = _take(train_full, train_idx)
    holdout = _take(train_eval, holdout_idx)
    test = subset(test, d.test_images, cfg.seed)
    # BN calibration images pass the evaluation transform (the same pixels in every process)
    calib = calibration_batches(
        train if train_eval is train_full else _take(train_eval, train_idx),
        images=d.calibration_images,
        batch_size=d.calibration_batch,
        seed=cfg.seed,
    )
    return Splits(train, holdout, calib, test, int(train_full.num_classes))


def loader(ds: Dataset, batch_size: int) -> Any:
    return build_loader(ds, batch_size=batch_size, shuffle=False)


# ---------------------------------------------------------------------- supernets
def build_supernet(cfg: OFAProfile, num_classes: int) -> OFAMobileNetV3:
    space = OFAMobileNetV3Config.from_dict({**cfg.space.to_dict(), "num_classes": num_classes})
    return OFAMobileNetV3(space)


def save_supernet(net: OFAMobileNetV3, out: Path, **extra: Any) -> Path:
    arch = {"name": "ofa_mobilenet_v3", "config": net.config.to_dict()}
    return save_model(net, out / SUPERNET_FILE, arch=arch, extra=extra)


def load_supernet(directory: Path) -> tuple[OFAMobileNetV3, dict[str, Any]]:
    """A supernet saved by :func:`save_supernet` (eval mode, largest sub-network active)."""
    path = Path(directory) / SUPERNET_FILE

    def build(arch: dict[str, Any]) -> nn.Module:
        return OFAMobileNetV3(OFAMobileNetV3Config.from_dict(arch["config"]))

    if not path.is_file():
        raise CheckpointError(
            f"no supernet at {path}: run the stage that trains it (dvc repro papers/once_for_all/dvc.yaml)"
        )
    net, meta = load_model(path, build=build)
    return net, meta  # type: ignore[return-value]


def save_subnet(
    net: nn.Module, out: Path, config: OFAMobileNetV3Config, arch: Arch, **extra: Any
) -> Path:
    """A specialised sub-network as config (spec JSON) + safetensors weights."""
    spec = subnet_spec(config, arch)
    return save_model(
        net,
        out / "model.safetensors",
        arch={"name": "ofa_subnet", "spec": spec.to_dict(), "resolution": int(arch["r"])},
        extra=extra,
    )


def load_subnet(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    def build(arch: dict[str, Any]) -> nn.Module:
        return build_static_subnet(arch["spec"])

    return load_model(path, build=build)


def read_json(path: Path, *, fix: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found: {fix}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}): {fix}") from None
