"""Settings of a wrapped run, read once from the environment that `obsdash wrap` prepared.

Every knob has a default that works; a malformed value falls back to the default instead of failing the app.
"""

from __future__ import annotations

import os
import sys
import time


class Settings:
    """What the in-app side needs to know about this run (a plain class: `dataclasses` costs ~9 ms to import)."""

    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)

    spool_dir: str
    run_id: str
    service_name: str
    root_pid: int
    batch_delay_s: float
    """How long records wait before a segment is written. 0.25 s keeps P5 freshness (≤ 1 s) with room."""
    max_queued_records: int
    """Records held in memory at most; beyond this they are dropped and counted (R3)."""
    exit_timeout_s: float
    """Upper bound on the flush at exit or SIGTERM (R4: ≤ 2 s added)."""
    disabled: frozenset[str]
    strict: bool


def _float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def fallback_service_name(argv: list[str]) -> str:
    """A service name from sys.argv, for runs not started by `obsdash wrap` (which derives a better one from the
    whole command line and passes it as OBSDASH_SERVICE_NAME)."""
    if not argv or argv[0] in ("", "-c"):
        return "python"
    base = os.path.basename(argv[0])
    return base[:-3] if base.endswith(".py") else base


def load() -> Settings | None:
    """The settings of this run, or None when obsdash is not asked to run here."""
    data_dir = os.environ.get("OBSDASH_DIR")
    if not data_dir:
        return None
    service = (
        os.environ.get("OBSDASH_SERVICE_NAME")
        or os.environ.get("OTEL_SERVICE_NAME")
        or fallback_service_name(sys.argv)
    )
    run_id = os.environ.get("OBSDASH_RUN_ID") or time.strftime("%Y%m%d-%H%M%S-") + os.urandom(2).hex()
    disabled = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    return Settings(
        spool_dir=os.path.join(data_dir, "spool"),
        run_id=run_id,
        service_name=service,
        root_pid=_int("OBSDASH_ROOT_PID", os.getpid()),
        batch_delay_s=max(0.01, _float("OBSDASH_BATCH_DELAY_S", 0.25)),
        max_queued_records=max(100, _int("OBSDASH_MAX_QUEUED", 200_000)),
        exit_timeout_s=max(0.1, _float("OBSDASH_EXIT_TIMEOUT_S", 1.5)),
        disabled=frozenset(n.strip() for n in disabled.split(",") if n.strip()),
        strict=os.environ.get("OBSDASH_STRICT") == "1",
    )
