"""The Arm bare-metal toolchain (GCC, binutils) and QEMU: find them, or say how to install them.

Every entry point that shells out to ``arm-none-eabi-*`` or ``qemu-system-arm`` calls
:func:`require` first, so a machine without the toolchain fails with one message naming the fix
instead of a ``FileNotFoundError`` from deep inside :mod:`subprocess`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable

from common.errors import InputError

#: The Debian packages that provide everything :mod:`common.mcu.cortexm` shells out to.
APT_PACKAGES: tuple[str, ...] = (
    "gcc-arm-none-eabi",
    "binutils-arm-none-eabi",
    "libnewlib-arm-none-eabi",
    "qemu-system-arm",
)

#: The command that installs them (run as root).
INSTALL_COMMAND: str = "apt-get update && apt-get install -y --no-install-recommends " + " ".join(
    APT_PACKAGES
)

#: The tools a build needs (compile, link, measure).
BUILD_TOOLS: tuple[str, ...] = ("arm-none-eabi-gcc", "arm-none-eabi-size")

#: The emulator used for the optional cross-check.
QEMU: str = "qemu-system-arm"


class ToolchainMissingError(InputError, RuntimeError):
    """A required cross-compiler or emulator is not on ``PATH``."""


def have(tool: str) -> bool:
    """Whether the executable ``tool`` is on ``PATH``."""
    return shutil.which(tool) is not None


def missing(tools: Iterable[str] = BUILD_TOOLS) -> list[str]:
    """The executables among ``tools`` that are not on ``PATH``."""
    return [t for t in tools if not have(t)]


def install_hint(tools: Iterable[str]) -> str:
    """The one-paragraph message :func:`require` raises with."""
    return (
        f"missing microcontroller toolchain: {', '.join(tools)} not found on PATH. "
        f"Install it with:  {INSTALL_COMMAND}  "
        "(`make setup` / `make` install it automatically when run as root)."
    )


def require(tools: Iterable[str] = BUILD_TOOLS) -> None:
    """Raise :class:`ToolchainMissingError` unless every executable in ``tools`` is on ``PATH``.

    The message names the missing tools and the ``apt-get`` command that installs them.
    """
    absent = missing(tools)
    if absent:
        raise ToolchainMissingError(install_hint(absent))
