"""A spinning multi-beam LiDAR, ray-cast against a :class:`~common.driving.world.World`.

The sensor sits ``mount_height`` metres above the pose ``(x, y, yaw)`` of the car. Its range
image is ``(beams, cols)``: row 0 is the top beam (``fov_up_deg``), rows go down evenly to
``fov_down_deg``; column ``j`` looks at azimuth ``pi - (j + 0.5) * res`` in the vehicle frame
(counter-clockwise from straight ahead), so column 0 looks just left of straight back, the front
is in the middle column and the columns sweep clockwise seen from above, as a spinning sensor's
image is usually laid out. A pixel holds the range (m) of the first hit along its ray, 0 where
there is none within ``max_range``.

Speed: the ray directions are computed once per config; objects beyond ``max_range`` are culled,
and every remaining object is tested only against the block of rays (beam rows x azimuth columns)
that can reach it, all objects at once in float32 numpy. One default scan (32 x 900 rays) in a
default world takes about 4-5 ms on one CPU core, one at 0.2 degrees about 10 ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from common.config import ConfigError, bounds
from common.driving._validate import check_bounds
from common.driving.world import World


@dataclass(frozen=True)
class LidarConfig:
    """The sensor.

    ``azimuth_res_deg``: real spinning LiDARs sample every 0.1-0.2 degrees (the paper profile uses
    0.2); the default 0.4 halves the points and the cost. The number of columns is
    ``round(360 / azimuth_res_deg)``. ``range_noise`` is the standard deviation of Gaussian range
    noise (m) and ``dropout`` the probability that a return is lost.
    """

    beams: int = field(default=32, metadata=bounds(ge=2, le=256))
    fov_up_deg: float = field(default=10.0, metadata=bounds(ge=-90, le=90))
    fov_down_deg: float = field(default=-30.0, metadata=bounds(ge=-90, le=90))
    azimuth_res_deg: float = field(default=0.4, metadata=bounds(ge=0.05, le=10))
    max_range: float = field(default=50.0, metadata=bounds(gt=0))
    mount_height: float = field(default=1.8, metadata=bounds(gt=0))
    range_noise: float = field(default=0.02, metadata=bounds(ge=0))
    dropout: float = field(default=0.02, metadata=bounds(ge=0, lt=1))

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.fov_down_deg >= self.fov_up_deg:
            raise ConfigError(
                f"LidarConfig.fov_down_deg: {self.fov_down_deg} must be below fov_up_deg "
                f"({self.fov_up_deg})"
            )

    @property
    def cols(self) -> int:
        """Azimuth columns of the range image."""
        return round(360.0 / self.azimuth_res_deg)


@dataclass(frozen=True)
class _Rays:
    elevation: np.ndarray  # (B,) rad, row 0 the top beam
    azimuth: np.ndarray  # (C,) rad in the vehicle frame
    cos_el: np.ndarray  # (B,)
    sin_el: np.ndarray  # (B,)
    el_step: float  # rad between beams
    az_step: float  # rad between columns


@lru_cache(maxsize=16)
def _rays(config: LidarConfig) -> _Rays:
    el = np.radians(np.linspace(config.fov_up_deg, config.fov_down_deg, config.beams))
    az_step = 2 * math.pi / config.cols
    az = math.pi - (np.arange(config.cols) + 0.5) * az_step
    return _Rays(el, az, np.cos(el), np.sin(el), float(el[0] - el[1]), az_step)


def _object_arrays(world: World) -> dict[str, np.ndarray]:
    """Per-object constants of the world, computed once per world."""
    if "lidar" not in world.cache:
        b = world.boxes
        c = world.cylinders
        world.cache["lidar"] = {
            "box_xy": b[:, :2].copy(),
            "box_z0": b[:, 2].copy(),
            "box_z1": b[:, 2] + b[:, 5],
            "box_radius": 0.5 * np.hypot(b[:, 3], b[:, 4]),
            "box_half": (0.5 * b[:, 3:6]).astype(np.float32),
            "box_cos": np.cos(b[:, 6]),
            "box_sin": np.sin(b[:, 6]),
            # Corner offsets from the centre in the world frame (M, 4, 2), for azimuth bounds.
            "box_corners": _corners(b),
            "cyl_xy": c[:, :2].copy(),
            "cyl_r": c[:, 2].copy(),
            "cyl_z0": c[:, 3].copy(),
            "cyl_z1": c[:, 3] + c[:, 4],
        }
    return world.cache["lidar"]


def _corners(b: np.ndarray) -> np.ndarray:
    sx = np.array([1, 1, -1, -1]) * 0.5
    sy = np.array([1, -1, -1, 1]) * 0.5
    lx, ly = b[:, 3:4] * sx, b[:, 4:5] * sy  # (M, 4)
    c, s = np.cos(b[:, 6:7]), np.sin(b[:, 6:7])
    return np.stack([c * lx - s * ly, s * lx + c * ly], axis=-1)


def _ray_blocks(
    rays: _Rays,
    config: LidarConfig,
    yaw: float,
    rel: np.ndarray,
    radius: np.ndarray,
    z0: np.ndarray,
    z1: np.ndarray,
    az_lo: np.ndarray,
    az_hi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate (object, ray) pairs: each object against the rows and columns that can reach
    it. ``rel``: object centres relative to the sensor; ``az_lo``/``az_hi``: the world azimuth
    interval the object spans (ignored where the sensor is inside its bounding circle)."""
    n_b, n_c = len(rays.elevation), len(rays.azimuth)
    h = config.mount_height
    dist = np.hypot(rel[:, 0], rel[:, 1])
    inside = dist <= radius + 1e-6
    dmin = np.maximum(dist - radius, 1e-3)
    dmax = dist + radius
    # Elevation interval: the extremes over the nearest and farthest horizontal distances.
    el_lo = np.minimum(np.arctan2(z0 - h, dmin), np.arctan2(z0 - h, dmax))
    el_hi = np.maximum(np.arctan2(z1 - h, dmin), np.arctan2(z1 - h, dmax))
    el_lo = np.where(inside, -np.pi / 2, el_lo)
    el_hi = np.where(inside, np.pi / 2, el_hi)
    top = rays.elevation[0]
    r0 = np.clip(np.floor((top - el_hi) / rays.el_step), 0, n_b - 1).astype(np.int64)
    r1 = np.clip(np.ceil((top - el_lo) / rays.el_step), 0, n_b - 1).astype(np.int64)
    rows = np.where(np.ceil((top - el_lo) / rays.el_step) < 0, 0, r1 - r0 + 1)
    rows = np.where(np.floor((top - el_hi) / rays.el_step) > n_b - 1, 0, rows)
    # Azimuth interval -> columns; column j looks at pi - (j + 0.5) * step (vehicle frame).
    a_lo = az_lo - yaw
    a_hi = az_hi - yaw
    c0 = np.floor((np.pi - a_hi) / rays.az_step - 0.5).astype(np.int64)
    c1 = np.ceil((np.pi - a_lo) / rays.az_step - 0.5).astype(np.int64)
    cols = np.minimum(c1 - c0 + 1, n_c)
    c0 = np.where(inside, 0, c0)
    cols = np.where(inside, n_c, cols)

    counts = rows * cols
    total = int(counts.sum())
    obj = np.repeat(np.arange(len(counts)), counts)
    start = np.cumsum(counts) - counts
    local = np.arange(total) - np.repeat(start, counts)
    rows_o = rows[obj]
    row = r0[obj] + local % rows_o
    col = (c0[obj] + local // rows_o) % n_c
    return obj, row * n_c + col


def _cast(world: World, pose: np.ndarray, config: LidarConfig, cull: bool = True) -> np.ndarray:
    """Noise-free ranges ``(beams, cols)``, ``inf`` where nothing is hit within ``max_range``.
    ``cull=False`` tests every ray against every object (the reference the tests compare to)."""
    rays = _rays(config)
    n_b, n_c = len(rays.elevation), len(rays.azimuth)
    x, y, yaw = float(pose[0]), float(pose[1]), float(pose[2])
    h = config.mount_height
    az_w = rays.azimuth + yaw
    dx = (rays.cos_el[:, None] * np.cos(az_w)[None, :]).astype(np.float32).ravel()
    dy = (rays.cos_el[:, None] * np.sin(az_w)[None, :]).astype(np.float32).ravel()
    dz = np.repeat(rays.sin_el.astype(np.float32), n_c)
    best = np.full(n_b * n_c, np.inf, dtype=np.float32)

    # Ground plane z = 0.
    down = rays.sin_el < 0
    ground = np.full(n_b, np.inf)
    ground[down] = h / -rays.sin_el[down]
    best[:] = np.repeat(ground.astype(np.float32), n_c)

    obj_arrays = _object_arrays(world)
    sensor = np.array([x, y])
    tiny = np.float32(1e-9)

    # Oriented boxes: slab test in each box's frame.
    rel = obj_arrays["box_xy"] - sensor
    radius = obj_arrays["box_radius"]
    near = np.flatnonzero(np.hypot(rel[:, 0], rel[:, 1]) - radius < config.max_range)
    if len(near):
        if cull:
            corners = obj_arrays["box_corners"][near] + rel[near, None, :]  # (m, 4, 2)
            centre_az = np.arctan2(rel[near, 1], rel[near, 0])
            ang = np.arctan2(corners[..., 1], corners[..., 0]) - centre_az[:, None]
            ang = (ang + np.pi) % (2 * np.pi) - np.pi
            obj, ray = _ray_blocks(
                rays,
                config,
                yaw,
                rel[near],
                radius[near],
                obj_arrays["box_z0"][near],
                obj_arrays["box_z1"][near],
                centre_az + ang.min(1),
                centre_az + ang.max(1),
            )
        else:
            obj = np.repeat(np.arange(len(near)), n_b * n_c)
            ray = np.tile(np.arange(n_b * n_c), len(near))
        idx = near[obj]
        cb = obj_arrays["box_cos"][idx].astype(np.float32)
        sb = obj_arrays["box_sin"][idx].astype(np.float32)
        # The sensor in each box's frame (float64 first: world coordinates are large).
        cos64, sin64 = obj_arrays["box_cos"], obj_arrays["box_sin"]
        ox = (-(rel[:, 0] * cos64 + rel[:, 1] * sin64)).astype(np.float32)
        oy = (rel[:, 0] * sin64 - rel[:, 1] * cos64).astype(np.float32)
        oz = (h - 0.5 * (obj_arrays["box_z0"] + obj_arrays["box_z1"])).astype(np.float32)
        half = obj_arrays["box_half"][idx]
        rdx, rdy, rdz = dx[ray], dy[ray], dz[ray]
        lx = cb * rdx + sb * rdy
        ly = cb * rdy - sb * rdx
        t_near, t_far = _slab(ox[idx], lx, half[:, 0], tiny)
        t0, t1 = _slab(oy[idx], ly, half[:, 1], tiny)
        np.maximum(t_near, t0, out=t_near)
        np.minimum(t_far, t1, out=t_far)
        t0, t1 = _slab(oz[idx], rdz, half[:, 2], tiny)
        np.maximum(t_near, t0, out=t_near)
        np.minimum(t_far, t1, out=t_far)
        hit = (t_near <= t_far) & (t_near > 0)
        np.minimum.at(best, ray[hit], t_near[hit])

    # Vertical cylinders: the side (a 2D circle), and the cap facing the sensor.
    rel = obj_arrays["cyl_xy"] - sensor
    radius = obj_arrays["cyl_r"]
    dist = np.hypot(rel[:, 0], rel[:, 1])
    near = np.flatnonzero(dist - radius < config.max_range)
    if len(near):
        if cull:
            centre_az = np.arctan2(rel[near, 1], rel[near, 0])
            half_angle = np.arcsin(np.clip(radius[near] / np.maximum(dist[near], 1e-9), 0, 1))
            obj, ray = _ray_blocks(
                rays,
                config,
                yaw,
                rel[near],
                radius[near],
                obj_arrays["cyl_z0"][near],
                obj_arrays["cyl_z1"][near],
                centre_az - half_angle,
                centre_az + half_angle,
            )
        else:
            obj = np.repeat(np.arange(len(near)), n_b * n_c)
            ray = np.tile(np.arange(n_b * n_c), len(near))
        idx = near[obj]
        ocx = (-rel[:, 0]).astype(np.float32)[idx]  # sensor relative to the axis
        ocy = (-rel[:, 1]).astype(np.float32)[idx]
        r = radius.astype(np.float32)[idx]
        z0 = obj_arrays["cyl_z0"].astype(np.float32)[idx]
        z1 = obj_arrays["cyl_z1"].astype(np.float32)[idx]
        rdx, rdy, rdz = dx[ray], dy[ray], dz[ray]
        a = np.maximum(rdx * rdx + rdy * rdy, tiny)
        b = ocx * rdx + ocy * rdy  # half of the usual b
        c = ocx * ocx + ocy * ocy - r * r
        disc = b * b - a * c
        with np.errstate(invalid="ignore"):
            t_side = (-b - np.sqrt(disc)) / a
        z_hit = h + t_side * rdz
        side = (disc >= 0) & (t_side > 0) & (z_hit >= z0) & (z_hit <= z1)
        t = np.where(side, t_side, np.inf).astype(np.float32)
        # The cap facing the sensor: the top when the sensor is above, the bottom when below.
        z_cap = np.where(z1 < h, z1, z0)
        has_cap = (z1 < h) | (z0 > h)
        safe_dz = np.where(np.abs(rdz) < tiny, tiny, rdz)
        t_cap = (z_cap - h) / safe_dz
        px, py = ocx + t_cap * rdx, ocy + t_cap * rdy
        cap = has_cap & (t_cap > 0) & (px * px + py * py <= r * r)
        t = np.where(cap, np.minimum(t, t_cap), t)
        hit = np.isfinite(t)
        np.minimum.at(best, ray[hit], t[hit])

    best[best > config.max_range] = np.inf
    return best.reshape(n_b, n_c)


def _slab(o: np.ndarray, d: np.ndarray, half: np.ndarray, tiny: np.float32):
    """Entry and exit ray parameters of the slab ``|o + t d| <= half``."""
    inv = 1.0 / np.where(np.abs(d) < tiny, tiny, d)
    t0 = (-half - o) * inv
    t1 = (half - o) * inv
    return np.minimum(t0, t1), np.maximum(t0, t1)


def range_image(
    world: World, pose: np.ndarray, config: LidarConfig, rng: np.random.Generator | None = None
) -> np.ndarray:
    """The range image seen from ``pose``.

    Args:
        world: what to scan.
        pose: ``(x, y, yaw)`` of the car; the sensor is ``mount_height`` above ``(x, y)``.
        config: the sensor.
        rng: draws the range noise and the dropped returns; ``None`` gives a noise-free image.

    Returns:
        ``(beams, cols)`` float32 ranges (m), 0 where there is no return.
    """
    t = _cast(world, pose, config)
    hit = np.isfinite(t)
    out = np.where(hit, t, np.float32(0)).astype(np.float32)
    if rng is not None:
        # Always draw both arrays, so the random stream does not depend on what was hit.
        noise = rng.standard_normal(out.shape, dtype=np.float32)
        lost = rng.random(out.shape, dtype=np.float32) < config.dropout
        if config.range_noise > 0:
            out = np.where(hit, out + np.float32(config.range_noise) * noise, out)
            out = np.where(hit, np.clip(out, 1e-3, config.max_range), out).astype(np.float32)
        out[lost] = 0
    return out


@lru_cache(maxsize=16)
def _unit_vectors(config: LidarConfig) -> np.ndarray:
    rays = _rays(config)
    ce, se = rays.cos_el[:, None], rays.sin_el[:, None]
    ca, sa = np.cos(rays.azimuth)[None, :], np.sin(rays.azimuth)[None, :]
    shape = (config.beams, config.cols)
    return np.stack(
        [
            np.broadcast_to(ce * ca, shape),
            np.broadcast_to(ce * sa, shape),
            np.broadcast_to(se, shape),
        ],
        axis=-1,
    ).astype(np.float32)


def points_from_range(ranges: np.ndarray, config: LidarConfig) -> np.ndarray:
    """The returns of a range image as points in the vehicle frame.

    Returns:
        ``(N, 3)`` float32 ``x`` forward, ``y`` left, ``z`` up, origin on the ground under the
        sensor (the ground is at z ~ 0), one point per pixel with a range > 0 (row-major order).
    """
    if ranges.shape != (config.beams, config.cols):
        raise ValueError(
            f"range image of shape {ranges.shape} does not match the config "
            f"({config.beams}, {config.cols})"
        )
    mask = ranges > 0
    pts = _unit_vectors(config)[mask] * ranges[mask][:, None]
    pts[:, 2] += np.float32(config.mount_height)
    return pts


def scan(
    world: World, pose: np.ndarray, config: LidarConfig, rng: np.random.Generator | None = None
) -> np.ndarray:
    """One LiDAR sweep from ``pose``: ``points_from_range(range_image(...))``, ``(N, 3)``."""
    return points_from_range(range_image(world, pose, config, rng), config)
