"""Fixtures of the driving tests."""

from __future__ import annotations

import pytest

from common.driving import World, WorldConfig, build_world


@pytest.fixture(scope="session")
def default_world() -> World:
    return build_world(WorldConfig(), seed=0)
