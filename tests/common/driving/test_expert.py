"""The pure-pursuit expert: it drives every map without leaving the lane, and its labels."""

from __future__ import annotations

import numpy as np
import pytest

from common.driving import (
    ExpertPolicy,
    LidarConfig,
    MapConfig,
    VehicleConfig,
    WorldConfig,
    build_world,
    drive,
    expert_labels,
    pure_pursuit,
    step,
)
from tests.common.driving.scenes import straight_world

# The expert reads the true pose, not the sensors: a coarse LiDAR keeps these drives fast.
COARSE = LidarConfig(beams=4, azimuth_res_deg=10.0)


@pytest.mark.parametrize("seed", [10, 11, 12, 13, 14])
def test_expert_stays_in_lane(seed):
    world = build_world(WorldConfig(), seed)
    r = drive(
        world,
        ExpertPolicy(world, lookahead_m=8.0),
        lidar=COARSE,
        map_config=MapConfig(),
        vehicle=VehicleConfig(),
        seed=seed,
    )
    assert r.completed
    assert r.takeovers == 0
    assert r.distance_m == pytest.approx(world.end_s, abs=VehicleConfig().step_m)
    assert np.abs(r.lateral).max() < 0.5 * world.lane_width / 2
    assert np.degrees(np.abs(r.heading_error).max()) < 20


def test_pure_pursuit_steers_back_to_the_route():
    w = straight_world()
    # Left of the route facing along it: turn right; right of it: turn left; on it: straight.
    assert pure_pursuit(w, np.array([10.0, 1.0, 0.0]), 8.0) < 0
    assert pure_pursuit(w, np.array([10.0, -1.0, 0.0]), 8.0) > 0
    assert pure_pursuit(w, np.array([10.0, 0.0, 0.0]), 8.0) == pytest.approx(0.0, abs=1e-12)
    # The arc passes through the target: 2 y / d^2 with the target 8 m ahead, 1 m to the right.
    assert pure_pursuit(w, np.array([10.0, 1.0, 0.0]), 8.0) == pytest.approx(
        -2 * 1.0 / 65.0, rel=1e-9
    )


def test_expert_labels_roll_out_the_expert(default_world):
    w, cfg = default_world, VehicleConfig()
    x, y, h = w.pose_at(150.0)
    pose = np.array([x + 0.5, y - 0.3, h + 0.05])
    labels = expert_labels(w, pose, cfg, horizon=6, lookahead_m=8.0)
    assert labels.shape == (7,)
    p = pose
    for k in labels:
        expected = np.clip(pure_pursuit(w, p, 8.0), -cfg.max_curvature, cfg.max_curvature)
        assert k == pytest.approx(expected, abs=1e-12)
        p = step(p, k, cfg)
    assert np.abs(labels).max() <= cfg.max_curvature
