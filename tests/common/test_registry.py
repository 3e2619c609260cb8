from __future__ import annotations

import pytest

from common.registry import Registry, RegistryError


def test_duplicate_name_raises() -> None:
    reg: Registry = Registry("widget")
    reg.register("a")(lambda: 1)
    with pytest.raises(RegistryError, match="widget 'a' is already registered"):
        reg.register("a")(lambda: 2)


def test_unknown_name_lists_known_names() -> None:
    reg: Registry = Registry("widget")
    reg.register("alpha")(lambda: 1)
    reg.register("beta")(lambda: 2)
    with pytest.raises(RegistryError) as exc:
        reg.get("gamma")
    assert str(exc.value) == "unknown widget 'gamma'; known: alpha, beta"
    assert reg.names() == ["alpha", "beta"]
    assert "alpha" in reg and len(reg) == 2
