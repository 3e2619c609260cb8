"""What the MCUNet stages share: the harness bound to the ``mcunet`` section, the flag catalogue,
and the datasets at a model's resolution."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common.checkpoint import CheckpointError
from common.config import ConfigError, section_file
from common.data import build_dataset
from common.data.transforms import resize
from common.errors import InputError
from common.stage import STAGE_FLAGS, stage
from papers.mcunet.config import MCUNetProfile, ModelConfig, TinyNASConfig

SECTION = "mcunet"

FLAGS: dict[str, dict[str, Any]] = {
    **STAGE_FLAGS,
    "name": {
        "required": True,
        "help": "model: a key of papers/mcunet/params.yaml: <profile>.models",
    },
    "model": {"type": Path, "required": True, "help": "directory with model.safetensors"},
    "space": {
        "type": Path,
        "required": True,
        "help": "the search-space stage's output directory (its results.json)",
    },
    "searched": {
        "type": Path,
        "required": True,
        "help": "the TinyNAS search stage's output directory (its results.json)",
    },
    "searched-tflm": {
        "type": Path,
        "required": True,
        "help": "the TinyNAS search stage's output directory for TF-Lite Micro's memory",
    },
    "codesign": {
        "type": Path,
        "required": True,
        "help": "the co-design stage's output directory (its results.json)",
    },
    "engine": {
        "choices": ["ours", "tflm"],
        "default": "ours",
        "help": "whose memory the search fits: our engine's plan (ours) or TF-Lite Micro's (tflm)",
    },
    "table2": {
        "type": Path,
        "required": True,
        "help": "the Table 2 stage's output directory (its results.json)",
    },
    "deployed": {
        "type": Path,
        "required": True,
        "help": "deploy stage output of the ablation model (its model.tflite)",
    },
}

# ``@mcunet_stage(name=..., flags=[...], track=...)``: a stage of this paper (see common.stage).
mcunet_stage = functools.partial(stage, section=SECTION, config=MCUNetProfile, catalogue=FLAGS)


def datasets(
    m: ModelConfig, data: Path, seed: int, *, resolution: int | None = None
) -> tuple[Any, Any]:
    """Train and test splits, upsampled to ``resolution`` (default: the model's) when it differs."""
    size = resolution if resolution is not None else m.resolution
    train = build_dataset(m.dataset, "train", root=data, subset=m.train_subset, seed=seed)
    test = build_dataset(m.dataset, "test", root=data, subset=m.test_subset, seed=seed)
    if train.input_shape[-1] != size:
        train.transform = test.transform = resize(size)
    return train, test


def tinynas_block(ctx: Any, key: str | None = None) -> tuple[TinyNASConfig, Any]:
    """The profile's ``tinynas`` block and its ``key`` sub-block (e.g. ``search``), or one line
    naming the missing block and the fix."""
    cfg = ctx.config.tinynas
    block = cfg if cfg is None or key is None else getattr(cfg, key)
    if block is None:
        missing = "tinynas" if cfg is None else f"tinynas.{key}"
        raise ConfigError(
            f"{section_file(ctx.args.params, ctx.section)}: {ctx.profile}.{missing} is missing: "
            "add the block (see the default profile)"
        )
    return cfg, block


@contextlib.contextmanager
def stage_result(directory: Path, stage_name: str, what: str, detail: str = "") -> Iterator[Any]:
    """``<directory>/results.json`` of the stage ``stage_name`` (``what`` names its result, e.g.
    "co-design"; ``detail`` what was looked for in it), parsed; a missing file, or a missing or
    malformed entry read inside the ``with`` block, is one line naming the file and the stage
    to run."""
    path = Path(directory) / "results.json"
    fix = f"run the {what} stage first (`dvc repro papers/mcunet/dvc.yaml:{stage_name}`)"
    if not path.is_file():
        raise CheckpointError(f"{path} not found: {fix}")
    try:
        yield json.loads(path.read_text())
    except InputError:  # a one-line error of the reader's own (e.g. a ConfigError): as it is
        raise
    except (ValueError, KeyError, TypeError, IndexError, StopIteration) as exc:
        raise CheckpointError(
            f"{path} is not a {what} result{detail} ({type(exc).__name__}): {fix}"
        ) from None
