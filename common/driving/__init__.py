"""A simulated driving world for end-to-end LiDAR navigation (numpy, vectorised, seeded).

What it simulates: procedural road networks (a jittered grid of two-lane roads, right-hand
traffic) with a route through them and scenery (buildings, parked cars, kerbs, trees, poles); a
spinning multi-beam LiDAR ray-cast against it; a kinematic bicycle driven by curvature; a
pure-pursuit expert whose commands now and in the future are the training labels; a coarse,
noisy GPS map raster of the route and the roads; LiDAR failures; and the closed loop that drives
a policy, injects failures and counts safety-driver takeovers, or records expert data.

Frames and units: metres, seconds, radians (degrees only in config fields named ``*_deg``).
World frame: x, y on the ground, z up, the ground is z = 0. A pose is ``(x, y, yaw)``, yaw
counter-clockwise from the world x axis. Vehicle frame: x forward, y left, z up, origin on the
ground under the LiDAR (LiDAR points have the ground at z ~ 0). Curvature is 1/m, positive turns
left. Map rasters: row 0 farthest ahead, column 0 farthest left, the car at the bottom centre
(:mod:`common.driving.gpsmap`).

Typical use::

    world = build_world(WorldConfig(), seed=0)
    data = record(world, lidar=LidarConfig(), map_config=MapConfig(), vehicle=VehicleConfig(),
                  horizon=5, seed=1, lookahead_m=8.0, perturb_sigma=0.03)
    result = drive(world, ExpertPolicy(world), lidar=LidarConfig(), map_config=MapConfig(),
                   vehicle=VehicleConfig(), failure="blackout", seed=2)
    result.takeovers_per_km
"""

from common.driving.closed_loop import (
    MAX_HEADING_ERROR_DEG,
    DriveResult,
    Observation,
    Policy,
    drive,
    record,
)
from common.driving.expert import ExpertPolicy, expert_labels, pure_pursuit
from common.driving.failures import FAILURES, FailureConfig, corrupt, failure_schedule
from common.driving.gpsmap import GpsSensor, MapConfig, rasterize
from common.driving.lidar import LidarConfig, points_from_range, range_image, scan
from common.driving.plot import draw_scene
from common.driving.vehicle import (
    VehicleConfig,
    compose_pose,
    invert_pose,
    relative_pose,
    step,
    transform_points,
    wrap_angle,
)
from common.driving.world import (
    BOX_KINDS,
    CYLINDER_KINDS,
    ROUTE_SPACING_M,
    ROUTE_TAIL_M,
    World,
    WorldConfig,
    build_world,
)

__all__ = [
    "BOX_KINDS",
    "CYLINDER_KINDS",
    "FAILURES",
    "MAX_HEADING_ERROR_DEG",
    "ROUTE_SPACING_M",
    "ROUTE_TAIL_M",
    "DriveResult",
    "ExpertPolicy",
    "FailureConfig",
    "GpsSensor",
    "LidarConfig",
    "MapConfig",
    "Observation",
    "Policy",
    "VehicleConfig",
    "World",
    "WorldConfig",
    "build_world",
    "compose_pose",
    "corrupt",
    "draw_scene",
    "drive",
    "expert_labels",
    "failure_schedule",
    "invert_pose",
    "points_from_range",
    "pure_pursuit",
    "range_image",
    "rasterize",
    "record",
    "relative_pose",
    "scan",
    "step",
    "transform_points",
    "wrap_angle",
]
