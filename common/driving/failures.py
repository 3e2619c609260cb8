"""Sensor failures injected into the LiDAR during closed-loop evaluation.

* ``frame_drop``: the sensor delivers nothing new; the driver software sees the previous frame
  again (:func:`corrupt` leaves the image alone; the closed loop re-delivers the last points).
* ``blackout``: no returns at all.
* ``beam_loss``: ``beam_loss_fraction`` of the beams (whole rows) return nothing.
* ``occlusion``: the ``occlusion_deg`` sector in front of the car returns nothing (mud or a
  sticker on the sensor window; we chose an empty sector over a fake wall, so the failure removes
  evidence instead of adding false evidence).
* ``noise_burst``: ``noise_burst_fraction`` of the returns get Gaussian range noise of
  ``noise_burst_sigma`` metres (interference from another LiDAR, rain).

Failures come in episodes: :func:`failure_schedule` places on average ``rate_per_km`` of them per
kilometre driven, each lasting on average ``duration_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from common.config import ConfigError, bounds
from common.driving._validate import check_bounds
from common.driving.vehicle import VehicleConfig

FAILURES = ("none", "frame_drop", "blackout", "beam_loss", "occlusion", "noise_burst")


@dataclass(frozen=True)
class FailureConfig:
    """How often failures happen and how bad they are (see the module docstring)."""

    rate_per_km: float = field(default=10.0, metadata=bounds(ge=0))
    duration_s: float = field(default=1.0, metadata=bounds(gt=0))
    beam_loss_fraction: float = field(default=0.75, metadata=bounds(ge=0, le=1))
    occlusion_deg: float = field(default=120.0, metadata=bounds(ge=0, le=360))
    noise_burst_sigma: float = field(default=5.0, metadata=bounds(ge=0))
    noise_burst_fraction: float = field(default=0.5, metadata=bounds(ge=0, le=1))

    def __post_init__(self) -> None:
        check_bounds(self)


def _check_kind(kind: str) -> None:
    if kind not in FAILURES:
        raise ConfigError(f"failure kind {kind!r} is unknown; known: {', '.join(FAILURES)}")


def failure_schedule(
    n_steps: int,
    kind: str,
    config: FailureConfig,
    vehicle_config: VehicleConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Which control steps of a drive have a failed sensor.

    The number of episodes is ``rate_per_km`` times the distance ``n_steps`` steps cover at the
    vehicle's speed, rounded up or down at random (the right mean, and less spread than a Poisson
    count, so that comparisons between policies are less noisy); each starts at a uniformly
    random step and lasts an exponentially distributed time of mean ``duration_s`` (at least
    one step). Overlapping episodes merge.

    Returns:
        ``(n_steps,)`` bool, True where the sensor has failed (all False for ``kind="none"``).
    """
    _check_kind(kind)
    out = np.zeros(n_steps, dtype=bool)
    if kind == "none" or n_steps == 0 or config.rate_per_km == 0:
        return out
    expected = config.rate_per_km * n_steps * vehicle_config.step_m / 1000.0
    count = math.floor(expected) + int(rng.random() < expected - math.floor(expected))
    starts = rng.integers(0, n_steps, size=count)
    steps = np.maximum(
        1, np.round(rng.exponential(config.duration_s, size=count) / vehicle_config.dt)
    )
    for a, n in zip(starts, steps.astype(np.int64), strict=True):
        out[a : a + n] = True
    return out


def corrupt(
    ranges: np.ndarray,
    kind: str,
    config: FailureConfig,
    rng: np.random.Generator,
    *,
    max_range: float | None = None,
) -> np.ndarray:
    """A copy of the range image ``(beams, cols)`` (layout of :mod:`common.driving.lidar`) with
    the failure applied; ``frame_drop`` and ``none`` return it unchanged.

    Args:
        ranges: the clean range image.
        kind: one of :data:`FAILURES`.
        config: the failure's strength.
        rng: draws which beams are lost or which returns get noise. Pass the same stream state
            for every frame of an episode to lose the same beams throughout it.
        max_range: noisy ranges are clipped to it (default: the image's largest range).
    """
    _check_kind(kind)
    out = np.array(ranges, dtype=np.float32, copy=True)
    beams, cols = out.shape
    if kind == "blackout":
        out[:] = 0
    elif kind == "beam_loss":
        lost = rng.choice(beams, size=round(config.beam_loss_fraction * beams), replace=False)
        out[lost] = 0
    elif kind == "occlusion":
        # Column j looks at azimuth pi - (j + 0.5) * step; the front is |azimuth| < half.
        az = np.pi - (np.arange(cols) + 0.5) * (2 * np.pi / cols)
        out[:, np.abs(az) < math.radians(config.occlusion_deg) / 2] = 0
    elif kind == "noise_burst":
        top = float(out.max()) if max_range is None else max_range
        hit = out > 0
        noisy = hit & (rng.random(out.shape) < config.noise_burst_fraction)
        noise = rng.normal(0.0, config.noise_burst_sigma, size=out.shape).astype(np.float32)
        # A spurious return is still a return: keep it positive and within range.
        out[noisy] = np.clip(np.abs(out[noisy] + noise[noisy]), 0.05, max(top, 0.05))
    return out
