"""Closed-loop driving (evaluation with takeovers) and expert data recording.

Every control step: the LiDAR scans (and a scheduled failure corrupts the range image), the GPS
measures the pose and the map is rasterised around the measurement, the policy returns a
curvature and the bicycle model moves the car by one step. A *takeover* is counted when the car's
centre leaves its lane (``|lateral offset| > lane_width / 2``) or its heading is more than 60
degrees off the route's: the safety driver puts the car back on the lane centre at the same
distance along the route, facing along it, and re-engages (``policy.reset()`` is called when the
policy has one).

Random streams: ``seed`` is split into independent streams for the LiDAR noise, the GPS, the
failure schedule, the corruption and the odometry noise, so a drive with a failure sees the same
LiDAR noise as the same drive without one, as long as the car is in the same place.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from common.driving.expert import expert_labels
from common.driving.failures import FailureConfig, corrupt, failure_schedule
from common.driving.gpsmap import GpsSensor, MapConfig, rasterize
from common.driving.lidar import LidarConfig, points_from_range, range_image
from common.driving.vehicle import VehicleConfig, relative_pose, step
from common.driving.world import World

MAX_HEADING_ERROR_DEG = 60.0
"""A heading error beyond this is a takeover, even inside the lane."""

_STREAMS = ("lidar", "gps", "schedule", "corrupt", "odometry", "perturb")


@dataclass
class Observation:
    """What the car's software sees at one control step.

    Attributes:
        points: ``(N, 3)`` float32 LiDAR points in the vehicle frame (x forward, y left, z up,
            origin on the ground under the sensor). During a ``frame_drop`` failure this is the
            previous delivered frame's array again (the same object).
        map: ``(2, H, W)`` float32 map raster around the GPS-measured pose (see
            :mod:`common.driving.gpsmap`).
        odometry: ``(dx, dy, dyaw)``: the current pose in the previous step's vehicle frame
            (zeros at step 0); it includes the jump when a takeover moved the car.
        step: control step index.
        failed: whether the sensor is failing at this step. Ground truth for evaluation only: a
            policy must not read it.
        pose: the true ``(x, y, yaw)``. Privileged: for the expert and for evaluation only; a
            learned policy must not read it.
    """

    points: np.ndarray
    map: np.ndarray
    odometry: np.ndarray
    step: int
    failed: bool = False
    pose: np.ndarray = field(default_factory=lambda: np.zeros(3))


Policy = Callable[[Observation], float]


@dataclass
class DriveResult:
    """The outcome of :func:`drive`; per-step arrays have one entry per control step.

    Attributes:
        distance_m: distance driven along the route (m).
        takeovers: how many times the safety driver took over.
        poses: ``(T, 3)`` true pose at each observation.
        curvatures: ``(T,)`` the policy's commands, clipped to the steering limit.
        failed: ``(T,)`` whether the sensor was failing.
        lateral: ``(T,)`` signed lateral offset from the lane centre (m, left positive) reached
            by each step's command, before any takeover reset.
        heading_error: ``(T,)`` heading error (rad) after each step's command, before any reset.
        takeover_steps: steps whose command caused a takeover.
        takeover_s: route arc length (m) of each takeover.
        steps: control steps driven.
        completed: whether the car reached the end (False if the step budget ran out first).
    """

    distance_m: float
    takeovers: int
    poses: np.ndarray
    curvatures: np.ndarray
    failed: np.ndarray
    lateral: np.ndarray
    heading_error: np.ndarray
    takeover_steps: list[int]
    takeover_s: list[float]
    steps: int
    completed: bool

    @property
    def takeovers_per_km(self) -> float:
        """Takeovers per kilometre driven."""
        return self.takeovers / max(self.distance_m / 1000.0, 1e-9)


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {name: np.random.default_rng(s) for name, s in zip(_STREAMS, children, strict=True)}


def _heading_error(yaw: float, route_heading: float) -> float:
    return (yaw - route_heading + math.pi) % (2 * math.pi) - math.pi


def drive(
    world: World,
    policy: Policy,
    *,
    lidar: LidarConfig,
    map_config: MapConfig,
    vehicle: VehicleConfig,
    failure: str = "none",
    failure_config: FailureConfig | None = None,
    seed: int,
    max_distance_m: float | None = None,
    lane_half_width: float | None = None,
    odometry_sigma: float = 0.0,
    progress: bool = False,
) -> DriveResult:
    """Drive the route of ``world`` with ``policy`` from its start, counting takeovers.

    Args:
        world: the map to drive.
        policy: ``policy(obs) -> curvature``; its ``reset()``, if any, is called after each
            takeover.
        lidar, map_config, vehicle: the sensors and the car.
        failure: one of :data:`common.driving.FAILURES`, injected by a random schedule.
        failure_config: rate, duration and strength of the failures (default
            ``FailureConfig()``).
        seed: every random stream of the drive derives from it (deterministic).
        max_distance_m: stop after this distance along the route (default: the route's end).
        lane_half_width: the takeover threshold on the lateral offset (default: half a lane).
        odometry_sigma: relative noise of the odometry (std as a fraction of each component).
        progress: show a progress bar.
    """
    failure_config = failure_config or FailureConfig()
    rngs = _streams(seed)
    end_s = world.end_s if max_distance_m is None else min(world.end_s, float(max_distance_m))
    half = world.lane_width / 2 if lane_half_width is None else float(lane_half_width)
    max_heading = math.radians(MAX_HEADING_ERROR_DEG)
    # A step budget: a policy that only ever triggers takeovers makes no progress, and must
    # still end.
    budget = int(3 * end_s / vehicle.step_m) + 50
    schedule = failure_schedule(budget, failure, failure_config, vehicle, rngs["schedule"])
    gps = GpsSensor(map_config, rngs["gps"])

    pose = np.array(world.pose_at(0.0))
    hint = 0
    s = 0.0
    prev_pose = pose.copy()
    prev_points: np.ndarray | None = None
    episode_seed = 0
    poses, curvs, failed, lateral, head_err = [], [], [], [], []
    takeover_steps: list[int] = []
    takeover_s: list[float] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=round(end_s), unit="m", desc="drive", mininterval=1.0)
    t = 0
    while s < end_s and t < budget:
        is_failed = bool(schedule[t])
        if is_failed and (t == 0 or not schedule[t - 1]):
            # One stream per episode: beam_loss loses the same beams for the whole episode.
            episode_seed = int(rngs["corrupt"].integers(2**63))
        # Scan even when the frame will be dropped: the LiDAR noise stream then stays aligned
        # with the same drive without failures.
        ranges = range_image(world, pose, lidar, rngs["lidar"])
        if failure == "frame_drop" and is_failed and prev_points is not None:
            points = prev_points
        else:
            if is_failed and failure not in ("none", "frame_drop"):
                episode_rng = (
                    np.random.default_rng(episode_seed)
                    if failure == "beam_loss"
                    else rngs["corrupt"]
                )
                ranges = corrupt(
                    ranges, failure, failure_config, episode_rng, max_range=lidar.max_range
                )
            points = points_from_range(ranges, lidar)
        measured = gps.measure(pose, vehicle.dt if t > 0 else 0.0)
        raster = rasterize(world, measured, map_config, hint=hint)
        odo = relative_pose(prev_pose, pose)
        noise = rngs["odometry"].standard_normal(3)
        odo = odo + odometry_sigma * np.abs(odo) * noise
        obs = Observation(points, raster, odo, t, is_failed, pose.copy())
        k = float(np.clip(policy(obs), -vehicle.max_curvature, vehicle.max_curvature))
        if not math.isfinite(k):
            raise ValueError(f"the policy returned {k} at step {t}")

        poses.append(pose.copy())
        curvs.append(k)
        failed.append(is_failed)
        prev_pose, prev_points = pose, points
        pose = step(pose, k, vehicle)
        lat, s_new, heading = world.project(pose, hint=hint)
        err = _heading_error(pose[2], heading)
        lateral.append(lat)
        head_err.append(err)
        if abs(lat) > half or abs(err) > max_heading:
            takeover_steps.append(t)
            takeover_s.append(s_new)
            pose = np.array(world.pose_at(s_new))
            reset = getattr(policy, "reset", None)
            if callable(reset):
                reset()
        if bar is not None:
            bar.update(round(max(s_new, 0.0)) - bar.n)
        s = s_new
        hint = world.index_of(s)
        t += 1
    if bar is not None:
        bar.close()
    return DriveResult(
        distance_m=float(min(s, end_s)),
        takeovers=len(takeover_steps),
        poses=np.array(poses).reshape(-1, 3),
        curvatures=np.array(curvs),
        failed=np.array(failed, dtype=bool),
        lateral=np.array(lateral),
        heading_error=np.array(head_err),
        takeover_steps=takeover_steps,
        takeover_s=takeover_s,
        steps=t,
        completed=bool(s >= end_s),
    )


def record(
    world: World,
    *,
    lidar: LidarConfig,
    map_config: MapConfig,
    vehicle: VehicleConfig,
    horizon: int,
    seed: int,
    lookahead_m: float,
    perturb_sigma: float,
    max_distance_m: float | None = None,
    perturb_tau_s: float = 1.0,
    max_lateral_fraction: float = 0.6,
) -> dict[str, np.ndarray | list[np.ndarray]]:
    """Drive the route with the expert, perturbed, and record a training frame every step.

    The executed command is the expert's plus a smoothed random perturbation (an
    Ornstein-Uhlenbeck process of standard deviation ``perturb_sigma`` (1/m) and time constant
    ``perturb_tau_s``), so the data shows the car off the lane centre and the expert's way back
    (perturbation-based data collection, as in DAgger-style recovery data). The perturbation is
    switched off for a step (and its state reset) whenever the step would take the car beyond
    ``max_lateral_fraction`` of half a lane or 30 degrees off the route heading, so the recording
    never leaves the lane. The labels are always the *clean* expert's.

    Returns:
        ``points``: list of ``(N_i, 3)`` float32 scans (vehicle frame); ``maps``:
        ``(T, 2, H, W)`` float32 rasters around the GPS-measured pose; ``labels``:
        ``(T, horizon + 1)`` float32 expert curvatures now and at the next ``horizon`` steps
        from the pose reached; ``poses``: ``(T, 3)`` true poses; ``odometry``: ``(T, 3)`` each
        pose in the previous one's frame; ``commands``: ``(T,)`` executed curvatures;
        ``lateral``: ``(T,)`` lateral offsets from the lane centre.
    """
    rngs = _streams(seed)
    end_s = world.end_s if max_distance_m is None else min(world.end_s, float(max_distance_m))
    gps = GpsSensor(map_config, rngs["gps"])
    limit = max_lateral_fraction * world.lane_width / 2
    a = math.exp(-vehicle.dt / perturb_tau_s)
    noise_scale = perturb_sigma * math.sqrt(1 - a * a)
    perturb = perturb_sigma * rngs["perturb"].standard_normal()

    pose = np.array(world.pose_at(0.0))
    prev_pose = pose.copy()
    hint, s, t = 0, 0.0, 0
    budget = int(2 * end_s / vehicle.step_m) + 50
    out: dict[str, list] = {
        k: [] for k in ("points", "maps", "labels", "poses", "odometry", "commands", "lateral")
    }
    while s < end_s and t < budget:
        lat, _, _ = world.project(pose, hint=hint)
        out["points"].append(
            points_from_range(range_image(world, pose, lidar, rngs["lidar"]), lidar)
        )
        measured = gps.measure(pose, vehicle.dt if t > 0 else 0.0)
        out["maps"].append(rasterize(world, measured, map_config, hint=hint))
        labels = expert_labels(world, pose, vehicle, horizon, lookahead_m, hint=hint)
        out["labels"].append(labels)
        out["poses"].append(pose.copy())
        out["odometry"].append(relative_pose(prev_pose, pose))
        out["lateral"].append(lat)

        k = float(np.clip(labels[0] + perturb, -vehicle.max_curvature, vehicle.max_curvature))
        nxt = step(pose, k, vehicle)
        lat_n, s_n, head_n = world.project(nxt, hint=hint)
        if abs(lat_n) > limit or abs(_heading_error(nxt[2], head_n)) > math.radians(30):
            perturb = 0.0
            k = float(labels[0])
            nxt = step(pose, k, vehicle)
            lat_n, s_n, head_n = world.project(nxt, hint=hint)
            if abs(lat_n) > limit:  # the expert alone cannot recover in one step: recentre
                nxt = np.array(world.pose_at(s_n))
        perturb = a * perturb + noise_scale * rngs["perturb"].standard_normal()
        out["commands"].append(k)
        prev_pose, pose = pose, nxt
        s = s_n
        hint = world.index_of(s)
        t += 1
    return {
        "points": out["points"],
        "maps": np.array(out["maps"], dtype=np.float32).reshape(
            -1, 2, map_config.size_px, map_config.size_px
        ),
        "labels": np.array(out["labels"], dtype=np.float32).reshape(-1, horizon + 1),
        "poses": np.array(out["poses"]).reshape(-1, 3),
        "odometry": np.array(out["odometry"]).reshape(-1, 3),
        "commands": np.array(out["commands"]),
        "lateral": np.array(out["lateral"]),
    }
