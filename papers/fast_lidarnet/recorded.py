"""Your own drives (the ``paper`` profile, ``data.source: recorded``): the format, and its
conversion into the prepared dataset (:mod:`papers.fast_lidarnet.data`).

A folder ``data.root`` (relative to ``$EFFML_DATA_ROOT`` unless absolute) holds ``splits.yaml``
and one folder per drive::

    splits.yaml           train: [drive_a, drive_b], val: [drive_c], test: [drive_d]
    drive_a/
      log.csv             one row per LiDAR scan, header ``scan,t,x,y,yaw,curvature``:
                          scan file name, time (s), the pose as your GPS / odometry measured it
                          in a local metric frame (m, m, rad; e.g. east-north-up), and the
                          driver's command as curvature (1/m; from the steering angle delta and
                          the wheelbase L: tan(delta) / L)
      route.csv           header ``x,y``: the planned route in the same frame (e.g. exported from
                          a phone's map app), any spacing
      scans/<scan>.npy    float32 (N, >= 3): x forward, y left, z up (m) in the vehicle frame,
                          z measured from the ground (add the sensor's mounting height to
                          sensor-frame points); extra columns (intensity, ring) are ignored

Controls should be logged at the period ``data.vehicle.dt`` (one scan per control step): the
``horizon`` future labels of a scan are the commands of the next ``horizon`` rows, so the last
``horizon`` scans of a drive get no sample. The map raster is drawn from the route around the
logged (GPS) pose, as in simulation; with no road network given, its roads channel is the route.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from common.errors import InputError
from common.paths import data_root
from papers.fast_lidarnet.config import DataConfig
from papers.fast_lidarnet.data import SPLITS, concat_splits, pack_frames, write_split

LOG_FIELDS = ("scan", "t", "x", "y", "yaw", "curvature")


class RecordedDataError(InputError):
    """A recorded drive is missing or malformed."""


def _root(cfg: DataConfig) -> Path:
    root = Path(cfg.root or "").expanduser()
    return root if root.is_absolute() else data_root() / root


def _read_csv(path: Path, fields: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise RecordedDataError(
            f"{path} not found. Fix: see papers/fast_lidarnet/recorded.py for the format"
        )
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or any(k not in rows[0] for k in fields):
        raise RecordedDataError(
            f"{path}: needs the columns {', '.join(fields)} and at least one row"
        )
    return rows


def route_world(route: np.ndarray, lane_width: float = 3.5):
    """A :class:`common.driving.World` with only a route (and it as the one road): what the map
    rasteriser needs for a recorded drive."""
    from common.driving import World

    seg = np.hypot(*np.diff(route, axis=0).T)
    keep = np.concatenate([[True], seg > 1e-6])
    route = route[keep]
    # Resample every 0.5 m, as the simulator's routes are.
    s_cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(route, axis=0).T))])
    s = np.arange(0.0, s_cum[-1] + 1e-9, 0.5)
    pts = np.stack([np.interp(s, s_cum, route[:, 0]), np.interp(s, s_cum, route[:, 1])], 1)
    d = np.gradient(pts, axis=0)
    heading = np.arctan2(d[:, 1], d[:, 0])
    return World(roads=[pts], route=pts, route_s=s, route_heading=heading, lane_width=lane_width,
                 boxes=np.zeros((0, 7)), cylinders=np.zeros((0, 5)), seed=0)  # fmt: skip


def read_drive(folder: Path, cfg: DataConfig, index: int) -> dict[str, np.ndarray]:
    """One drive as packed arrays (see :func:`papers.fast_lidarnet.data.pack_frames`)."""
    from common.driving import rasterize

    rows = _read_csv(folder / "log.csv", LOG_FIELDS)
    route_rows = _read_csv(folder / "route.csv", ("x", "y"))
    try:
        poses = np.array([[float(r["x"]), float(r["y"]), float(r["yaw"])] for r in rows])
        curv = np.array([float(r["curvature"]) for r in rows], dtype=np.float32)
        route = np.array([[float(r["x"]), float(r["y"])] for r in route_rows])
    except ValueError as exc:
        raise RecordedDataError(
            f"{folder}: a number in log.csv or route.csv is not ({exc})"
        ) from None
    if len(route) < 2:
        raise RecordedDataError(f"{folder / 'route.csv'}: the route needs at least two points")
    k = cfg.horizon
    n = len(rows) - k
    if n < 1:
        raise RecordedDataError(f"{folder}: {len(rows)} scans, need more than horizon = {k}")
    world = route_world(route, cfg.world.lane_width)
    points, maps = [], []
    for r, pose in zip(rows[:n], poses[:n], strict=True):
        path = folder / "scans" / f"{Path(r['scan']).stem}.npy"
        try:
            p = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise RecordedDataError(f"{path}: cannot read the scan ({exc})") from None
        if p.ndim != 2 or p.shape[1] < 3:
            raise RecordedDataError(f"{path}: expected an (N, >=3) array of points, got {p.shape}")
        points.append(p[:, :3].astype(np.float32))
        maps.append(rasterize(world, pose, cfg.map))
    labels = np.stack([curv[i : i + k + 1] for i in range(n)])
    return pack_frames(points, np.stack(maps), labels, poses[:n], np.full(n, index), cfg.bounds)


def convert(cfg: DataConfig, out: Path) -> dict[str, dict[str, np.ndarray]]:
    """Convert every drive of ``splits.yaml`` into ``out/<split>.npz``; returns the splits."""
    import yaml

    root = _root(cfg)
    split_file = root / "splits.yaml"
    if not split_file.is_file():
        raise RecordedDataError(
            f"{split_file} not found. Fix: set data.root to the folder of your drives, with a "
            "splits.yaml (see papers/fast_lidarnet/recorded.py)"
        )
    splits = yaml.safe_load(split_file.read_text()) or {}
    missing = [s for s in SPLITS if not splits.get(s)]
    if missing:
        raise RecordedDataError(f"{split_file}: needs at least one drive in {', '.join(missing)}")
    result = {}
    for split in SPLITS:
        parts = [read_drive(root / name, cfg, i) for i, name in enumerate(splits[split])]
        result[split] = concat_splits(parts)
        write_split(out, split, result[split])
    return result


def write_drive(folder: Path, rec: dict, dt: float, route: np.ndarray) -> None:
    """Write a drive in the recorded format (from :func:`common.driving.record`'s output): for
    tests, and as an example of the format."""
    folder = Path(folder)
    (folder / "scans").mkdir(parents=True, exist_ok=True)
    with (folder / "log.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(LOG_FIELDS)
        for i, (pose, label) in enumerate(zip(rec["poses"], rec["labels"], strict=True)):
            np.save(folder / "scans" / f"{i:06d}.npy", np.asarray(rec["points"][i], np.float32))
            w.writerow(
                [f"{i:06d}", f"{i * dt:.3f}", *(f"{v:.4f}" for v in pose), f"{label[0]:.6f}"]
            )
    with (folder / "route.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("x", "y"))
        w.writerows([(f"{x:.3f}", f"{y:.3f}") for x, y in route])
