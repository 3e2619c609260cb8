"""Stage ``fast_lidarnet_data``: the driving dataset (train / val / test splits on different maps).

``data.source: simulated`` (default, smoke): for every split, ``data.maps[split]`` procedural
worlds (:mod:`common.driving`; each from its own seed, so the test maps are never seen in
training) are driven by the pure-pursuit expert with a smoothed random perturbation of its
command (so the data shows the car off the lane centre and how the expert recovers, as
perturbation-based data collection does). Every control step records the LiDAR scan, the noisy
GPS map raster and the *clean* expert's curvature now and at ``horizon`` future steps.

``data.source: recorded`` (the paper profile): your own drives, converted
(:mod:`papers.fast_lidarnet.recorded` documents the format).

Each map is a resumable unit: finished maps are kept under ``--checkpoints`` (with a digest of
the data config and of this stage's code) and a restarted stage continues with the next one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from common.config import to_dict
from common.seed import derive_seed
from common.stage import StageContext, stage
from papers.fast_lidarnet.config import DataConfig, FastLidarnetProfile
from papers.fast_lidarnet.data import SPLITS, concat_splits, pack_frames, read_split, write_split


def map_seed(cfg: DataConfig, split: str, index: int) -> int:
    """The seed of map ``index`` of ``split`` (the drive stage rebuilds the test maps with it)."""
    return derive_seed(cfg.seed, "map", split, index) % 2**31


def simulate_map(cfg: DataConfig, split: str, index: int) -> dict[str, np.ndarray]:
    """Record the expert driving map ``index`` of ``split``: packed arrays of its frames."""
    from common.driving import build_world, record

    seed = map_seed(cfg, split, index)
    world = build_world(cfg.world, seed)
    rec = record(
        world,
        lidar=cfg.lidar,
        map_config=cfg.map,
        vehicle=cfg.vehicle,
        horizon=cfg.horizon,
        seed=derive_seed(seed, "drive") % 2**31,
        lookahead_m=cfg.lookahead_m,
        perturb_sigma=cfg.perturb_sigma,
    )
    frames = len(rec["labels"])
    return pack_frames(rec["points"], rec["maps"], rec["labels"], rec["poses"],
                       np.full(frames, index), cfg.bounds)  # fmt: skip


def code_digest(module: str) -> str:
    """Hash of the repository code ``module`` imports (its static import closure): what a
    resumable unit of a stage must match to be reused. Unlike ``common.fingerprint.source_digest``
    it does not depend on how the stage was started (``python -m`` or a test calling ``main``)."""
    from common.imports import code_files
    from common.paths import repo_root

    root = repo_root()
    h = hashlib.sha256()
    for f in code_files(module, root):
        h.update(f.encode() + b"\0" + (root / f).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _digest(cfg: DataConfig) -> str:
    text = json.dumps(to_dict(cfg), sort_keys=True) + code_digest("papers.fast_lidarnet.simulate")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@stage(
    section="fast_lidarnet",
    name="fast_lidarnet_data",
    config=FastLidarnetProfile,
    flags=["out", "checkpoints", "metrics"],
    track=lambda ctx: ctx.config.data,
)
def main(ctx: StageContext) -> None:
    """Record (or convert) the driving dataset."""
    from tqdm.auto import tqdm

    cfg, out = ctx.config.data, Path(ctx.args.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.source == "recorded":
        from papers.fast_lidarnet.recorded import convert

        counts = convert(cfg, out)
    else:
        parts_dir = Path(ctx.args.checkpoints)
        digest = _digest(cfg)
        for old in parts_dir.glob("*.npz"):
            if not old.name.startswith(digest):
                old.unlink()  # from another config or another version of the code
        counts = {}
        jobs = [(s, i) for s in SPLITS for i in range(cfg.maps[s])]
        bar = tqdm(jobs, desc="maps", unit="map", mininterval=2.0)
        for split, index in bar:
            part = parts_dir / f"{digest}_{split}_{index}.npz"
            if not part.is_file():
                write_split(parts_dir, part.stem, simulate_map(cfg, split, index))
        for split in SPLITS:
            arrays = concat_splits([read_split(parts_dir, f"{digest}_{split}_{i}")
                                    for i in range(cfg.maps[split])])  # fmt: skip
            write_split(out, split, arrays)
            counts[split] = arrays
    meta = {
        "bounds": list(cfg.bounds),
        "horizon": cfg.horizon,
        "source": cfg.source,
        "frames": {s: len(a["labels"]) for s, a in counts.items()},
        "points_per_frame": {s: float(np.diff(a["offsets"]).mean()) for s, a in counts.items()},
        "map_seeds": {s: [map_seed(cfg, s, i) for i in range(cfg.maps[s])] for s in SPLITS}
        if cfg.source == "simulated" else {},
    }  # fmt: skip
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    labels = np.concatenate([counts[s]["labels"][:, 0] for s in SPLITS])
    metrics = {
        **{f"data/{s}_frames": float(n) for s, n in meta["frames"].items()},
        "data/points_per_frame": meta["points_per_frame"]["train"],
        "data/curvature_std_per_km": float(labels.std() * 1000),
        "time/data": ctx.seconds(),
    }
    ctx.finish(metrics, artifacts=[ctx.save_config(cfg, out / "config.json")],
               summary=f"{out}: {meta['frames']} frames")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
