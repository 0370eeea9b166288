"""The waterfall's layout, bars and error jumps, as plain data (obsdash/tui/waterfall.py; no Textual, no store)."""

from __future__ import annotations

from datetime import datetime, timedelta

from obsdash.store.queries.logs import LogLine
from obsdash.store.queries.traces import Span, SpanEvent, Trace
from obsdash.tui.waterfall import BAR_WIDTH, WaterfallRow, bar, layout, next_error, total_ms

T0 = datetime(2026, 11, 24, 12, 0, 0)


def span(
    span_id: str,
    parent: str | None,
    start_ms: float,
    ms: float,
    *,
    status: str = "UNSET",
    kind: str = "INTERNAL",
) -> Span:
    """A span starting `start_ms` after T0 and lasting `ms`."""
    start = T0 + timedelta(milliseconds=start_ms)
    return Span(
        "t" * 32,
        span_id,
        parent,
        f"op-{span_id}",
        kind,
        "svc",
        start,
        start + timedelta(milliseconds=ms),
        ms,
        status,
        None,
        {},
        {},
    )


def trace(*spans: Span, events: list[SpanEvent] | None = None, logs: list[LogLine] | None = None) -> Trace:
    return Trace("t" * 32, list(spans), events or [], logs or [], truncated=False)


def event(span_id: str) -> SpanEvent:
    return SpanEvent(T0, span_id, "exception", {}, "ValueError", "bad", "Traceback ...")


def log(span_id: str | None) -> LogLine:
    return LogLine(T0, "INFO", 9, "hello", "svc", "t" * 32, span_id, {}, "app", None, None, None)


def ids(rows: list[WaterfallRow]) -> list[str]:
    return [r.span.span_id for r in rows]


def test_depth_first_with_children_in_start_order() -> None:
    # given out of order, as a store might return them
    rows = layout(
        trace(
            span("db2", "root", 30, 5, kind="CLIENT"),
            span("http", "fetch", 12, 10, kind="CLIENT"),
            span("root", None, 0, 50, kind="SERVER"),
            span("fetch", "root", 10, 15),
            span("db1", "root", 2, 3, kind="CLIENT"),
            span("remote", "http", 14, 6, kind="SERVER"),
        )
    )
    assert ids(rows) == ["root", "db1", "fetch", "http", "remote", "db2"]
    assert [r.depth for r in rows] == [0, 1, 1, 2, 3, 1]
    assert [r.prefix for r in rows] == ["", "├─", "├─", "│ └─", "│   └─", "└─"]
    assert [r.offset_ms for r in rows] == [0, 2, 10, 12, 14, 30]


def test_same_start_puts_the_longer_span_first() -> None:
    rows = layout(trace(span("root", None, 0, 10), span("short", "root", 1, 1), span("long", "root", 1, 8)))
    assert ids(rows) == ["root", "long", "short"]


def test_orphans_and_several_roots_show_at_depth_zero_in_start_order() -> None:
    rows = layout(
        trace(
            span("late-root", None, 20, 5),
            span("orphan", "not-in-store", 5, 5),  # its parent is in another process or was lost
            span("child", "orphan", 6, 1),
            span("root", None, 0, 30),
        )
    )
    assert ids(rows) == ["root", "orphan", "child", "late-root"]
    assert [r.depth for r in rows] == [0, 0, 1, 0]


def test_parent_cycles_terminate_and_show_no_span_twice() -> None:
    rows = layout(
        trace(
            span("root", None, 0, 10), span("a", "b", 1, 1), span("b", "a", 2, 1), span("self", "self", 3, 1)
        )
    )
    assert ids(rows)[0] == "root"
    assert len(ids(rows)) == len(set(ids(rows)))


def test_marks_errors_events_and_logs_on_their_spans() -> None:
    rows = layout(
        trace(
            span("root", None, 0, 10, status="ERROR"),
            span("ok", "root", 1, 2, status="OK"),
            events=[event("root"), event("root")],
            logs=[log("ok"), log("root"), log(None)],
        )
    )
    assert [(r.is_error, r.events, r.logs) for r in rows] == [(True, 2, 1), (False, 0, 1)]


def test_empty_trace() -> None:
    assert layout(trace()) == []
    assert total_ms([]) == 0.0


def test_total_is_first_start_to_last_end() -> None:
    rows = layout(trace(span("root", None, 0, 10), span("after", "root", 8, 7)))  # ends after its parent
    assert total_ms(rows) == 15


def test_bars_sit_on_the_axis_and_are_never_empty() -> None:
    rows = layout(
        trace(
            span("root", None, 0, 100),
            span("first-half", "root", 0, 50),
            span("tiny", "root", 60, 0.001),
            span("at-end", "root", 99.99, 0.01),
        )
    )
    total = total_ms(rows)
    by_id = {r.span.span_id: bar(r, total) for r in rows}
    assert by_id["root"] == (0, BAR_WIDTH)
    assert by_id["first-half"] == (0, BAR_WIDTH // 2)
    assert by_id["tiny"] == (int(0.6 * BAR_WIDTH), 1)
    assert by_id["at-end"] == (BAR_WIDTH - 1, 1)
    for start, length in by_id.values():
        assert 0 <= start < BAR_WIDTH and length >= 1 and start + length <= BAR_WIDTH


def test_bar_of_a_zero_length_trace_fills_the_axis() -> None:
    rows = layout(trace(span("root", None, 0, 0)))
    assert bar(rows[0], total_ms(rows)) == (0, BAR_WIDTH)
    assert bar(rows[0], 0, width=10) == (0, 10)


def test_bar_width_is_a_parameter() -> None:
    rows = layout(trace(span("root", None, 0, 40), span("late", "root", 30, 10)))
    assert bar(rows[1], total_ms(rows), width=8) == (6, 2)


def test_next_error_steps_both_ways_and_wraps() -> None:
    rows = layout(
        trace(
            span("root", None, 0, 10, status="ERROR"),
            span("a", "root", 1, 1),
            span("b", "root", 2, 1, status="ERROR"),
            span("c", "root", 3, 1),
        )
    )
    assert next_error(rows, 0) == 2
    assert next_error(rows, 2) == 0  # wraps
    assert next_error(rows, 3) == 0
    assert next_error(rows, 1, step=-1) == 0
    assert next_error(rows, 0, step=-1) == 2  # wraps backwards


def test_next_error_with_one_or_no_errors() -> None:
    one = layout(trace(span("root", None, 0, 10), span("bad", "root", 1, 1, status="ERROR")))
    assert next_error(one, 1) == 1  # the only error: stay on it
    assert next_error(one, 0) == 1
    none = layout(trace(span("root", None, 0, 10), span("a", "root", 1, 1, status="OK")))
    assert next_error(none, 0) is None
    assert next_error(none, 1, step=-1) is None
