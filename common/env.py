"""Process-wide environment defaults for stage entry points.

Called from each entry point's ``main()`` (never at import time) so that importing ``common`` has
no side effects. Values already set by the user win.
"""

from __future__ import annotations

import os

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
}


def configure_environment() -> None:
    """Apply :data:`DEFAULTS` for every variable the user has not set."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
