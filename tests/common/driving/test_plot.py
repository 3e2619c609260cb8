"""The bird's-eye scene renders (headless)."""

from __future__ import annotations

import numpy as np

from common.driving import LidarConfig, draw_scene, scan


def test_draw_scene(default_world, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pose = np.array(default_world.pose_at(200.0))
    pts = scan(default_world, pose, LidarConfig(azimuth_res_deg=2.0), np.random.default_rng(0))
    path = default_world.route[400:440]
    fig, ax = plt.subplots(figsize=(4, 4))
    try:
        assert draw_scene(ax, default_world, pose, points=pts, path=path, radius_m=30.0) is ax
        assert len(ax.patches) >= 2  # road surfaces and the car
        assert len(ax.collections) == 2  # the scenery and the LiDAR points
        assert ax.get_xlim() == (pose[0] - 30.0, pose[0] + 30.0)
        fig.savefig(tmp_path / "scene.png")
        assert (tmp_path / "scene.png").stat().st_size > 1000
    finally:
        plt.close(fig)
