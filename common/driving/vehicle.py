"""Kinematic bicycle model and planar pose algebra.

A pose is ``(x, y, yaw)``: metres in the world frame and radians counter-clockwise from the world
x axis. The control is the curvature ``1 / turning radius`` (1/m, positive = turning left), the
quantity Fast-LiDARNet predicts; the bicycle model relates it to the steering angle by
``curvature = tan(steer) / wheelbase``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from common.config import bounds
from common.driving._validate import check_bounds


@dataclass(frozen=True)
class VehicleConfig:
    """The car: wheelbase (m), steering limit (degrees), constant speed (m/s) and control period
    (s): one control step moves the car ``speed * dt`` metres along an arc."""

    wheelbase: float = field(default=2.7, metadata=bounds(gt=0))
    max_steer_deg: float = field(default=35.0, metadata=bounds(gt=0, lt=90))
    speed: float = field(default=8.0, metadata=bounds(gt=0))
    dt: float = field(default=0.2, metadata=bounds(gt=0))

    def __post_init__(self) -> None:
        check_bounds(self)

    @property
    def max_curvature(self) -> float:
        """The tightest curvature the steering allows (1/m)."""
        return math.tan(math.radians(self.max_steer_deg)) / self.wheelbase

    @property
    def step_m(self) -> float:
        """Distance driven in one control step (m)."""
        return self.speed * self.dt


def wrap_angle(a: float | np.ndarray) -> float | np.ndarray:
    """Angle(s) wrapped to ``[-pi, pi)``."""
    return (a + math.pi) % (2 * math.pi) - math.pi


def step(
    pose: np.ndarray, curvature: float, config: VehicleConfig, *, distance: float | None = None
) -> np.ndarray:
    """Pose after one control step at constant curvature (exact arc integration).

    Args:
        pose: ``(x, y, yaw)`` before the step.
        curvature: commanded curvature (1/m), clipped to the steering limit.
        config: the vehicle.
        distance: metres to drive instead of ``speed * dt``.

    Returns:
        The new pose ``(3,)`` (float64), yaw wrapped to ``[-pi, pi)``.
    """
    x, y, yaw = float(pose[0]), float(pose[1]), float(pose[2])
    k = float(np.clip(curvature, -config.max_curvature, config.max_curvature))
    ds = config.step_m if distance is None else float(distance)
    if abs(k * ds) < 1e-9:  # straight: the arc formula divides by k
        return np.array([x + ds * math.cos(yaw), y + ds * math.sin(yaw), wrap_angle(yaw)])
    yaw1 = yaw + k * ds
    return np.array(
        [
            x + (math.sin(yaw1) - math.sin(yaw)) / k,
            y - (math.cos(yaw1) - math.cos(yaw)) / k,
            wrap_angle(yaw1),
        ]
    )


def relative_pose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pose ``b`` expressed in the frame of pose ``a`` (odometry from ``a`` to ``b``).

    Returns:
        ``(dx, dy, dyaw)``: ``dx`` forward and ``dy`` to the left of ``a``, ``dyaw`` wrapped to
        ``[-pi, pi)``. ``compose_pose(a, relative_pose(a, b)) == b``.
    """
    c, s = math.cos(a[2]), math.sin(a[2])
    ex, ey = float(b[0]) - float(a[0]), float(b[1]) - float(a[1])
    return np.array([c * ex + s * ey, -s * ex + c * ey, wrap_angle(float(b[2]) - float(a[2]))])


def compose_pose(a: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """The pose reached from ``a`` by the relative motion ``rel`` (expressed in ``a``'s frame)."""
    c, s = math.cos(a[2]), math.sin(a[2])
    return np.array(
        [
            float(a[0]) + c * float(rel[0]) - s * float(rel[1]),
            float(a[1]) + s * float(rel[0]) + c * float(rel[1]),
            wrap_angle(float(a[2]) + float(rel[2])),
        ]
    )


def invert_pose(rel: np.ndarray) -> np.ndarray:
    """The inverse motion: ``invert_pose(relative_pose(a, b)) == relative_pose(b, a)``."""
    return relative_pose(np.asarray(rel, dtype=np.float64), np.zeros(3))


def transform_points(points_xy: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """Re-express points from frame A in frame B, where ``rel = relative_pose(A, B)``.

    With odometry ``rel`` (the current pose in the previous vehicle frame), points (or a path)
    given in the previous vehicle frame come out in the current one.

    Args:
        points_xy: ``(N, 2)`` (or ``(N, >=2)``: extra columns such as z are kept) in frame A.
        rel: ``(dx, dy, dyaw)`` of frame B in frame A.

    Returns:
        The points in frame B, same shape and dtype as ``points_xy``.
    """
    p = np.asarray(points_xy)
    c, s = math.cos(rel[2]), math.sin(rel[2])
    ex, ey = p[:, 0] - rel[0], p[:, 1] - rel[1]
    out = p.copy()
    out[:, 0] = c * ex + s * ey
    out[:, 1] = -s * ex + c * ey
    return out
