"""Name -> factory registries (models, datasets, compression methods).

Entries register themselves with a decorator where they are defined; looking up a name that was
never registered raises an error that lists every known name, so typos are obvious.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """Raised for a duplicate registration or an unknown name."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable.
        return str(self.args[0])


class Registry(Generic[T]):
    """A named collection of factories.

    Example:
        >>> MODELS = Registry("model")
        >>> @MODELS.register("lenet5")
        ... def build_lenet5(): ...
        >>> MODELS.get("lenet5")
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator registering an object under ``name`` (default: its ``__name__``)."""

        def decorator(obj: T) -> T:
            key = name or getattr(obj, "__name__", None)
            if not key:
                raise RegistryError(f"cannot infer a {self.kind} name for {obj!r}; pass one")
            if key in self._entries:
                raise RegistryError(
                    f"{self.kind} {key!r} is already registered (by {self._entries[key]!r})"
                )
            self._entries[key] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise RegistryError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
