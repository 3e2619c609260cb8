"""The TF-Lite Micro interpreter (the ``tflite-micro`` wheel) as the bit-exact peer.

It is the x86 build of TF-Lite Micro with its portable reference kernels: int8 outputs carry over
to a Cortex-M unchanged, and so do the activation ("head") bytes of its arena; the persistent
structures it allocates hold 64-bit pointers here, so only the head bytes are compared with our
planner. The wheel has no arena-size getter: :func:`min_arena_size` searches the smallest arena
the interpreter allocates the model in (doubling from :data:`MIN_ARENA`, then bisecting to the
byte), and :func:`arena_report` captures what ``print_allocations`` writes to the C-level stderr.

The interpreter's own default arena (ten times the file size) is too small for a model whose
activations are large next to its weights (one 3x3 convolution on a 64x64x3 input), so
:func:`run` and :func:`arena_report` use the arena :func:`min_arena_size` finds.

A too-small arena does not always fail cleanly: for some sizes the interpreter crashes the
process (a kernel uses a persistent buffer whose allocation failed; seen on MobileNetV2-w0.35 at
48x48 and on a 2 kB convolution + fully connected model, at sizes a bisection visits). So every
trial allocation (:func:`fits`) runs in a helper process, where a crash only means "does not
fit", and this process creates interpreters only with arenas known to fit. Every failure of the
interpreter raises :class:`TFLMError` with the first line it printed; nothing it prints reaches
the process's stderr.

Feed it only bytes :func:`common.mcu.validate.validate_tflite` accepted: the C++ reader trusts
the flatbuffer, and a corrupt file can crash the process.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import subprocess
import sys
import tempfile
import threading
from typing import Any

import numpy as np

#: Where :func:`min_arena_size` starts doubling (bytes).
MIN_ARENA: int = 1024

#: The largest arena :func:`min_arena_size` tries (bytes): far beyond any microcontroller and
#: beyond the activations :mod:`common.mcu.validate` lets through.
MAX_ARENA: int = 1 << 28


class TFLMError(RuntimeError):
    """The TF-Lite Micro interpreter refused the model or failed to run it."""


def _runtime():
    from tflite_micro.python.tflite_micro import runtime

    return runtime


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


def _first_line(cap: _CStderr, exc: BaseException) -> str:
    """The interpreter's own complaint (what it printed), else the exception's message."""
    lines = [ln.strip() for ln in cap.text.splitlines() if ln.strip()]
    lines += [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


# The helper process: reads "model <n>\n" + n bytes, then "fits <size>\n" lines, and answers each
# with "1\n", or "0 <the interpreter's first complaint>\n". It imports only the wheel.
_PROBE = r"""
import os, sys, tempfile
from tflite_micro.python.tflite_micro import runtime
model = b""
for line in iter(sys.stdin.buffer.readline, b""):
    cmd, _, arg = line.strip().partition(b" ")
    if cmd == b"model":
        model = sys.stdin.buffer.read(int(arg))
        continue
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            runtime.Interpreter.from_bytes(model, arena_size=int(arg))
            why = None
        except Exception as exc:
            why = str(exc)
        tmp.seek(0)
        said = tmp.read().decode(errors="replace")
    lines = [s.strip() for s in (said + "\n" + (why or "")).splitlines() if s.strip()]
    sys.stdout.write("1\n" if why is None else "0 " + (lines[0] if lines else "failed") + "\n")
    sys.stdout.flush()
"""


class _Prober:
    """One helper process that tries arena sizes, restarted after the interpreter crashes it."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.model: bytes | None = None
        self.lock = threading.Lock()

    def _send(self, data: bytes) -> bytes:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
            return self.proc.stdout.readline()
        except (BrokenPipeError, ConnectionResetError):
            return b""

    def fits(self, model: bytes, arena_size: int) -> tuple[bool, str]:
        """Whether the model allocates in ``arena_size`` bytes, and if not, why."""
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self.proc = subprocess.Popen(
                    [sys.executable, "-c", _PROBE],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
                self.model = None
            if self.model != model:
                assert self.proc.stdin is not None
                self.proc.stdin.write(b"model %d\n" % len(model) + model)
                self.model = model
            answer = self._send(b"fits %d\n" % arena_size).decode(errors="replace").strip()
            if answer[:1] in ("0", "1"):
                return answer == "1", answer[2:]
            code = self.proc.wait()
            self.proc = None
            if code >= 0:  # not a crash: the helper itself failed (its import, say)
                raise TFLMError(f"the TF-Lite Micro helper process exited with code {code}")
            # the interpreter crashed on this arena: it does not fit
            return False, f"the interpreter crashed (signal {-code})"

    def close(self) -> None:
        with self.lock:
            if self.proc is not None:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                self.proc.wait()
                self.proc = None


_PROBER = _Prober()
atexit.register(_PROBER.close)


def fits(model: bytes, arena_size: int) -> bool:
    """Whether the interpreter allocates the model in ``arena_size`` bytes (tried in the helper
    process: a size on which it would crash is one it does not fit)."""
    return _PROBER.fits(bytes(model), int(arena_size))[0]


def min_arena_size(model: bytes, *, cap: int = MAX_ARENA) -> int:
    """The smallest ``arena_size`` (bytes) with which the interpreter allocates the model.

    Doubles from :data:`MIN_ARENA` until the model fits (at most ``cap``, else
    :class:`TFLMError`), then bisects to the byte. Cached per model.
    """
    return _min_arena_size(bytes(model), cap)


@functools.lru_cache(maxsize=64)
def _min_arena_size(model: bytes, cap: int) -> int:
    hi = MIN_ARENA
    while True:
        ok, why = _PROBER.fits(model, hi)
        if ok:
            break
        if hi >= cap:
            raise TFLMError(f"TF-Lite Micro cannot allocate the model in {cap} bytes: {why}")
        hi = min(2 * hi, cap)
    lo = hi // 2 if hi > MIN_ARENA else 0  # the largest size known not to fit
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(model, mid):
            hi = mid
        else:
            lo = mid
    return hi


def _interpreter(model: bytes, arena_size: int) -> Any:
    """An interpreter with the model allocated in ``arena_size`` bytes, or :class:`TFLMError`."""
    cap = _CStderr()
    try:
        with cap:
            return _runtime().Interpreter.from_bytes(model, arena_size=arena_size)
    except Exception as exc:
        raise TFLMError(
            f"TF-Lite Micro cannot allocate the model in a {arena_size}-byte arena: "
            f"{_first_line(cap, exc)}"
        ) from None


def _allocated(model: bytes, arena_size: int | None) -> Any:
    """An interpreter in ``arena_size`` bytes (default: :func:`min_arena_size`); a size the
    model does not fit raises :class:`TFLMError` instead of reaching the interpreter here."""
    if arena_size is None:
        arena_size = min_arena_size(model)
    else:
        ok, why = _PROBER.fits(bytes(model), int(arena_size))
        if not ok:
            raise TFLMError(
                f"TF-Lite Micro cannot allocate the model in a {arena_size}-byte arena: {why}"
            )
    return _interpreter(model, arena_size)


def run(model: bytes, x: np.ndarray, *, arena_size: int | None = None) -> np.ndarray:
    """Invoke the interpreter once on the int8 input ``x``; returns the int8 output.

    ``arena_size`` defaults to :func:`min_arena_size` of the model (not the interpreter's
    default, which can be too small)."""
    it = _allocated(model, arena_size)
    cap = _CStderr()
    try:
        with cap:
            details = it.get_input_details(0)
            it.set_input(np.asarray(x, dtype=np.int8).reshape(details["shape"]), 0)
            it.invoke()
            return np.array(it.get_output(0))
    except Exception as exc:
        raise TFLMError(f"TF-Lite Micro failed to run the model: {_first_line(cap, exc)}") from None


def arena_report(model: bytes, *, arena_size: int | None = None) -> dict[str, int]:
    """What ``print_allocations`` reports: total, head (activations) and tail bytes of the arena.

    ``arena_size`` defaults to :func:`min_arena_size` of the model."""
    it = _allocated(model, arena_size)
    with _CStderr() as cap:
        it.print_allocations()
    out: dict[str, int] = {}
    for key in ("total", "head", "tail"):
        m = re.search(rf"Arena allocation {key} (\d+) bytes", cap.text)
        if m:
            out[key] = int(m.group(1))
    if "head" not in out:
        raise TFLMError(f"could not parse the arena report: {cap.text.strip()[:200]!r}")
    return out
