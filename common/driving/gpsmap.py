"""The coarse, noisy topometric map a phone's GPS and a navigation app would give the car.

:class:`GpsSensor` measures the pose with white noise, a slowly drifting offset
(Ornstein-Uhlenbeck, time constant ``drift_tau_s``), a constant misregistration of the map drawn
once per drive (``route_offset_m``: moving the map by ``+o`` is the same as moving the measured
pose by ``-o``, so it is applied as a constant bias of the measurement) and heading noise.

:func:`rasterize` draws the map around the *measured* pose as a ``(2, H, W)`` image in the
measured vehicle frame: channel 0 the planned route (where to go at the next intersection),
channel 1 every road centre line (the topology). Orientation: row 0 is the farthest ahead, rows
go backwards; column 0 is the farthest to the left, columns go right (the image is the view from
above with the car facing up). The car stands at the bottom centre: at the corner between rows
``H - back_px - 1`` and ``H - back_px`` and columns ``W/2 - 1`` and ``W/2``. Pixel ``(i, j)``
covers forward ``x in [(H - back_px - i - 1) r, (H - back_px - i) r]`` and left
``y in [(W/2 - j - 1) r, (W/2 - j) r]`` for resolution ``r`` (m per pixel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from common.config import ConfigError, bounds
from common.driving._validate import check_bounds
from common.driving.world import World


@dataclass(frozen=True)
class MapConfig:
    """The map raster (``size_px`` square pixels of ``resolution_m`` metres, ``back_px`` rows
    behind the car) and the GPS noise (metres, seconds, degrees)."""

    size_px: int = field(default=32, metadata=bounds(ge=4, le=512))
    resolution_m: float = field(default=1.5, metadata=bounds(gt=0))
    back_px: int = field(default=4, metadata=bounds(ge=0))
    gps_sigma_m: float = field(default=2.0, metadata=bounds(ge=0))
    gps_drift_m: float = field(default=3.0, metadata=bounds(ge=0))
    drift_tau_s: float = field(default=30.0, metadata=bounds(gt=0))
    heading_sigma_deg: float = field(default=3.0, metadata=bounds(ge=0, le=90))
    route_offset_m: float = field(default=1.0, metadata=bounds(ge=0))

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.back_px >= self.size_px:
            raise ConfigError(
                f"MapConfig.back_px: {self.back_px} must be below size_px ({self.size_px})"
            )


class GpsSensor:
    """A GPS/compass pose measurement with white noise, drift and a constant map offset.

    Args:
        config: the noise levels.
        rng: the sensor's random stream (all its noise comes from it).
    """

    def __init__(self, config: MapConfig, rng: np.random.Generator) -> None:
        self.config, self.rng = config, rng
        # Start the drift in its stationary distribution, so the first frames are as noisy as
        # the later ones.
        self.drift = rng.normal(0.0, config.gps_drift_m, size=2)
        self.bias = rng.normal(0.0, config.route_offset_m, size=2)

    def measure(self, true_pose: np.ndarray, dt: float) -> np.ndarray:
        """The measured pose ``(x, y, yaw)`` after ``dt`` seconds since the last measurement."""
        c = self.config
        eps = self.rng.standard_normal(5)  # always five draws: a stream independent of dt
        if dt > 0:
            a = math.exp(-dt / c.drift_tau_s)  # exact discretisation of the OU process
            self.drift = a * self.drift + math.sqrt(1 - a * a) * c.gps_drift_m * eps[:2]
        xy = np.asarray(true_pose[:2], dtype=np.float64) + self.drift + self.bias
        xy = xy + c.gps_sigma_m * eps[2:4]
        yaw = float(true_pose[2]) + math.radians(c.heading_sigma_deg) * eps[4]
        return np.array([xy[0], xy[1], (yaw + math.pi) % (2 * math.pi) - math.pi])


def _road_points(world: World, spacing: float) -> np.ndarray:
    key = ("map_roads", round(spacing, 6))
    if key not in world.cache:
        pts = []
        for road in world.roads:
            seg = np.hypot(*np.diff(road, axis=0).T)
            s_cum = np.concatenate([[0.0], np.cumsum(seg)])
            s = np.arange(0.0, s_cum[-1] + 1e-9, spacing)
            pts.append(
                np.stack([np.interp(s, s_cum, road[:, 0]), np.interp(s, s_cum, road[:, 1])], 1)
            )
        world.cache[key] = np.concatenate(pts)
    return world.cache[key]


def _splat(raster: np.ndarray, pts: np.ndarray, pose: np.ndarray, config: MapConfig) -> None:
    """Set the pixels of ``raster`` (H, W) that world points ``pts`` (N, 2) fall in."""
    c, s = math.cos(pose[2]), math.sin(pose[2])
    ex, ey = pts[:, 0] - pose[0], pts[:, 1] - pose[1]
    fwd, left = c * ex + s * ey, -s * ex + c * ey
    n, r = config.size_px, config.resolution_m
    i = np.floor(n - config.back_px - fwd / r).astype(np.int64)
    j = np.floor(n / 2 - left / r).astype(np.int64)
    ok = (i >= 0) & (i < n) & (j >= 0) & (j < n)
    raster[i[ok], j[ok]] = 1.0


def rasterize(
    world: World, noisy_pose: np.ndarray, config: MapConfig, hint: int | None = None
) -> np.ndarray:
    """The map around the measured pose (orientation in the module docstring).

    Args:
        world: the world (its route and roads).
        noisy_pose: the measured ``(x, y, yaw)``.
        config: raster size and resolution.
        hint: route sample index near the car (see :meth:`World.project`): picks the right pass
            where the route crosses itself.

    Returns:
        ``(2, size_px, size_px)`` float32 in ``[0, 1]``: the route (from ``back_px`` rows behind
        the car's projection on it onwards) and all roads.
    """
    n, r = config.size_px, config.resolution_m
    out = np.zeros((2, n, n), dtype=np.float32)
    pose = np.asarray(noisy_pose, dtype=np.float64)
    # Polylines are sampled every half pixel, so consecutive samples never skip a pixel.
    spacing = min(0.5, r / 2)
    _, s_car, _ = world.project(pose, hint=hint)
    reach = n * r * math.sqrt(2)  # every pixel of the raster is within this distance
    s = np.arange(max(s_car - config.back_px * r, 0.0), min(s_car + reach, world.length), spacing)
    route = np.stack(
        [
            np.interp(s, world.route_s, world.route[:, 0]),
            np.interp(s, world.route_s, world.route[:, 1]),
        ],
        1,
    )
    _splat(out[0], route, pose, config)
    roads = _road_points(world, spacing)
    near = np.abs(roads - pose[:2]).max(1) < reach
    _splat(out[1], roads[near], pose, config)
    return out
