"""Runs: every `obsdash wrap` with its requests, errors, latency and LLM cost; and `obsdash diff` of two of them.

The highlighted run is compared with the run before it — or with the run marked with `m` — route by route below,
regressions ▲ in red and improvements ▼ in green, as `obsdash diff` prints them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from obsdash.diff import change_cell, regressions, route_changes
from obsdash.output import printable
from obsdash.store.queries.runs import Run, RunComparison, compare_runs, list_runs
from obsdash.store.queries.window import Window
from obsdash.tui import format as fmt
from obsdash.tui.live import LiveScreen
from obsdash.tui.widgets.navbar import NavBar
from obsdash.tui.widgets.table import LiveTable

if TYPE_CHECKING:
    from obsdash.hub.client import Store

MAX_RUNS = 50


class RunsScreen(LiveScreen):
    """Runs, newest first; below, the highlighted run against the previous one (or the marked one)."""

    AUTO_FOCUS = "#runs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "mark", "Mark as A", tooltip="compare other runs against this one"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Run] = []
        self.marked: str | None = None

    def compose(self) -> ComposeResult:
        """The runs, then the comparison."""
        yield NavBar(id="nav")
        yield LiveTable(["run", "started", "service", "req", "err%", "p95 ms", "llm $", "exit"], id="runs")
        with VerticalScroll(id="run-diff"):
            yield Static(id="run-diff-text")
        yield Footer()

    def load(self, store: Store, window: Window, now: datetime) -> list[Run]:
        """The newest runs with their figures (runs are few: not bounded by the window)."""
        return list_runs(store, MAX_RUNS)

    def show(self, data: list[Run]) -> None:
        """Fill the table and compare the highlighted run."""
        self.runs = data
        table = self.query_one("#runs", LiveTable)
        table.replace_rows((run.run_id, self._row(run)) for run in data)
        self._compare(table.selected_key())

    def _row(self, run: Run) -> tuple[object, ...]:
        f = run.figures
        name = Text(run.run_id, style="reverse" if run.run_id == self.marked else "")
        return (
            name,
            fmt.local_time(run.started, True) if run.started else "-",
            run.service,
            str(f.requests),
            f"{f.error_rate:.1%}",
            "-" if f.p95_ms is None else f"{f.p95_ms:.0f}",
            fmt.money(f.cost_usd) if f.llm_calls else "-",
            "running" if run.ended is None else str(run.exit_code),
        )

    def action_mark(self) -> None:
        """Mark the highlighted run as A (again: unmark)."""
        key = self.query_one("#runs", LiveTable).selected_key()
        self.marked = None if key == self.marked else key
        self.request_refresh()

    def on_data_table_row_highlighted(self, event: LiveTable.RowHighlighted) -> None:
        """Compare the highlighted run."""
        self._compare(str(event.row_key.value))

    def _baseline(self, run_id: str) -> Run | None:
        ids = [r.run_id for r in self.runs]
        if self.marked and self.marked != run_id and self.marked in ids:
            return self.runs[ids.index(self.marked)]
        index = ids.index(run_id)
        return self.runs[index + 1] if index + 1 < len(self.runs) else None

    def _compare(self, run_id: str | None) -> None:
        ids = [r.run_id for r in self.runs]
        if run_id not in ids:
            self.query_one("#run-diff-text", Static).update("no runs yet: start the app under `obsdash wrap`")
            return
        baseline = self._baseline(run_id)
        if baseline is None:
            self.query_one("#run-diff-text", Static).update("the first run: nothing to compare it with")
            return
        self._load_comparison(baseline, self.runs[ids.index(run_id)])

    def _load_comparison(self, a: Run, b: Run) -> None:
        self.run_worker(
            lambda: compare_runs(self.dashboard.store, a, b), thread=True, group="diff", exclusive=True
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Show a finished comparison."""
        result = event.worker.result
        if (
            event.state is WorkerState.SUCCESS
            and event.worker.group == "diff"
            and isinstance(result, RunComparison)
        ):
            self.query_one("#run-diff-text", Static).update(_comparison(result))


def _comparison(found: RunComparison) -> Table:
    table = Table(box=None, pad_edge=False, title_justify="left", expand=True)
    # stored text is shown as text, never read as Rich markup (a route named `[/]`, R7)
    table.title = Text(printable(f"A {found.a.run_id} → B {found.b.run_id}"))
    for header in ("route", "req", "err%", "p50 ms", "p95 ms", "tok/call", "$/call"):
        table.add_column(header, justify="left" if header == "route" else "right", no_wrap=True)
    for row in found.routes:
        table.add_row(Text(printable(row.route)), *(change_cell(change) for change in route_changes(row)))
    worse = regressions(found)
    table.caption = f"{len(worse)} regression{'s' if len(worse) != 1 else ''}" if worse else "no regression"
    return table
