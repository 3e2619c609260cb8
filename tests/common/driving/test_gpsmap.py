"""The GPS noise model and the map raster."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common.driving import GpsSensor, MapConfig, rasterize
from tests.common.driving.scenes import straight_world

QUIET = MapConfig(gps_sigma_m=0.0, gps_drift_m=0.0, heading_sigma_deg=0.0, route_offset_m=0.0)


def _centroid_cols(channel: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(channel.sum(1))
    cols = np.arange(channel.shape[1])
    return np.array([(channel[r] * cols).sum() / channel[r].sum() for r in rows])


def test_route_channel_ahead_of_the_car():
    cfg = MapConfig()
    # The car half a pixel left of the route: the route falls in the column right of centre.
    m = rasterize(straight_world(), np.array([30.0, 0.5 * cfg.resolution_m, 0.0]), cfg)
    assert m.shape == (2, cfg.size_px, cfg.size_px)
    assert m.dtype == np.float32
    assert m.min() >= 0 and m.max() <= 1
    route, roads = m
    car_row = cfg.size_px - cfg.back_px
    # The route runs straight ahead from the car to the top edge, in the car's column.
    assert route[:car_row].sum(1).min() == 1
    assert set(np.flatnonzero(route.sum(0))) == {cfg.size_px // 2}
    # The road centre is 1.75 m to the left of the lane: one or two columns further left.
    assert 1 <= cfg.size_px // 2 - np.flatnonzero(roads.sum(0)).mean() <= 2


def test_route_channel_turns_with_the_car():
    cfg = MapConfig()
    # Facing 90 degrees left of the route, 10 m before it: the route crosses the raster ahead.
    m = rasterize(straight_world(), np.array([60.0, -10.0, math.pi / 2]), cfg)
    assert m[0].sum(1).max() > 10  # a horizontal line
    cols = np.flatnonzero(m[0].sum(0))
    # From back_px pixels behind the car's projection (6 m to its left) to the right edge.
    assert cols.min() == cfg.size_px // 2 - cfg.back_px and cols.max() == cfg.size_px - 1


def test_a_pose_offset_shifts_the_raster():
    cfg = QUIET
    world = straight_world()
    base = rasterize(world, np.array([30.0, -0.75 * cfg.resolution_m, 0.0]), cfg)
    # The car measured 3 pixels further left: everything appears 3 columns further right.
    left = rasterize(world, np.array([30.0, 2.25 * cfg.resolution_m, 0.0]), cfg)
    shift = _centroid_cols(left[0]) - _centroid_cols(base[0])
    np.testing.assert_allclose(shift, 3.0, atol=1e-9)
    # The car measured 4.5 m further ahead: the route behind it reaches 3 rows less far down.
    ahead = rasterize(world, np.array([34.5, -0.75 * cfg.resolution_m, 0.0]), cfg)
    assert np.flatnonzero(ahead[0].sum(1)).max() <= np.flatnonzero(base[0].sum(1)).max()


def test_gps_white_noise_and_drift_statistics():
    rng = np.random.default_rng(0)
    white = GpsSensor(
        MapConfig(gps_sigma_m=2.0, gps_drift_m=0.0, heading_sigma_deg=3.0, route_offset_m=0.0), rng
    )
    err = np.array(
        [white.measure(np.array([5.0, 6.0, 0.1]), 0.2) - [5.0, 6.0, 0.1] for _ in range(4000)]
    )
    assert err[:, :2].std() == pytest.approx(2.0, rel=0.05)
    assert np.degrees(err[:, 2].std()) == pytest.approx(3.0, rel=0.05)
    # The drift: stationary std gps_drift_m, correlation exp(-lag / tau) (Ornstein-Uhlenbeck).
    cfg = MapConfig(
        gps_sigma_m=0.0, gps_drift_m=3.0, drift_tau_s=2.0, heading_sigma_deg=0.0, route_offset_m=0.0
    )
    tracks = []
    for i in range(300):
        gps = GpsSensor(cfg, np.random.default_rng(100 + i))
        tracks.append([gps.measure(np.zeros(3), 0.2)[0] for _ in range(11)])
    tracks = np.array(tracks)
    assert tracks[:, 0].std() == pytest.approx(3.0, rel=0.12)
    assert tracks[:, -1].std() == pytest.approx(3.0, rel=0.12)
    corr = np.corrcoef(tracks[:, 0], tracks[:, 10])[0, 1]  # 10 steps of 0.2 s = one tau
    assert corr == pytest.approx(math.exp(-1.0), abs=0.1)


def test_gps_is_deterministic_for_a_seed():
    def run(seed):
        gps = GpsSensor(MapConfig(), np.random.default_rng(seed))
        return np.array([gps.measure(np.array([1.0, 2.0, 0.0]), 0.2) for _ in range(5)])

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.allclose(run(3), run(4))
