"""Every driving config rejects bad values with an error naming the field."""

from __future__ import annotations

import pytest

from common.config import ConfigError, from_dict
from common.driving import FailureConfig, LidarConfig, MapConfig, VehicleConfig, WorldConfig

BAD = [
    (WorldConfig, "grid", 1),
    (WorldConfig, "block_m", 10.0),
    (WorldConfig, "lane_width", 1.0),
    (WorldConfig, "turn_radius_m", 30.0),  # more than block_m / 5
    (WorldConfig, "jitter_m", 20.0),  # more than block_m / 6
    (WorldConfig, "curvy", 0.5),
    (WorldConfig, "route_length_m", 0.0),
    (WorldConfig, "trees_per_100m", -1.0),
    (LidarConfig, "beams", 0),
    (LidarConfig, "fov_down_deg", 20.0),  # above fov_up_deg
    (LidarConfig, "azimuth_res_deg", 0.0),
    (LidarConfig, "dropout", 1.5),
    (LidarConfig, "max_range", float("nan")),
    (VehicleConfig, "speed", 0.0),
    (VehicleConfig, "max_steer_deg", 95.0),
    (MapConfig, "size_px", 2),
    (MapConfig, "back_px", 32),  # not below size_px
    (MapConfig, "drift_tau_s", 0.0),
    (FailureConfig, "rate_per_km", -1.0),
    (FailureConfig, "beam_loss_fraction", 2.0),
    (FailureConfig, "occlusion_deg", 400.0),
]


@pytest.mark.parametrize(
    ("cls", "name", "value"), BAD, ids=[f"{c.__name__}.{n}" for c, n, _ in BAD]
)
def test_bad_value_names_the_field(cls, name, value):
    with pytest.raises(ConfigError, match=name):
        cls(**{name: value})


@pytest.mark.parametrize("cls", [WorldConfig, LidarConfig, MapConfig, VehicleConfig, FailureConfig])
def test_defaults_are_valid_and_load_from_yaml_data(cls):
    assert from_dict(cls, {}) == cls()


def test_yaml_loader_names_file_and_key():
    with pytest.raises(ConfigError, match=r"params.yaml: data.lidar.beams"):
        from_dict(LidarConfig, {"beams": 0}, file="params.yaml", prefix="data.lidar")
    with pytest.raises(ConfigError, match="speed"):
        from_dict(VehicleConfig, {"speed": "fast"})
