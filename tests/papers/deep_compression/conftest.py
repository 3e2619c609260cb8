from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]


def write_params(path: Path, *, epochs: int = 2, subset: int | None = None) -> Path:
    """params.yaml whose deep_compression section runs both LeNets briefly on the given data."""
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    dc = data["deep_compression"]
    dc["profile"] = "smoke"
    for name in ("lenet300", "lenet5"):
        cfg = dc["profiles"]["smoke"]["baseline"][name]
        cfg["train_subset"] = subset
        cfg["test_subset"] = None
        cfg["train"]["epochs"] = epochs
        cfg["train"]["batch_size"] = 32
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def dc_params(tmp_path: Path) -> Path:
    return write_params(tmp_path / "params.yaml")
