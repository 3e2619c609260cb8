"""The expert driver: pure pursuit on the route, and the labels it gives a learner.

Pure pursuit (Coulter, 1992) steers along the circular arc that joins the car to the route point
``lookahead_m`` ahead of the car's projection on the route: curvature ``2 sin(alpha) / d``, with
``alpha`` the bearing of that point from the car's heading and ``d`` its distance.
"""

from __future__ import annotations

import math

import numpy as np

from common.driving.vehicle import VehicleConfig, step
from common.driving.world import World


def _pursue(
    world: World, pose: np.ndarray, lookahead_m: float, hint: int | None
) -> tuple[float, int]:
    """Pure-pursuit curvature and the route index of the car's projection (the next hint)."""
    _, s, _ = world.project(pose, hint=hint)
    tx, ty, _ = world.pose_at(s + lookahead_m)
    ex, ey = tx - float(pose[0]), ty - float(pose[1])
    c, sn = math.cos(pose[2]), math.sin(pose[2])
    fx, fy = c * ex + sn * ey, -sn * ex + c * ey  # the target in the vehicle frame
    d2 = fx * fx + fy * fy
    # 2 sin(alpha) / d == 2 y / d^2: no angle needed.
    return (2.0 * fy / d2 if d2 > 1e-9 else 0.0), world.index_of(s)


def pure_pursuit(
    world: World, pose: np.ndarray, lookahead_m: float, hint: int | None = None
) -> float:
    """Curvature (1/m) that steers the car at ``pose`` onto the route.

    Args:
        world: the world whose route to follow.
        pose: ``(x, y, yaw)`` of the car.
        lookahead_m: look-ahead distance along the route from the car's projection.
        hint: route sample index near the car (see :meth:`World.project`).
    """
    return _pursue(world, pose, lookahead_m, hint)[0]


def expert_labels(
    world: World,
    pose: np.ndarray,
    config: VehicleConfig,
    horizon: int,
    lookahead_m: float,
    hint: int | None = None,
) -> np.ndarray:
    """What the expert commands now and at each of the next ``horizon`` control steps if it
    drives on from ``pose`` (rolled out with the bicycle model): the training targets.

    Returns:
        ``(horizon + 1,)`` curvatures (1/m), clipped to the steering limit.
    """
    out = np.empty(horizon + 1)
    p = np.asarray(pose, dtype=np.float64)
    k_max = config.max_curvature
    for i in range(horizon + 1):
        k, hint = _pursue(world, p, lookahead_m, hint)
        out[i] = min(max(k, -k_max), k_max)
        if i < horizon:
            p = step(p, out[i], config)
    return out


class ExpertPolicy:
    """Pure pursuit as a closed-loop policy for :func:`common.driving.drive`.

    It reads the *true* pose of the observation (privileged information, like a human expert's
    eyes): a reference for the learned policies and a check that the routes are drivable.
    """

    def __init__(self, world: World, lookahead_m: float = 8.0) -> None:
        self.world, self.lookahead_m = world, lookahead_m
        self._hint: int | None = None

    def reset(self) -> None:
        """Nothing to forget: a takeover puts the car back where it was along the route, so the
        last route position stays a good hint."""

    def __call__(self, obs) -> float:  # obs: common.driving.closed_loop.Observation
        if obs.step == 0:  # a new drive starts at the start of the route
            self._hint = 0
        k, self._hint = _pursue(self.world, obs.pose, self.lookahead_m, self._hint)
        return k
