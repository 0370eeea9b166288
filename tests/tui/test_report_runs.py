"""The Report view (`obsdash report`'s findings, live) and the Runs view (`obsdash diff` of a run with the one
before it), on the fixture store — the Runs test adds a second, slower run of the shop."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from obsdash.hub.client import Store
from obsdash.tui.screens.report import ReportScreen
from obsdash.tui.screens.runs import RunsScreen
from obsdash.tui.screens.trace import TraceScreen
from obsdash.tui.widgets.table import LiveTable
from tests.tui.conftest import column, dashboard, keys, plain, run, view, wait_loaded, wait_until
from tests.tui.store import NOW_NS, RUN_ID, S, fixture_records, write_segment

SLOW_RUN = "20261124-115000-beef"


def detail(screen: Any, selector: str) -> str:
    return plain(screen.query_one(selector, Static).content)


def test_report_lists_findings_worst_first_and_opens_an_example(store: Store) -> None:
    app = dashboard(store, budget_per_day=0.0001)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_loaded(pilot, app.screen)
            screen = await view(pilot, "8")
            assert isinstance(screen, ReportScreen)
            table = screen.query_one("#findings", LiveTable)
            severities = column(table, 0)  # severity, count, where, finding
            assert severities == sorted(severities, key=["error", "warning", "info"].index)
            found = {(f.kind, f.where): f for f in screen.findings.values()}
            crash = found[("unhandled_exception", "/checkout")]
            assert crash.severity == "error" and crash.count == 2 and "ValueError" in crash.title
            assert found[("telemetry_dropped", "obsdash")].count == 3  # the fixture's queue_full drops
            assert found[("llm_spend", "all services")].severity == "error"  # over the tiny budget
            assert ("not_instrumented", "django") in found
            table.focus()
            table.move_cursor(
                row=keys(table).index(next(k for k in keys(table) if k.startswith("unhandled")))
            )
            await pilot.pause()
            assert "ValueError" in detail(screen, "#finding-detail-text")
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, TraceScreen))
            assert app.screen.trace_id in crash.examples

    run(scenario)


def _write_slow_run(store: Store) -> None:
    """The shop again, half an hour later: every /items request ten times slower."""
    records = fixture_records()
    spans = []
    for original in records["spans"]:
        if original["service_name"] != "shop" or original.get("attributes", {}).get("http.route") != "/items":
            continue
        span = dict(original, run_id=SLOW_RUN, trace_id="f" + original["trace_id"][1:])
        span["end_ns"] = span["start_ns"] + (span["end_ns"] - span["start_ns"]) * 10
        spans.append(span)
    assert spans
    start = dict(records["runs"][0], run_id=SLOW_RUN, time_ns=NOW_NS - 600 * S)
    write_segment(store.data_dir.spool, "runs", [start], 901)
    write_segment(store.data_dir.spool, "spans", spans, 902)
    store.sync()


def test_runs_compare_the_highlighted_run_with_the_previous_one(store: Store) -> None:
    _write_slow_run(store)
    app = dashboard(store)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_loaded(pilot, app.screen)
            screen = await view(pilot, "9")
            assert isinstance(screen, RunsScreen)
            table = screen.query_one("#runs", LiveTable)
            assert keys(table) == [SLOW_RUN, RUN_ID]  # newest first
            await wait_until(pilot, lambda: "regression" in detail(screen, "#run-diff-text"))
            shown = detail(screen, "#run-diff-text")
            assert f"A {RUN_ID} → B {SLOW_RUN}" in shown
            items = next(line for line in shown.splitlines() if line.startswith("/items"))
            assert "▲" in items  # ten times slower
            table.focus()
            await pilot.press("down")
            await wait_until(pilot, lambda: "nothing to compare" in detail(screen, "#run-diff-text"))
            await pilot.press("m", "up")  # the older run marked as A: the newer compares against it
            await wait_until(pilot, lambda: f"A {RUN_ID} → B {SLOW_RUN}" in detail(screen, "#run-diff-text"))

    run(scenario)
