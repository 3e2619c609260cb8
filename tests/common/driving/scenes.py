"""Hand-made worlds with known geometry for the driving tests."""

from __future__ import annotations

import numpy as np

from common.driving import World


def straight_world(
    boxes: np.ndarray | None = None, cylinders: np.ndarray | None = None, length: float = 200.0
) -> World:
    """A straight route along the world x axis from (0, 0), one road under it (its centre 1.75 m
    to the left of the lane centre) and the given scenery."""
    x = np.arange(0.0, length + 1e-9, 0.5)
    route = np.stack([x, np.zeros_like(x)], axis=1)
    return World(
        roads=[route + np.array([0.0, 1.75])],
        route=route,
        route_s=x.copy(),
        route_heading=np.zeros_like(x),
        lane_width=3.5,
        boxes=np.zeros((0, 7)) if boxes is None else np.asarray(boxes, dtype=np.float64),
        cylinders=np.zeros((0, 5))
        if cylinders is None
        else np.asarray(cylinders, dtype=np.float64),
        seed=0,
        end_s=length - 60.0,
        road_half_width=6.0,
    )
