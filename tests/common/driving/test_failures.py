"""Failure injection: schedules and range-image corruption."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common.config import ConfigError
from common.driving import (
    FAILURES,
    FailureConfig,
    LidarConfig,
    VehicleConfig,
    corrupt,
    failure_schedule,
    points_from_range,
    range_image,
)


@pytest.fixture(scope="module")
def clean(default_world):
    cfg = LidarConfig(range_noise=0.0, dropout=0.0)
    return cfg, range_image(default_world, np.array(default_world.pose_at(120.0)), cfg)


def test_blackout_gives_no_points(clean):
    cfg, ranges = clean
    out = corrupt(ranges, "blackout", FailureConfig(), np.random.default_rng(0))
    assert len(points_from_range(out, cfg)) == 0


def test_beam_loss_removes_the_requested_fraction():
    full = np.full((32, 900), 10.0, dtype=np.float32)
    fc = FailureConfig(beam_loss_fraction=0.75)
    out = corrupt(full, "beam_loss", fc, np.random.default_rng(0))
    dead = (out == 0).all(1)
    assert dead.sum() == 24  # round(0.75 * 32) whole beams
    np.testing.assert_array_equal(out[~dead], full[~dead])
    # The same stream state loses the same beams (one episode); another state, others.
    np.testing.assert_array_equal(out, corrupt(full, "beam_loss", fc, np.random.default_rng(0)))
    assert not np.array_equal(out, corrupt(full, "beam_loss", fc, np.random.default_rng(1)))


def test_occlusion_empties_the_forward_sector(clean):
    cfg, ranges = clean
    fc = FailureConfig(occlusion_deg=120.0)
    before = points_from_range(ranges, cfg)
    after = points_from_range(corrupt(ranges, "occlusion", fc, np.random.default_rng(0)), cfg)
    az = lambda p: np.degrees(np.arctan2(p[:, 1], p[:, 0]))  # noqa: E731
    assert (np.abs(az(before)) < 60).sum() > 1000
    assert (np.abs(az(after)) < 60 - cfg.azimuth_res_deg).sum() == 0
    # Behind the sector nothing changes.
    np.testing.assert_array_equal(before[np.abs(az(before)) > 61], after[np.abs(az(after)) > 61])


def test_noise_burst_hits_a_fraction_of_returns(clean):
    cfg, ranges = clean
    fc = FailureConfig(noise_burst_fraction=0.5, noise_burst_sigma=5.0)
    out = corrupt(ranges, "noise_burst", fc, np.random.default_rng(0), max_range=cfg.max_range)
    hit = ranges > 0
    changed = out[hit] != ranges[hit]
    assert changed.mean() == pytest.approx(0.5, abs=0.02)
    assert (out[~hit] == 0).all()
    assert out.max() <= cfg.max_range and out[hit].min() > 0
    assert np.abs(out[hit] - ranges[hit])[changed].mean() > 2.0


def test_frame_drop_and_none_leave_the_image(clean):
    _, ranges = clean
    for kind in ("none", "frame_drop"):
        np.testing.assert_array_equal(
            corrupt(ranges, kind, FailureConfig(), np.random.default_rng(0)), ranges
        )


def test_schedule_rate_and_duration():
    vc = VehicleConfig(speed=8.0, dt=0.2)
    fc = FailureConfig(rate_per_km=2.0, duration_s=1.0)
    n = 312_500  # 500 km: 1000 episodes expected
    sched = failure_schedule(n, "blackout", fc, vc, np.random.default_rng(0))
    starts = np.flatnonzero(np.diff(sched.astype(int)) == 1)
    # About 1.6% of the steps fail, so about as many episodes merge with a neighbour.
    assert len(starts) == pytest.approx(1000 * (1 - 0.016), rel=0.02)
    # Mean duration ~ duration_s (whole steps, at least one: about 3% longer); the mean of
    # 1000 exponentials has a 3% standard error.
    assert sched.sum() * vc.dt / len(starts) == pytest.approx(1.03, rel=0.1)
    assert not failure_schedule(n, "none", fc, vc, np.random.default_rng(0)).any()
    np.testing.assert_array_equal(
        sched, failure_schedule(n, "blackout", fc, vc, np.random.default_rng(0))
    )


def test_unknown_failure_kind():
    with pytest.raises(ConfigError, match="unknown"):
        failure_schedule(10, "meteor", FailureConfig(), VehicleConfig(), np.random.default_rng(0))
    assert FAILURES[0] == "none"
    assert math.isfinite(FailureConfig().rate_per_km)
