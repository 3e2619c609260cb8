"""Hybrid Evidential Fusion (our reconstruction) on scripted predictions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from common.driving import VehicleConfig
from common.evidential import NIG
from papers.fast_lidarnet.config import FusionConfig
from papers.fast_lidarnet.fusion import FusionPolicy, forecast_path, fuse

K = 3
VEH = VehicleConfig(speed=8.0, dt=0.2)


class Scripted(torch.nn.Module):
    """Returns the next scripted (gamma, variance) of its list at every call."""

    def __init__(self, script: list[tuple[list[float], list[float]]]) -> None:
        super().__init__()
        self.script = list(script)

    def forward(self, points, maps) -> NIG:
        gamma, var = self.script.pop(0)
        g = torch.tensor([gamma], dtype=torch.float64)
        v = torch.tensor([var], dtype=torch.float64)
        # alpha = 2, nu = 1: aleatoric = beta, epistemic = beta / nu = beta.
        return NIG(g, torch.ones_like(g), torch.full_like(g, 2.0), v)


@dataclass
class Obs:
    points: np.ndarray
    map: np.ndarray
    odometry: np.ndarray
    step: int = 0
    failed: bool = False


def _obs(i: int, moved: np.ndarray | None = None) -> Obs:
    pts = np.full((4, 3), float(i), dtype=np.float32)  # a new scan every step
    return Obs(pts, np.zeros((2, 8, 8), np.float32), np.zeros(3) if moved is None else moved, i)


def _policy(mode: str, script, thresholds=None) -> FusionPolicy:
    cfg = FusionConfig(age_inflation=0.0, gain_lateral=0.0, gain_heading=0.0)
    th = np.full(K + 1, 1.0) if thresholds is None else np.asarray(thresholds)
    return FusionPolicy(Scripted(script), mode=mode, fusion=cfg, thresholds=th, vehicle=VEH,
                        horizon=K)  # fmt: skip


def test_fuse_with_equal_uncertainties_is_the_average() -> None:
    values = np.array([0.01, -0.02, 0.05, 0.0])
    assert fuse(values, np.full(4, 0.3)) == pytest.approx(values.mean(), abs=1e-15)
    # and a tiny variance dominates
    assert fuse(values, np.array([1e-9, 1.0, 1.0, 1.0])) == pytest.approx(0.01, abs=1e-6)


def test_evidential_with_equal_uncertainties_equals_averaging() -> None:
    rng = np.random.default_rng(0)
    script = [(list(rng.normal(0, 0.02, K + 1)), [0.1] * (K + 1)) for _ in range(6)]
    avg, evi = _policy("average", script), _policy("evidential", script)
    for i in range(6):
        a, e = avg(_obs(i)), evi(_obs(i))
        assert e == pytest.approx(a, abs=1e-12)
    # the last command averages the forecasts of this step by the last K + 1 frames
    expected = np.mean([script[5 - j][0][j] for j in range(K + 1)])
    assert a == pytest.approx(expected, abs=1e-12)


def test_an_uncertain_frame_falls_back_to_earlier_forecasts() -> None:
    confident = ([0.01, 0.02, 0.03, 0.04], [0.1] * 4)
    broken = ([0.5, 0.5, 0.5, 0.5], [10.0] * 4)  # above the thresholds
    p = _policy("evidential", [confident, broken, broken])
    p(_obs(0))
    assert p(_obs(1)) == pytest.approx(0.02)  # frame 0's forecast of step 1
    assert p(_obs(2)) == pytest.approx(0.03)
    none = _policy("none", [confident, broken])
    none(_obs(0))
    assert none(_obs(1)) == pytest.approx(0.5)


def test_a_repeated_scan_adds_no_candidate() -> None:
    first = ([0.01, 0.02, 0.03, 0.04], [0.1] * 4)
    p = _policy("average", [first, ([0.9] * 4, [0.1] * 4)])
    obs = _obs(0)
    p(obs)
    stale = Obs(obs.points, obs.map, np.zeros(3), 1)  # the sensor delivered the same scan
    assert p(stale) == pytest.approx(0.02)


def test_the_forecast_path_and_the_odometry_correction() -> None:
    k = 0.05
    path = forecast_path(np.full(K + 1, k), VEH)
    # constant curvature: the poses lie on the circle of radius 1/k through the origin
    r = 1 / k
    assert np.allclose(np.hypot(path[:, 0], path[:, 1] - r), r, atol=1e-9)
    cfg = FusionConfig(age_inflation=0.0, gain_lateral=0.03, gain_heading=0.25)
    pol = FusionPolicy(Scripted([([k] * (K + 1), [0.1] * (K + 1))] * 2), mode="average", fusion=cfg,
                       thresholds=np.ones(K + 1), vehicle=VEH, horizon=K)  # fmt: skip
    pol(_obs(0))
    # The car drove exactly the forecast: the earlier forecast needs no correction.
    from common.driving import relative_pose

    moved = relative_pose(path[0], path[1])
    f = pol.buffer[0]
    pol(_obs(1, moved))
    assert pol._corrected(f) == pytest.approx(k, abs=1e-9)
    # one metre to the left of the forecast path: steer right (lower curvature)
    f.here = f.here + np.array([0.0, 1.0, 0.0]) @ np.eye(3)
    assert pol._corrected(f) < k


def test_the_paired_bootstrap_interval() -> None:
    from papers.fast_lidarnet.drive import paired_ratio_interval

    same = np.array([[3, 3], [5, 5], [0, 0], [2, 2]], dtype=float)
    assert paired_ratio_interval(same, seed=0) == (1.0, 1.0)
    half = np.array([[1, 2], [2, 4], [3, 6]], dtype=float)
    assert paired_ratio_interval(half, seed=0) == pytest.approx((0.5, 0.5))
    mixed = np.array([[0, 4], [4, 0], [1, 1], [2, 3]], dtype=float)
    lo, hi = paired_ratio_interval(mixed, seed=0)
    assert lo < 7 / 8 < hi  # the pooled ratio lies inside its interval
