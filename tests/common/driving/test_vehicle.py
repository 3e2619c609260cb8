"""Kinematic bicycle model and pose algebra."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from common.driving import (
    VehicleConfig,
    compose_pose,
    invert_pose,
    relative_pose,
    step,
    transform_points,
)


def test_constant_curvature_closes_the_circle():
    cfg = VehicleConfig(speed=8.0, dt=0.2)
    n = 50  # steps for one full circle: k = 2 pi / (n * speed * dt)
    k = 2 * math.pi / (n * cfg.step_m)
    start = np.array([3.0, -2.0, 0.4])
    pose = start
    xs = []
    for _ in range(n):
        pose = step(pose, k, cfg)
        xs.append(pose[:2])
    np.testing.assert_allclose(pose, start, atol=1e-9)
    # Every pose lies on the circle of radius 1/k around the turning centre (left of the start).
    centre = start[:2] + np.array([-math.sin(start[2]), math.cos(start[2])]) / k
    np.testing.assert_allclose(np.hypot(*(np.array(xs) - centre).T), 1 / k, rtol=1e-9)


def test_straight_step_and_steering_limit():
    cfg = VehicleConfig(speed=5.0, dt=0.1, wheelbase=2.5, max_steer_deg=30.0)
    np.testing.assert_allclose(
        step(np.array([1.0, 1.0, math.pi / 2]), 0.0, cfg), [1.0, 1.5, math.pi / 2 - 0.0], atol=1e-12
    )
    k_max = math.tan(math.radians(30.0)) / 2.5
    assert cfg.max_curvature == pytest.approx(k_max, rel=1e-12)
    # A command beyond the limit turns exactly as much as the limit.
    np.testing.assert_allclose(
        step(np.zeros(3), 10.0, cfg), step(np.zeros(3), k_max, cfg), atol=1e-12
    )
    np.testing.assert_allclose(step(np.zeros(3), -10.0, cfg)[2], -k_max * 0.5, atol=1e-12)


def test_relative_pose_inverse_and_compose():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = np.array([*rng.uniform(-50, 50, 2), rng.uniform(-math.pi, math.pi)])
        b = np.array([*rng.uniform(-50, 50, 2), rng.uniform(-math.pi, math.pi)])
        ab = relative_pose(a, b)
        np.testing.assert_allclose(compose_pose(a, ab)[:2], b[:2], atol=1e-9)
        assert abs((compose_pose(a, ab)[2] - b[2] + math.pi) % (2 * math.pi) - math.pi) < 1e-9
        np.testing.assert_allclose(relative_pose(b, a), invert_pose(ab), atol=1e-9)
        np.testing.assert_allclose(relative_pose(a, a), np.zeros(3), atol=1e-12)


def test_relative_pose_in_the_frame_of_a():
    # Facing north: a point 2 m north and 1 m west is 2 m ahead and 1 m to the left.
    np.testing.assert_allclose(
        relative_pose(np.array([10.0, 0.0, math.pi / 2]), np.array([9.0, 2.0, math.pi])),
        [2.0, 1.0, math.pi / 2],
        atol=1e-12,
    )


def test_transform_points_follows_odometry():
    rng = np.random.default_rng(1)
    world_pts = rng.uniform(-20, 20, size=(30, 2))
    a = np.array([1.0, 2.0, 0.3])
    b = np.array([4.0, 3.0, 0.9])
    origin = np.zeros(3)
    in_a = transform_points(world_pts, relative_pose(origin, a))
    in_b = transform_points(world_pts, relative_pose(origin, b))
    np.testing.assert_allclose(transform_points(in_a, relative_pose(a, b)), in_b, atol=1e-9)
    # Extra columns (z) pass through.
    xyz = np.column_stack([in_a, np.arange(30.0)])
    out = transform_points(xyz, relative_pose(a, b))
    np.testing.assert_allclose(out[:, :2], in_b, atol=1e-9)
    np.testing.assert_array_equal(out[:, 2], np.arange(30.0))


def test_odometry_along_a_drive_reconstructs_the_path():
    cfg = VehicleConfig()
    poses = [np.array([5.0, 5.0, 1.0])]
    for k in np.linspace(-0.2, 0.2, 15):
        poses.append(step(poses[-1], k, cfg))
    rebuilt = poses[0]
    for a, b in itertools.pairwise(poses):
        rebuilt = compose_pose(rebuilt, relative_pose(a, b))
    np.testing.assert_allclose(rebuilt, poses[-1], atol=1e-9)
