"""The dashboard app: thin. It owns the store handle, the time window, pause, and navigation between views.

Each view is its own Screen (obsdash/tui/screens/), shown as an app mode so Tab keeps each view's state. The app
polls the hub's watermark every 250 ms in a worker (a socket round trip, well under a millisecond) and tells the
visible screen when it moved; with the spool's 250 ms batches that keeps new telemetry on screen within ~0.6 s (P5).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen

from obsdash.store.queries.window import DEFAULT_WINDOW, WINDOWS, Window, next_window, utc_now, window_named
from obsdash.tui.live import LiveScreen
from obsdash.tui.messages import StoreChanged, WindowChanged
from obsdash.tui.screens import VIEWS
from obsdash.tui.screens.errors import ErrorsScreen
from obsdash.tui.screens.help import HelpScreen
from obsdash.tui.screens.trace import TraceScreen
from obsdash.tui.screens.traces import TracesScreen
from obsdash.tui.widgets.navbar import NavBar

if TYPE_CHECKING:
    from obsdash.datadir import DataDir
    from obsdash.hub.client import Store

POLL_INTERVAL_S = 0.25


class DashboardApp(App[None]):
    """obsdash's terminal dashboard over one store."""

    TITLE = "obsdash"
    CSS_PATH = "dashboard.tcss"
    MODES: ClassVar[dict[str, Any]] = {view.name: view.screen for view in VIEWS}
    DEFAULT_MODE = VIEWS[0].name
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "next_view", "Next view", show=False, priority=True),
        Binding("shift+tab", "previous_view", "Previous view", show=False, priority=True),
        *(Binding(v.key, f"view('{v.name}')", v.title, show=False) for v in VIEWS),
        Binding("w", "next_window", "Window", tooltip="cycle the time window: 5m 15m 1h 6h 24h all"),
        Binding("space", "toggle_pause", "Pause", tooltip="pause or resume live updates"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    window: reactive[Window] = reactive(DEFAULT_WINDOW, init=False)
    """The time window every view shows."""
    paused: reactive[bool] = reactive(False, init=False)
    """When true, new telemetry does not refresh the views (r still does)."""

    def __init__(
        self,
        store: Store,
        window: Window = DEFAULT_WINDOW,
        clock: Callable[[], datetime] = utc_now,
        poll_interval_s: float = POLL_INTERVAL_S,
        budget_per_day: float | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.budget_per_day = budget_per_day
        """LLM spend per day above which the projection turns red and a notification is raised (None: no budget)."""
        self.set_reactive(DashboardApp.window, window)
        self._clock = clock
        self._poll_interval_s = poll_interval_s
        self._mark: tuple[Any, Any] | None = None

    def now(self) -> datetime:
        """The end of the time window (naive UTC)."""
        return self._clock()

    def on_mount(self) -> None:
        """Start watching the store."""
        self.set_interval(self._poll_interval_s, self._poll)

    # -- live updates ------------------------------------------------------------------------------
    def _poll(self) -> None:
        if not self.paused:
            self._read_watermark()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _read_watermark(self) -> None:
        try:
            stats = self.store.stats()
        except Exception:  # a hub hand-over in progress: the next poll retries
            return
        self.call_from_thread(self._watermark_read, (stats.get("pid"), stats.get("watermark")))

    def _watermark_read(self, mark: tuple[Any, Any]) -> None:
        if mark != self._mark:
            self._mark = mark
            if not self.paused:
                self.screen.post_message(StoreChanged())

    def watch_window(self) -> None:
        """A new window: reload what is on screen."""
        self.screen.post_message(WindowChanged())
        self.refresh_status()

    def watch_paused(self, paused: bool) -> None:
        """Resuming catches up at once."""
        if not paused:
            self.screen.post_message(StoreChanged())
        self.refresh_status()

    def refresh_status(self) -> None:
        """Redraw the navigation bar of the screen on top."""
        screen = self.screen
        for bar in screen.query(NavBar):
            bar.show_state(
                [(v.key, v.title, v.short) for v in VIEWS],
                current=self.current_mode,
                window=self.window.label,
                paused=self.paused,
                host=getattr(self.store, "is_host", True),
                load_ms=screen.last_load_ms if isinstance(screen, LiveScreen) else None,
            )

    # -- navigation --------------------------------------------------------------------------------
    def open_trace(self, trace_id: str, span_id: str | None = None) -> None:
        """Show one trace's waterfall on top of the current view (Escape goes back)."""
        self.push_screen(TraceScreen(trace_id, span_id))

    def show_traces(self, text: str) -> None:
        """The Traces view, filtered by `text` (a route, say)."""
        self.action_view("traces")
        screen = self.screen_stack[0]
        if isinstance(screen, TracesScreen):
            screen.set_filter(text)

    def show_error(self, fingerprint: str) -> None:
        """The Errors view, on one group."""
        self.action_view("errors")
        screen = self.screen_stack[0]
        if isinstance(screen, ErrorsScreen):
            screen.select(fingerprint)

    def action_view(self, name: str) -> None:
        """Go to a view by name."""
        self.switch_mode(name)
        self.call_after_refresh(self.refresh_status)

    def _step_view(self, step: int) -> None:
        names = [v.name for v in VIEWS]
        index = names.index(self.current_mode) if self.current_mode in names else 0
        self.action_view(names[(index + step) % len(names)])

    def action_next_view(self) -> None:
        """Tab: the next view."""
        self._step_view(1)

    def action_previous_view(self) -> None:
        """Shift+Tab: the previous view."""
        self._step_view(-1)

    def action_next_window(self) -> None:
        """Cycle the time window."""
        self.window = next_window(self.window)

    def action_set_window(self, label: str) -> None:
        """Pick a time window by its label."""
        self.window = window_named(label)

    def action_toggle_pause(self) -> None:
        """Pause or resume live updates."""
        self.paused = not self.paused

    def action_help(self) -> None:
        """Show every key that works here."""
        self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Ctrl+P: the built-in commands, plus views, windows and pause."""
        yield from super().get_system_commands(screen)
        for view in VIEWS:
            yield SystemCommand(f"Go to {view.title}", view.help, lambda n=view.name: self.action_view(n))
        for window in WINDOWS:
            yield SystemCommand(
                f"Window: {window.label}",
                "show telemetry from this far back",
                lambda label=window.label: self.action_set_window(label),
            )
        yield SystemCommand("Pause / resume live updates", "freeze the screen", self.action_toggle_pause)


def make_app(store: Store, window: str = DEFAULT_WINDOW.label, **kwargs: Any) -> DashboardApp:
    """The dashboard over `store` (used by the CLI and the tests)."""
    return DashboardApp(store, window_named(window), **kwargs)


def run_dashboard(
    data_dir: DataDir, window: str = DEFAULT_WINDOW.label, budget_per_day: float | None = None
) -> int:
    """Open the store (hosting the hub or joining it) and run the dashboard until the user quits."""
    from obsdash.hub.client import open_store

    store = open_store(data_dir, dashboard=True)
    try:
        make_app(store, window, budget_per_day=budget_per_day).run()
    finally:
        store.close()
    return 0
