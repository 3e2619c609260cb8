"""The procedural world: determinism, a smooth drivable route, scenery clear of the lane."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from common.driving import ROUTE_SPACING_M, ROUTE_TAIL_M, WorldConfig, build_world
from common.driving.world import box_clearance, cylinder_clearance

SEEDS = (0, 1, 2, 3, 4)


@pytest.fixture(scope="module")
def worlds():
    return [build_world(WorldConfig(), seed) for seed in SEEDS]


def test_deterministic_for_a_seed(default_world):
    again = build_world(WorldConfig(), seed=0)
    np.testing.assert_array_equal(again.route, default_world.route)
    np.testing.assert_array_equal(again.boxes, default_world.boxes)
    np.testing.assert_array_equal(again.cylinders, default_world.cylinders)
    assert len(again.roads) == len(default_world.roads)


def test_different_seeds_differ(worlds):
    for a, b in itertools.pairwise(worlds):
        assert not np.allclose(a.route[:200], b.route[:200])
        assert a.boxes.shape != b.boxes.shape or not np.allclose(a.boxes, b.boxes)


def test_route_sampling_and_length(worlds):
    cfg = WorldConfig()
    for w in worlds:
        steps = np.hypot(*np.diff(w.route, axis=0).T)
        np.testing.assert_allclose(steps, ROUTE_SPACING_M, atol=0.01)
        np.testing.assert_allclose(np.diff(w.route_s), ROUTE_SPACING_M, atol=1e-12)
        assert w.end_s == cfg.route_length_m
        assert w.length == pytest.approx(cfg.route_length_m + ROUTE_TAIL_M, abs=ROUTE_SPACING_M)


def test_route_is_smooth_and_turns_both_ways(worlds):
    cfg = WorldConfig()
    turns = []
    for w in worlds:
        dh = np.diff(np.unwrap(w.route_heading))
        # At the tightest a 0.5 m step on a turn_radius_m arc turns 0.5 / 12 rad = 2.4 degrees.
        assert np.degrees(np.abs(dh).max()) < 3.5
        curvature = dh / ROUTE_SPACING_M
        # Turns use arcs of about turn_radius_m (a jittered corner may be a little tighter).
        assert np.abs(curvature).max() < 1.3 / cfg.turn_radius_m
        turns.append(
            (curvature.max() > 0.7 / cfg.turn_radius_m, curvature.min() < -0.7 / cfg.turn_radius_m)
        )
    assert any(left for left, _ in turns) and any(right for _, right in turns)


def test_heading_follows_the_polyline(default_world):
    w = default_world
    d = np.diff(w.route, axis=0)
    seg_heading = np.arctan2(d[:, 1], d[:, 0])
    mid = 0.5 * (np.unwrap(w.route_heading)[:-1] + np.unwrap(w.route_heading)[1:])
    err = (seg_heading - mid + math.pi) % (2 * math.pi) - math.pi
    assert np.abs(err).max() < math.radians(0.5)


def test_scenery_clear_of_the_lane(worlds):
    for w in worlds:
        assert len(w.boxes) > 300 and len(w.cylinders) > 50
        half_lane = w.lane_width / 2
        assert box_clearance(w.boxes, w.route).min() > half_lane
        assert cylinder_clearance(w.cylinders, w.route).min() > half_lane
        kind = w.box_kind
        # Parked cars never stand on the route's own shoulder: at least 2 m beyond the lane.
        assert box_clearance(w.boxes[kind == 1], w.route).min() >= half_lane + 2.0
        # Buildings stand back behind the kerbs of every road.
        assert box_clearance(w.boxes[kind == 0], np.concatenate(w.roads)).min() >= w.road_half_width


def test_kerbs_line_the_roads(default_world):
    kerbs = default_world.boxes[default_world.box_kind == 2]
    assert len(kerbs) > 100
    np.testing.assert_allclose(kerbs[:, 5], 0.15)
    # Each kerb's centre is at the road edge (kerb line + half the kerb's width) from a road.
    d = cylinder_clearance(
        np.column_stack([kerbs[:, :2], np.zeros((len(kerbs), 3))]),
        np.concatenate(default_world.roads),
    )
    assert np.median(d) == pytest.approx(default_world.road_half_width + 0.15, abs=0.05)


def test_project_and_pose_at(default_world):
    w = default_world
    for s in np.linspace(5.0, 600.0, 40):
        x, y, h = w.pose_at(s)
        left = np.array([-math.sin(h), math.cos(h)])
        for offset in (-1.2, 0.0, 0.7):
            lat, s2, h2 = w.project(np.array([x, y]) + offset * left, hint=w.index_of(s))
            assert lat == pytest.approx(offset, abs=0.02)
            assert s2 == pytest.approx(s, abs=0.05)
            assert abs((h2 - h + math.pi) % (2 * math.pi) - math.pi) < 0.02


def test_project_window_follows_the_car(default_world):
    w = default_world
    # A hint far behind the car: the search window widens until it finds the right place.
    x, y, _ = w.pose_at(300.0)
    _, s, _ = w.project(np.array([x, y]), hint=w.index_of(200.0))
    assert s == pytest.approx(300.0, abs=0.01)
