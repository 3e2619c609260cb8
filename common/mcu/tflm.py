"""The TF-Lite Micro interpreter (the ``tflite-micro`` wheel) as the bit-exact peer.

It is the x86 build of TF-Lite Micro with its portable reference kernels: int8 outputs carry over
to a Cortex-M unchanged, and so do the activation ("head") bytes of its arena; the persistent
structures it allocates hold 64-bit pointers here, so only the head bytes are compared with our
planner. The wheel has no arena-size getter: :func:`arena_report` captures what
``print_allocations`` writes to the C-level stderr, and :func:`min_arena_size` bisects the
smallest arena the interpreter accepts.
"""

from __future__ import annotations

import os
import re
import tempfile

import numpy as np


def _runtime():
    from tflite_micro.python.tflite_micro import runtime

    return runtime


def run(model: bytes, x: np.ndarray, *, arena_size: int | None = None) -> np.ndarray:
    """Invoke the interpreter once on the int8 input ``x``; returns the int8 output."""
    it = _runtime().Interpreter.from_bytes(model, arena_size=arena_size)
    details = it.get_input_details(0)
    it.set_input(np.asarray(x, dtype=np.int8).reshape(details["shape"]), 0)
    it.invoke()
    return np.array(it.get_output(0))


class _CStderr:
    """Redirect the C-level stderr (fd 2) to a temporary file while the block runs."""

    def __enter__(self) -> _CStderr:
        self.tmp = tempfile.TemporaryFile(mode="w+b")
        self.saved = os.dup(2)
        os.dup2(self.tmp.fileno(), 2)
        return self

    def __exit__(self, *exc: object) -> None:
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.tmp.seek(0)
        self.text = self.tmp.read().decode(errors="replace")
        self.tmp.close()


def fits(model: bytes, arena_size: int) -> bool:
    with _CStderr():  # a too-small arena makes the interpreter complain on stderr
        try:
            _runtime().Interpreter.from_bytes(model, arena_size=arena_size)
            return True
        except Exception:  # allocation failed
            return False


def min_arena_size(model: bytes, *, hi: int = 1 << 24) -> int:
    """The smallest ``arena_size`` (bytes) with which the interpreter allocates the model."""
    lo = 0
    if not fits(model, hi):
        raise RuntimeError(f"the model does not fit in a {hi}-byte arena")
    while hi - lo > 16:
        mid = (lo + hi) // 2
        if fits(model, mid):
            hi = mid
        else:
            lo = mid
    return hi


def arena_report(model: bytes, *, arena_size: int | None = None) -> dict[str, int]:
    """What ``print_allocations`` reports: total, head (activations) and tail bytes of the arena."""
    it = _runtime().Interpreter.from_bytes(model, arena_size=arena_size)
    with _CStderr() as cap:
        it.print_allocations()
    out: dict[str, int] = {}
    for key in ("total", "head", "tail"):
        m = re.search(rf"Arena allocation {key} (\d+) bytes", cap.text)
        if m:
            out[key] = int(m.group(1))
    if "head" not in out:
        raise RuntimeError(f"could not parse the arena report:\n{cap.text[:500]}")
    return out
