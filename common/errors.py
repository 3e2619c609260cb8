"""The one base class of "bad input" errors.

A stage that meets bad params, missing or corrupt data, an unreadable checkpoint or model file, or
a missing toolchain raises a subclass of :class:`InputError` whose message names the file and the
fix; the stage harness (:mod:`common.stage`) prints that message as one line and exits with code
2, never a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class InputError(Exception):
    """Something the user can fix (the message says what and how)."""
