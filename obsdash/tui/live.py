"""The base of every dashboard screen: load in a worker thread, render on the UI thread, coalesce refreshes.

A screen says what to load (`load`, run in a thread with the store) and how to show it (`show`, on the UI thread).
While a load runs, further refresh requests only mark the screen stale, and one more load runs when it ends: a
burst of ingests costs at most two loads, and the UI thread never waits on the store.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.binding import Binding, BindingType
from textual.screen import Screen

from obsdash.errors import ObsdashError
from obsdash.store.queries.window import Window
from obsdash.tui.messages import StoreChanged, WindowChanged

if TYPE_CHECKING:
    from obsdash.hub.client import Store
    from obsdash.tui.app import DashboardApp


class LiveScreen(Screen[None]):
    """A view of the store that refreshes when the store or the time window changes."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "reload", "Refresh", show=False)]
    AUTO_REFRESH: ClassVar[bool] = True
    """Reload on coming into view, on new telemetry and on a new window; False: only when asked (SQL)."""

    def __init__(self) -> None:
        super().__init__()
        self._loading = False
        self._stale = False
        self.last_load_ms: float | None = None
        """How long the last load took (shown in the status bar)."""
        self.loads = 0
        """Completed loads (tests wait on it)."""

    @property
    def dashboard(self) -> DashboardApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    # -- what each screen provides -----------------------------------------------------------------
    def load(self, store: Store, window: Window, now: datetime) -> Any:
        """Fetch this screen's data (runs in a worker thread; must not touch widgets)."""
        raise NotImplementedError

    def show(self, data: Any) -> None:
        """Render what `load` returned (runs on the UI thread)."""
        raise NotImplementedError

    # -- refresh machinery -------------------------------------------------------------------------
    def request_refresh(self) -> None:
        """Load again now, or right after the load in flight."""
        if self._loading:
            self._stale = True
            return
        self._loading = True
        self._stale = False
        self._load_in_thread(self.dashboard.window, self.dashboard.now())

    @work(thread=True, group="load", exit_on_error=False)
    def _load_in_thread(self, window: Window, now: datetime) -> None:
        started = time.perf_counter()
        try:
            data, error = self.load(self.dashboard.store, window, now), None
        except ObsdashError as exc:
            data, error = None, exc.one_line()
        except Exception as exc:  # a bug must not kill the dashboard: show it and keep going
            data, error = None, f"{type(exc).__name__}: {exc}"
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.app.call_from_thread(self._loaded, data, error, elapsed_ms)

    def _loaded(self, data: Any, error: str | None, elapsed_ms: float) -> None:
        self._loading = False
        self.last_load_ms = elapsed_ms
        if error is not None:
            # markup=False: the message may quote stored values or the user's SQL, `[/]` and all
            self.notify(error, title="query failed", severity="error", timeout=6, markup=False)
        else:
            try:
                self.show(data)
            except (
                Exception
            ) as exc:  # as for load: say so and keep refreshing (R7 fuzzing: a duplicate row key
                # raised here, inside call_from_thread, and the view silently never refreshed again)
                self.notify(
                    f"{type(exc).__name__}: {exc}",
                    title="display failed",
                    severity="error",
                    timeout=6,
                    markup=False,
                )
        self.loads += 1
        self.dashboard.refresh_status()
        if self._stale:
            self.request_refresh()

    # A flag, not overriding handlers: Textual runs the handler of every class along the MRO, so a subclass
    # cannot silence these by redefining them (and prevent_default would also skip Screen's own resume work).
    def on_screen_resume(self) -> None:
        """Coming into view: bring it up to date."""
        if self.AUTO_REFRESH:
            self.request_refresh()

    def on_store_changed(self, _: StoreChanged) -> None:
        """New telemetry was ingested."""
        if self.AUTO_REFRESH:
            self.request_refresh()

    def on_window_changed(self, _: WindowChanged) -> None:
        """Another time window was picked."""
        if self.AUTO_REFRESH:
            self.request_refresh()

    def action_reload(self) -> None:
        """Refresh by hand (also works while paused)."""
        self.request_refresh()
