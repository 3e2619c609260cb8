"""Process-wide environment defaults for stage entry points.

Called from each entry point's ``main()`` (never at import time) so that importing ``common`` has
no side effects. Values already set by the user win.
"""

from __future__ import annotations

import os
import time

DEFAULTS = {
    # No phoning home: these machines (and many clusters) have no network.
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
    # Models are built from configs; nothing is fetched from a hub at run time.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # Headless plotting.
    "MPLBACKEND": "Agg",
    # A fixed number of BLAS threads: MKL otherwise uses fewer on a busy machine, which changes
    # the order of floating-point sums and makes a rerun differ in the last bits.
    "MKL_DYNAMIC": "FALSE",
}


def configure_environment() -> None:
    """Apply :data:`DEFAULTS` for every variable the user has not set."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)


def process_start_time() -> float:
    """When this process started (``time.time()`` scale), read from ``/proc``; now, elsewhere.
    A stage's MLflow run starts then, so its duration includes the interpreter and imports."""
    try:
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # starttime: field 22, counted after the ")" of the command
        with open("/proc/stat") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
