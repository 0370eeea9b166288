"""SQL: any read-only query over the store, with a results table (same rules as `obsdash query`).

At most 500 rows are shown (a DataTable of 10k rows takes over a second to render); `obsdash query` has no
such cap for exports.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Input, Static

from obsdash.output import printable
from obsdash.store.queries.window import Window
from obsdash.store.results import QueryResult
from obsdash.tui.live import LiveScreen
from obsdash.tui.widgets.navbar import NavBar

if TYPE_CHECKING:
    from obsdash.hub.client import Store

MAX_ROWS = 500
EXAMPLE = "SELECT http_route, count(*) AS n, quantile_cont(duration_ms, 0.95) AS p95 FROM spans GROUP BY 1"


class SqlScreen(LiveScreen):
    """A prompt and its results; queries run only when asked (Enter), never on live updates."""

    AUTO_FOCUS = "#sql-input"
    AUTO_REFRESH = False  # neither live updates nor the window rerun a user's query (SQL says its own WHERE)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "results", "Results", tooltip="leave the prompt: scroll the results, use the keys"),
        Binding("slash", "prompt", "Edit SQL", key_display="/"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sql = ""
        self.ran_sql = ""

    def compose(self) -> ComposeResult:
        """Prompt, status, results."""
        yield NavBar(id="nav")
        yield Input(placeholder=f"SQL, Enter runs, Esc leaves — e.g. {EXAMPLE}", id="sql-input")
        yield Static(
            "tables: spans, span_events, logs, metric_points, run_events; views: errors, runs",
            id="sql-status",
        )
        yield DataTable(id="sql-results", zebra_stripes=True)
        yield Footer()

    def on_screen_resume(self) -> None:
        """Coming into view: type straight into the prompt (no automatic query)."""
        self.query_one("#sql-input", Input).focus()

    def action_results(self) -> None:
        """Esc: move to the results, so the view's and the app's keys work again."""
        self.query_one("#sql-results", DataTable).focus()

    def action_prompt(self) -> None:
        """`/`: back to the prompt."""
        self.query_one("#sql-input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter: run the query in a worker."""
        self.sql = event.value.strip()
        if self.sql:
            self.query_one("#sql-status", Static).update(Text("running…", style="dim"))
            self.request_refresh()

    def load(self, store: Store, window: Window, now: datetime) -> tuple[str, QueryResult | None]:
        """Run the prompt's SQL (read-only; refused statements raise a clear error)."""
        if not self.sql:
            return "", None
        return self.sql, store.query(self.sql, max_rows=MAX_ROWS)

    def show(self, data: tuple[str, QueryResult | None]) -> None:
        """Show the result and how many rows it had."""
        sql, result = data
        if result is None:
            return
        self.ran_sql = sql
        table = self.query_one("#sql-results", DataTable)
        table.clear(columns=True)
        table.add_columns(*(Text(c) for c in result.columns))  # Text: a str is read as markup (R7 fuzzing)
        for row in result.rows:
            table.add_row(*(_cell(v) for v in row))
        note = f"{len(result.rows)} rows" + (
            f" (first {MAX_ROWS}; use `obsdash query` for all)" if result.truncated else ""
        )
        self.query_one("#sql-status", Static).update(f"{note} · {self.last_load_ms or 0:.0f} ms")

    def _loaded(self, data: Any, error: str | None, elapsed_ms: float) -> None:
        if error is not None:
            self.query_one("#sql-status", Static).update(Text(error, style="bold red"))
        super()._loaded(data, error, elapsed_ms)


def _cell(value: Any) -> Any:
    if value is None:
        return Text("NULL", style="dim")
    text = str(value)
    # Text, not markup (a value `[/]` crashed the table); control characters escaped (R7 fuzzing)
    return Text(printable(text if len(text) <= 120 else text[:119] + "…"))
