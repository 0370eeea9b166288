"""One trace looked up by id alone and near a known time (`get_trace(..., near=...)`), over the fixture store
ingested by the real hub: the same spans, events and logs either way, the fallback when `near` is wrong, and the
waterfall's live refresh looking near the trace once its root is stored.

spans has no index on trace_id, so the bounded lookup is what keeps a refresh from reading the whole table; these
tests check only that it finds what the unbounded one finds (speed is measured in bench/dashboard.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from textual.pilot import Pilot

from obsdash.hub.client import Store
from obsdash.store.queries.traces import NEAR_MARGIN, _trace_spans, get_trace
from obsdash.tui.screens.trace import TraceScreen
from obsdash.tui.widgets.table import LiveTable
from tests.tui.conftest import dashboard, press_and_reload, run, wait_loaded, wait_until
from tests.tui.store import NOW_NS, SCHEDULE, S, request_records, span_id, trace_id, write_segment

CHECKOUT_FAIL = 5  # a /checkout that failed: exception events and an ERROR log on its spans (SCHEDULE index)
WEATHER = 7  # /weather: crosses two services: the shop's root and the stand-in's, whose parent is remote


def test_near_finds_what_the_whole_table_holds(store: Store) -> None:
    assert SCHEDULE[CHECKOUT_FAIL][0] == "checkout_fail" and SCHEDULE[WEATHER][0] == "weather"
    ids = [str(r[0]) for r in store.query("SELECT DISTINCT trace_id FROM spans ORDER BY 1").rows]
    assert len(ids) == 13  # 12 requests and the cleanup job
    with_events = with_logs = 0
    for tid in ids:
        whole = get_trace(store, tid)
        assert whole is not None and whole.spans and whole.rooted
        near = whole.time_range()
        assert near is not None
        assert near == (min(s.start_time for s in whole.spans), max(s.end_time for s in whole.spans))
        assert get_trace(store, tid, near) == whole
        with_events += bool(whole.events)
        with_logs += bool(whole.logs)
    assert with_events >= 2 and with_logs >= 2  # the comparison covered events and logs, not only spans
    weather = get_trace(store, trace_id(WEATHER))
    assert weather is not None and {s.service for s in weather.spans} == {"shop", "upstream"}


def test_a_wrong_near_falls_back_to_the_whole_table(store: Store) -> None:
    tid = trace_id(CHECKOUT_FAIL)
    whole = get_trace(store, tid)
    assert whole is not None and whole.events and whole.logs
    first, last = whole.time_range() or (None, None)
    assert first is not None and last is not None
    # within the margin the bounded lookup alone finds the spans; past it, it finds none ...
    inside = (first + NEAR_MARGIN - timedelta(seconds=1), last + NEAR_MARGIN - timedelta(seconds=1))
    assert len(_trace_spans(store, tid, inside)) == len(whole.spans)
    for wrong in ((first - timedelta(days=1), last - timedelta(days=1)), (last + timedelta(hours=1),) * 2):
        assert _trace_spans(store, tid, wrong) == []
        # ... and get_trace looks in the whole table then
        assert get_trace(store, tid, wrong) == whole
    assert get_trace(store, "0" * 32, (first, last)) is None


def test_a_trace_without_its_root_is_looked_up_whole(store: Store) -> None:
    n = 50
    spans, _ = request_records(n, "items", NOW_NS - 30 * S)
    children = [s for s in spans if s["parent_span_id"]]
    write_segment(store.data_dir.spool, "spans", children, 500)
    store.sync()
    partial = get_trace(store, trace_id(n))
    assert partial is not None and not partial.rooted and partial.time_range() is None
    # the root arrives, having started long before the span seen: a lookup near that span would miss it
    late_root = next(s for s in spans if not s["parent_span_id"])
    late_root["start_ns"] -= 2 * int(NEAR_MARGIN.total_seconds()) * S
    write_segment(store.data_dir.spool, "spans", [late_root], 501)
    store.sync()
    whole = get_trace(store, trace_id(n), partial.time_range())
    assert whole is not None and whole.rooted and len(whole.spans) == len(spans)


async def _open(pilot: Pilot[Any], tid: str) -> TraceScreen:
    pilot.app.push_screen(TraceScreen(tid))
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, TraceScreen))
    screen = await wait_loaded(pilot, pilot.app.screen)
    assert isinstance(screen, TraceScreen)
    return screen


def test_the_waterfall_refreshes_near_the_trace(store: Store) -> None:
    app = dashboard(store)
    tid = trace_id(CHECKOUT_FAIL)

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(pilot, tid)
            assert screen.trace is not None
            first_near = screen.trace.time_range()
            assert first_near is not None and screen.near == first_near
            before = len(screen.rows)
            # a span of the same trace arrives later, ending after everything seen: a refresh near the trace
            # finds it, and the range moves with it
            late = request_records(CHECKOUT_FAIL, "items", 0)[0][1]  # a sqlite span, moved below
            server = next(s for s in screen.trace.spans if s.parent_span_id is None)
            late.update(
                span_id=span_id(CHECKOUT_FAIL, "late"),
                parent_span_id=server.span_id,
                start_ns=_ns(server.end_time) + 2 * S,
                end_ns=_ns(server.end_time) + 3 * S,
            )
            write_segment(store.data_dir.spool, "spans", [late], 600)
            store.sync()
            await press_and_reload(pilot, "r")
            assert len(screen.rows) == before + 1
            assert span_id(CHECKOUT_FAIL, "late") in {r.span.span_id for r in screen.rows}
            assert screen.near is not None and screen.near[1] > first_near[1]
            assert screen.query_one("#waterfall", LiveTable).row_count == before + 1

    run(scenario)


def test_the_waterfall_of_a_live_trace_waits_for_its_root(store: Store) -> None:
    app = dashboard(store)
    n = 60
    spans, _ = request_records(n, "items", NOW_NS - 20 * S)
    root_span = next(s for s in spans if not s["parent_span_id"])
    write_segment(store.data_dir.spool, "spans", [s for s in spans if s is not root_span], 700)
    store.sync()

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(pilot, trace_id(n))
            assert len(screen.rows) == len(spans) - 1 and screen.near is None
            root_span["start_ns"] -= 2 * int(NEAR_MARGIN.total_seconds()) * S
            write_segment(store.data_dir.spool, "spans", [root_span], 701)
            store.sync()
            await press_and_reload(pilot, "r")
            assert len(screen.rows) == len(spans) and screen.near is not None
            assert screen.rows[0].span.span_id == span_id(n, "server")

    run(scenario)


def _ns(moment: datetime) -> int:
    """Nanoseconds since the epoch of a naive UTC datetime (as the store returns times)."""
    return (moment - datetime(1970, 1, 1)) // timedelta(microseconds=1) * 1000
