"""The ray caster against geometry with known answers, and its culling against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common.driving import LidarConfig, points_from_range, range_image, scan
from common.driving.lidar import _cast, _rays
from tests.common.driving.scenes import straight_world

CLEAN = dict(range_noise=0.0, dropout=0.0)


def test_ground_ranges():
    cfg = LidarConfig(beams=8, fov_up_deg=5.0, fov_down_deg=-30.0, **CLEAN)
    ranges = range_image(straight_world(), np.array([20.0, 0.0, 0.7]), cfg)
    el = np.radians(np.linspace(5.0, -30.0, 8))
    for i, e in enumerate(el):
        expected = cfg.mount_height / math.sin(-e) if e < 0 else math.inf
        if expected > cfg.max_range:
            assert (ranges[i] == 0).all(), f"beam {i} at {math.degrees(e):.1f} deg"
        else:
            np.testing.assert_allclose(ranges[i], expected, atol=1e-4)


def test_points_from_range_puts_the_ground_at_z0():
    cfg = LidarConfig(**CLEAN)
    pts = scan(straight_world(), np.array([20.0, 0.0, -2.0]), cfg)
    assert pts.dtype == np.float32
    assert len(pts) > 0
    np.testing.assert_allclose(pts[:, 2], 0.0, atol=1e-4)
    # Each ring lies at the horizontal distance h / tan(-e) of its beam.
    rho = np.hypot(pts[:, 0], pts[:, 1])
    el = _rays(cfg).elevation
    expected = cfg.mount_height / np.tan(-el[el < 0])
    ring = np.abs(rho[:, None] - expected[None, :]).min(1)
    assert ring.max() < 1e-3


def test_wall_in_front():
    # A 2 m thick wall whose near face is d = 12 m ahead of the sensor, 40 m wide, 10 m high.
    d, x0 = 12.0, 30.0
    wall = [[x0 + d + 1.0, 0.0, 0.0, 2.0, 40.0, 10.0, 0.0]]
    cfg = LidarConfig(beams=41, fov_up_deg=10.0, fov_down_deg=-30.0, **CLEAN)  # 1 degree apart
    ranges = range_image(straight_world(boxes=wall), np.array([x0, 0.0, 0.0]), cfg)
    rays = _rays(cfg)
    horizontal = int(np.argmin(np.abs(rays.elevation)))
    assert rays.elevation[horizontal] == pytest.approx(0.0, abs=1e-12)
    front = int(np.argmin(np.abs(rays.azimuth)))
    np.testing.assert_allclose(
        ranges[horizontal, front], d / math.cos(rays.azimuth[front]), atol=1e-4
    )
    # Every ray that reaches the face (above the ground and below the wall top) hits it exactly.
    expected = d / (np.cos(rays.elevation)[:, None] * np.cos(rays.azimuth)[None, :])
    z = cfg.mount_height + expected * np.sin(rays.elevation)[:, None]
    y = expected * np.cos(rays.elevation)[:, None] * np.sin(rays.azimuth)[None, :]
    on_face = (np.cos(rays.azimuth)[None, :] > 0) & (z > 0.01) & (z < 9.99) & (np.abs(y) < 19.99)
    assert on_face.sum() > 500
    np.testing.assert_allclose(ranges[on_face], expected[on_face], rtol=1e-5)


@pytest.mark.parametrize("yaw", [0.0, 0.8, -2.5])
def test_cylinder_in_front(yaw):
    cfg = LidarConfig(beams=41, fov_up_deg=10.0, fov_down_deg=-30.0, **CLEAN)
    rays = _rays(cfg)
    col = 300
    bearing = yaw + rays.azimuth[col]  # the cylinder sits exactly in column `col`'s direction
    d, r, sensor = 9.0, 0.8, np.array([50.0, -3.0])
    c = sensor + d * np.array([math.cos(bearing), math.sin(bearing)])
    ranges = range_image(
        straight_world(cylinders=[[c[0], c[1], r, 0.0, 6.0]]), np.array([*sensor, yaw]), cfg
    )
    horizontal = int(np.argmin(np.abs(rays.elevation)))
    np.testing.assert_allclose(ranges[horizontal, col], d - r, atol=1e-4)
    # Up to the top of the cylinder the side is hit at (d - r) / cos(elevation); the beams above
    # it miss (the sky) and the steep ones hit the ground first.
    for i, e in enumerate(rays.elevation):
        side = (d - r) / math.cos(e)
        z = cfg.mount_height + side * math.sin(e)
        if 0.01 < z < 5.99:
            np.testing.assert_allclose(ranges[i, col], side, atol=1e-4)
        elif e > 0 and z > 6.01:
            assert ranges[i, col] == 0


def test_cylinder_top_cap_seen_from_above():
    # A 1 m tall, 3 m wide drum right under steep beams: they hit its top at z = 1.
    cfg = LidarConfig(beams=2, fov_up_deg=-60.0, fov_down_deg=-80.0, azimuth_res_deg=5.0, **CLEAN)
    ranges = range_image(
        straight_world(cylinders=[[10.0, 0.0, 3.0, 0.0, 1.0]]), np.array([10.0, 0.0, 0.0]), cfg
    )
    for i, e in enumerate(np.radians([-60.0, -80.0])):
        np.testing.assert_allclose(ranges[i], (cfg.mount_height - 1.0) / math.sin(-e), atol=1e-4)


def test_culling_matches_brute_force(default_world):
    cfg = LidarConfig(azimuth_res_deg=1.0, **CLEAN)
    for s in (0.0, 170.0, 333.0, 512.0):
        pose = np.array(default_world.pose_at(s))
        fast = _cast(default_world, pose, cfg)
        slow = _cast(default_world, pose, cfg, cull=False)
        assert np.isfinite(fast).sum() > 0.5 * fast.size
        np.testing.assert_array_equal(fast, slow)


def test_objects_are_seen(default_world):
    # Returns above the ground: the scenery is there and in range.
    pts = scan(default_world, np.array(default_world.pose_at(100.0)), LidarConfig(**CLEAN))
    assert (pts[:, 2] > 0.5).sum() > 200


def test_noise_and_dropout():
    cfg = LidarConfig(range_noise=0.05, dropout=0.1)
    world = straight_world()
    pose = np.array([20.0, 0.0, 0.0])
    clean = range_image(world, pose, cfg)
    noisy = range_image(world, pose, cfg, np.random.default_rng(0))
    hit = clean > 0
    kept = hit & (noisy > 0)
    assert abs(1 - kept.sum() / hit.sum() - 0.1) < 0.01
    assert abs(float((noisy[kept] - clean[kept]).std()) - 0.05) < 0.003
    assert (noisy[~hit] == 0).all()
    # Deterministic for the generator's seed.
    np.testing.assert_array_equal(noisy, range_image(world, pose, cfg, np.random.default_rng(0)))


def test_points_from_range_checks_the_shape():
    with pytest.raises(ValueError, match="does not match"):
        points_from_range(np.zeros((4, 4), dtype=np.float32), LidarConfig())
