"""Bird's-eye pictures of a driving scene (matplotlib, imported only when drawing)."""

from __future__ import annotations

from typing import Any

import numpy as np

from common.driving.world import World

_BOX_COLOURS = ("#b0a090", "#4a78c0", "#606060")  # building, parked car, kerb
_CYL_COLOURS = ("#6b4f2a", "#5c9a4a")  # trunk or pole, crown
_CAR_LENGTH, _CAR_WIDTH = 4.5, 1.8


def _rect(cx: float, cy: float, length: float, width: float, yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    lx = np.array([1, 1, -1, -1]) * length / 2
    ly = np.array([1, -1, -1, 1]) * width / 2
    return np.stack([cx + c * lx - s * ly, cy + s * lx + c * ly], axis=1)


def draw_scene(
    ax: Any,
    world: World,
    pose: np.ndarray,
    points: np.ndarray | None = None,
    path: np.ndarray | None = None,
    radius_m: float = 40.0,
) -> Any:
    """Draw the scene around ``pose`` seen from above, in world coordinates (m).

    Args:
        ax: a matplotlib axes.
        world: the world.
        pose: ``(x, y, yaw)`` of the car, drawn as a red rectangle.
        points: LiDAR points ``(N, 3)`` in the vehicle frame (as :func:`scan` gives them),
            drawn in the world frame coloured by height.
        path: a planned path ``(M, 2)`` in world coordinates.
        radius_m: half-width of the view.

    Returns:
        ``ax``.
    """
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Circle, Polygon

    x, y, yaw = (float(v) for v in pose[:3])
    reach = radius_m * 1.5
    for road in world.roads:
        if np.hypot(road[:, 0] - x, road[:, 1] - y).min() > reach + 10:
            continue
        t = np.gradient(road, axis=0)
        t /= np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-12)[:, None]
        n = np.stack([-t[:, 1], t[:, 0]], axis=1)
        half = world.road_half_width or world.lane_width
        outline = np.vstack([road + half * n, (road - half * n)[::-1]])
        ax.add_patch(Polygon(outline, closed=True, facecolor="#e4e4e4", edgecolor="none", zorder=0))
        ax.plot(road[:, 0], road[:, 1], color="white", lw=0.8, ls=(0, (4, 4)), zorder=1)

    near_b = np.hypot(world.boxes[:, 0] - x, world.boxes[:, 1] - y) < reach
    patches, colours = [], []
    for b, kind in zip(world.boxes[near_b], world.box_kind[near_b], strict=True):
        patches.append(Polygon(_rect(b[0], b[1], b[3], b[4], b[6]), closed=True))
        colours.append(_BOX_COLOURS[int(kind)])
    near_c = np.hypot(world.cylinders[:, 0] - x, world.cylinders[:, 1] - y) < reach
    order = np.argsort(world.cylinder_kind[near_c])[::-1]  # crowns first, trunks on top
    for c, kind in zip(
        world.cylinders[near_c][order], world.cylinder_kind[near_c][order], strict=True
    ):
        patches.append(Circle((c[0], c[1]), c[2]))
        colours.append(_CYL_COLOURS[int(kind)])
    if patches:
        ax.add_collection(
            PatchCollection(patches, facecolors=colours, edgecolors="none", alpha=0.85, zorder=2)
        )

    ax.plot(world.route[:, 0], world.route[:, 1], color="#2a9d8f", lw=1.2, zorder=3, label="route")
    if points is not None and len(points):
        world_xy = _to_world(points, pose)
        sc = ax.scatter(
            world_xy[:, 0],
            world_xy[:, 1],
            c=points[:, 2],
            s=0.3,
            cmap="viridis",
            vmin=-0.2,
            vmax=4.0,
            zorder=4,
            linewidths=0,
        )
        sc.set_rasterized(True)
    if path is not None and len(path):
        ax.plot(path[:, 0], path[:, 1], color="#e76f51", lw=1.8, zorder=5, label="plan")
    car = _rect(x, y, _CAR_LENGTH, _CAR_WIDTH, yaw)
    ax.add_patch(Polygon(car, closed=True, facecolor="#d62828", zorder=6))
    ax.set_xlim(x - radius_m, x + radius_m)
    ax.set_ylim(y - radius_m, y + radius_m)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    return ax


def _to_world(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    c, s = np.cos(pose[2]), np.sin(pose[2])
    return np.stack(
        [
            pose[0] + c * points[:, 0] - s * points[:, 1],
            pose[1] + s * points[:, 0] + c * points[:, 1],
        ],
        axis=1,
    )
