"""The one place obsdash's own failures inside the app go.

In-app code never raises into the host: every entry point from the app (hooks, processors, exporters, signal and
exit handlers) catches and calls `internal_error`. The error is counted (and reported in the run's stats); in strict
mode (OBSDASH_STRICT=1, set by the test suite) it is also printed to stderr with a marker the tests look for, so a
swallowed error cannot hide.

Fault injection (R2): OBSDASH_FAULTS=point,point makes `fault(point)` raise at that point, so the test suite can
prove a failure there never reaches the app. Off, it costs one truth test of an empty set.
"""

from __future__ import annotations

import os
import sys

STRICT_MARKER = "obsdash-internal-error"
internal_errors: dict[str, int] = {}
_FAULTS = frozenset(filter(None, os.environ.get("OBSDASH_FAULTS", "").split(",")))


class InjectedFault(RuntimeError):
    """The failure `fault()` raises on request of the test suite."""


def fault(point: str) -> None:
    """Raise InjectedFault when OBSDASH_FAULTS names `point` (e.g. "scrubber", "exporter", "pricing")."""
    if _FAULTS and point in _FAULTS:
        raise InjectedFault(f"fault injected at {point}")


def internal_error(where: str, exc: BaseException) -> None:
    """Record that obsdash failed at `where`; never raises."""
    try:
        internal_errors[where] = internal_errors.get(where, 0) + 1
        if os.environ.get("OBSDASH_STRICT") == "1":
            import traceback

            detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            sys.__stderr__.write(f"{STRICT_MARKER}: {where}: {detail}\n") if sys.__stderr__ else None
    except BaseException:
        pass
