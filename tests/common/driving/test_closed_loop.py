"""Closed-loop driving (determinism, takeovers, failures) and expert data recording."""

from __future__ import annotations

import numpy as np
import pytest

from common.driving import (
    ExpertPolicy,
    FailureConfig,
    LidarConfig,
    MapConfig,
    Observation,
    VehicleConfig,
    compose_pose,
    drive,
    expert_labels,
    record,
)

LIDAR = LidarConfig(beams=8, azimuth_res_deg=2.0)
MAP, CAR = MapConfig(), VehicleConfig()


class MapFollower:
    """A policy that only sees the sensors: it steers at the route pixels of the map a few rows
    ahead (so GPS noise moves the car), and counts its resets."""

    def __init__(self):
        self.resets = 0

    def __call__(self, obs: Observation) -> float:
        route = obs.map[0, 8:20]
        cols = np.flatnonzero(route.sum(0))
        if len(cols) == 0:
            return 0.0
        left = (MAP.size_px / 2 - cols.mean() - 0.5) * MAP.resolution_m  # metres left
        return float(2 * left / 15.0**2)

    def reset(self):
        self.resets += 1


def _drive(world, policy, seed, **kw):
    return drive(world, policy, lidar=LIDAR, map_config=MAP, vehicle=CAR, seed=seed, **kw)


def test_deterministic_for_a_seed(default_world):
    a = _drive(default_world, MapFollower(), seed=5, max_distance_m=150.0)
    b = _drive(default_world, MapFollower(), seed=5, max_distance_m=150.0)
    np.testing.assert_array_equal(a.poses, b.poses)
    np.testing.assert_array_equal(a.curvatures, b.curvatures)
    assert a.takeover_steps == b.takeover_steps
    c = _drive(default_world, MapFollower(), seed=6, max_distance_m=150.0)
    n = min(len(a.poses), len(c.poses))
    assert not np.allclose(a.poses[:n], c.poses[:n])


def test_takeovers_are_counted_and_reset(default_world):
    class Straight:
        resets = 0

        def __call__(self, obs):
            return 0.0

        def reset(self):
            self.resets += 1

    policy = Straight()
    r = _drive(default_world, policy, seed=0)
    assert r.completed
    assert r.takeovers >= 3  # it cannot follow any turn
    assert policy.resets == r.takeovers == len(r.takeover_steps) == len(r.takeover_s)
    assert r.takeovers_per_km == pytest.approx(r.takeovers / (r.distance_m / 1000))
    for t, s in zip(r.takeover_steps, r.takeover_s, strict=True):
        # The command of step t left the lane; the safety driver put the car back on its centre,
        # at the same distance along the route, facing along it.
        assert abs(r.lateral[t]) > default_world.lane_width / 2 or abs(
            r.heading_error[t]
        ) > np.radians(60)
        if t + 1 < r.steps:
            np.testing.assert_allclose(r.poses[t + 1], default_world.pose_at(s), atol=1e-9)


def test_expert_drive_and_per_step_records(default_world):
    r = _drive(default_world, ExpertPolicy(default_world), seed=1, max_distance_m=100.0)
    assert r.takeovers == 0
    assert r.distance_m == pytest.approx(100.0, abs=CAR.step_m)
    t = r.steps
    assert r.poses.shape == (t, 3) and r.curvatures.shape == (t,) and r.failed.shape == (t,)
    assert r.lateral.shape == (t,)
    assert not r.failed.any()


def test_frame_drop_repeats_the_previous_frame(default_world):
    seen = []

    def policy(obs: Observation) -> float:
        seen.append((obs.points, obs.failed, obs.odometry, obs.pose))
        return expert(obs)

    expert = ExpertPolicy(default_world)
    fc = FailureConfig(rate_per_km=40.0, duration_s=1.0)
    r = _drive(
        default_world, policy, seed=2, failure="frame_drop", failure_config=fc, max_distance_m=200.0
    )
    assert r.failed.sum() >= 5
    assert [f for _, f, _, _ in seen] == list(r.failed)
    for i in range(1, len(seen)):
        if seen[i][1]:
            assert seen[i][0] is seen[i - 1][0]
        else:
            assert not np.array_equal(seen[i][0], seen[i - 1][0])
        # Odometry is the true motion between consecutive observations.
        np.testing.assert_allclose(compose_pose(seen[i - 1][3], seen[i][2]), seen[i][3], atol=1e-9)


def test_blackout_delivers_empty_scans(default_world):
    counts = []

    def policy(obs: Observation) -> float:
        counts.append((len(obs.points), obs.failed))
        return expert(obs)

    expert = ExpertPolicy(default_world)
    fc = FailureConfig(rate_per_km=40.0, duration_s=1.0)
    r = _drive(
        default_world, policy, seed=3, failure="blackout", failure_config=fc, max_distance_m=200.0
    )
    assert r.failed.sum() >= 5
    assert all((n == 0) == f for n, f in counts)


def test_record(default_world):
    horizon, lookahead = 4, 8.0
    kwargs = {"lidar": LIDAR, "map_config": MAP, "vehicle": CAR, "horizon": horizon, "seed": 7,
              "lookahead_m": lookahead, "perturb_sigma": 0.05, "max_distance_m": 200.0}  # fmt: skip
    rec = record(default_world, **kwargs)
    t = len(rec["points"])
    assert t >= 200.0 / CAR.step_m
    assert rec["maps"].shape == (t, 2, MAP.size_px, MAP.size_px) and rec["maps"].dtype == np.float32
    assert rec["labels"].shape == (t, horizon + 1) and rec["labels"].dtype == np.float32
    assert rec["poses"].shape == (t, 3) and rec["odometry"].shape == (t, 3)
    assert all(p.dtype == np.float32 and p.shape[1] == 3 for p in rec["points"])
    # Labels are the clean expert's from the pose reached.
    for i in (0, 17, t - 1):
        expected = expert_labels(default_world, rec["poses"][i], CAR, horizon, lookahead)
        np.testing.assert_allclose(rec["labels"][i], expected, atol=1e-6)
    # The perturbation moved the car off the centre line, never out of the lane.
    assert np.abs(rec["lateral"]).max() > 0.3
    assert np.abs(rec["lateral"]).max() <= 0.6 * default_world.lane_width / 2 + 1e-9
    assert np.abs(rec["commands"] - rec["labels"][:, 0]).max() > 0.01
    for i in range(1, t):
        np.testing.assert_allclose(
            compose_pose(rec["poses"][i - 1], rec["odometry"][i]), rec["poses"][i], atol=1e-9
        )
    again = record(default_world, **kwargs)
    np.testing.assert_array_equal(again["poses"], rec["poses"])
    np.testing.assert_array_equal(again["points"][5], rec["points"][5])
