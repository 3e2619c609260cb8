"""Host harness and builds of a generated C project: compile it with the host compiler and run
it on int8 inputs (the checking harness, ``main_host.c``), or cross-compile its MCU sources for
the Cortex-M7 (objects only; :mod:`common.mcu.cortexm` links and runs images).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from common.mcu.codegen import CProject

HOST_CFLAGS = ("-std=c99", "-Wall", "-Wextra")
# The host build is a checking harness (integer C: every -O level gives the same outputs); -O1
# compiles the large specialized models in half the time of -O2 and runs nearly as fast.
HOST_OPT = "-O1"
ARM_CFLAGS = (
    "-mcpu=cortex-m7",
    "-mthumb",
    "-mfpu=fpv5-d16",
    "-mfloat-abi=hard",
    "-ffreestanding",
    "-std=c99",
    "-Wall",
    "-Wextra",
)

MAKEFILE = """\
# Host build of the generated model (an MCU build compiles every .c but main_host.c).
CC ?= gcc
CFLAGS ?= -O2 -std=c99 -Wall -Wextra
SRCS := $(wildcard *.c)
HDRS := $(wildcard *.h)

model_host: $(SRCS) $(HDRS)
\t$(CC) $(CFLAGS) -o $@ $(SRCS)

clean:
\trm -f model_host

.PHONY: clean
"""


def build_host(
    project: CProject, *, opt: str = HOST_OPT, cc: str = "gcc", werror: bool = True
) -> Path:
    """Compile the host harness with ``cc`` (warnings are errors by default); returns the exe."""
    exe = project.out_dir / "model_host"
    cmd = [cc, opt, *HOST_CFLAGS, *(["-Werror"] if werror else []), "-o", str(exe)]
    cmd += [str(p) for p in project.sources]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"host build failed:\n{' '.join(cmd)}\n{result.stderr}")
    return exe


def build_arm(
    project: CProject, *, cc: str = "arm-none-eabi-gcc", opt: str = "-O2", werror: bool = True
) -> list[Path]:
    """Cross-compile every MCU source for Cortex-M7 (``-c``, freestanding); returns the objects."""
    objects = []
    for src in project.mcu_sources:
        obj = src.with_suffix(".o")
        cmd = [cc, *ARM_CFLAGS, opt, *(["-Werror"] if werror else []), "-c", str(src)]
        cmd += ["-o", str(obj)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"ARM build failed:\n{' '.join(cmd)}\n{result.stderr}")
        objects.append(obj)
    return objects


def run_host(exe: Path, x: np.ndarray) -> np.ndarray:
    """Run a host build on the int8 input ``x``; returns the int8 output, flattened (NHWC)."""
    data = np.ascontiguousarray(x, dtype=np.int8).tobytes()
    result = subprocess.run([str(exe)], input=data, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{exe} failed: {result.stderr.decode(errors='replace')}")
    return np.frombuffer(result.stdout, dtype=np.int8).copy()


def run_host_batch(exe: Path, xs: np.ndarray) -> np.ndarray:
    """Run a host build once on every int8 input of ``xs`` (first axis: the inputs), in one
    process; returns the int8 outputs, one flattened (NHWC) row per input."""
    xs = np.ascontiguousarray(xs, dtype=np.int8)
    n = len(xs)
    result = subprocess.run(
        [str(exe), "--batch"], input=xs.tobytes(), capture_output=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{exe} --batch failed: {result.stderr.decode(errors='replace')}")
    out = np.frombuffer(result.stdout, dtype=np.int8)
    if n == 0 or out.size % n:
        raise RuntimeError(f"{exe} --batch wrote {out.size} bytes for {n} inputs")
    return out.reshape(n, -1).copy()


def time_host(exe: Path, x: np.ndarray, repeat: int = 100) -> float:
    """Mean host seconds per inference over ``repeat`` runs (CPU time measured in the harness)."""
    data = np.ascontiguousarray(x, dtype=np.int8).tobytes()
    result = subprocess.run([str(exe), str(repeat)], input=data, capture_output=True, check=True)
    return float(result.stderr.decode().strip().splitlines()[-1])
