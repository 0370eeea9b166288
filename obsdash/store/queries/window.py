"""Time windows: every dashboard query shows "the last N minutes", never the whole store.

Times in the store are naive UTC; `now` is passed in (not read inside queries) so tests and benchmarks can pin it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1)
SERIES_BUCKETS = 60
"""Points per chart: a sparkline 60 cells wide fits an 80-column terminal with its labels."""


@dataclass(frozen=True)
class Window:
    """A span of time ending now: `seconds` long, or everything when `seconds` is None."""

    label: str
    seconds: float | None

    def start(self, now: datetime) -> datetime:
        """The first instant inside the window."""
        return EPOCH if self.seconds is None else now - timedelta(seconds=self.seconds)


WINDOWS: tuple[Window, ...] = (
    Window("5m", 300),
    Window("15m", 900),
    Window("1h", 3600),
    Window("6h", 6 * 3600),
    Window("24h", 24 * 3600),
    Window("all", None),
)
DEFAULT_WINDOW = WINDOWS[2]


def window_named(label: str) -> Window:
    """The window called `label` (5m, 15m, 1h, 6h, 24h, all)."""
    for window in WINDOWS:
        if window.label == label:
            return window
    raise ValueError(f"unknown window {label!r}; choose one of {', '.join(w.label for w in WINDOWS)}")


def next_window(window: Window) -> Window:
    """The next wider window, wrapping from `all` back to the narrowest."""
    return WINDOWS[(WINDOWS.index(window) + 1) % len(WINDOWS)]


def utc_now() -> datetime:
    """Now, as the store writes times: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Buckets:
    """A window cut into equal buckets for charts: bucket i covers [start + i*width, start + (i+1)*width)."""

    start: datetime
    width_s: float
    count: int = SERIES_BUCKETS

    @classmethod
    def covering(cls, start: datetime, now: datetime, count: int = SERIES_BUCKETS) -> Buckets:
        """`count` buckets from `start` to `now` (at least a millisecond each)."""
        width = max((now - start).total_seconds() / count, 0.001)
        return cls(start, width, count)

    def sql_index(self, column: str) -> str:
        """SQL for the bucket index of a TIMESTAMP column (a constant expression, no parameters)."""
        # microseconds, exactly: `epoch_ms` rounds to the nearest ms, so a span in a bucket's last 0.5 ms was counted
        # in the next one (and not where the rollup's date_trunc put it; tests/test_rollup.py saw it once in 40)
        start_us = (self.start - EPOCH) // timedelta(microseconds=1)
        return f"CAST(floor((epoch_us({column}) - {start_us}) / {self.width_s * 1_000_000!r}) AS BIGINT)"

    def spread(self, values: dict[int, float]) -> list[float]:
        """One value per bucket, 0 where the query returned none."""
        return [float(values.get(i, 0.0)) for i in range(self.count)]
