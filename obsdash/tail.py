"""`obsdash tail`: print the window's log lines (or errors, repeats collapsed), then, with --follow, new ones.

For an on-call engineer in a terminal over ssh, or at the end of a pipe: one record per line, never wrapped, colour
only on a TTY, newest last. Times are local wall-clock time, as in the dashboard (the store and `obsdash query`
keep UTC); each line ends with the record's
full 32-hex trace id, ready for `obsdash query "... WHERE trace_id = '...'"`. With `--budget-per-day`, a line marked
BUDGET says when the LLM spend projected from the window crosses it (once per crossing).

Following: records are ingested slightly out of time order (each process flushes every 250 ms), so each poll
re-reads from a time cursor minus MARGIN and drops what was already printed (`Seen`); logs, being append-only, are
re-read only when a count over that range changed. Polls are skipped while the hub's watermark stands still.

It must never: print a record twice or skip one that arrived within MARGIN of its time; contain SQL (that is
`obsdash/store/queries/tail.py`); ask the hub to sync after the start; end with a traceback (Ctrl-C and a closed
pipe exit 0 quietly).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from rich.console import Console
from rich.text import Text

from obsdash.datadir import resolve
from obsdash.hub.client import Store, open_store
from obsdash.store.queries import tail as q
from obsdash.store.queries.llm import BurnRate, SpendGroup, spend_summary
from obsdash.store.queries.logs import LogLine
from obsdash.store.queries.window import utc_now, window_named
from obsdash.tui.format import money, span

FIRST_LINES = 200
FIRST_ERRORS = 5000
"""Errors read for the first print; grouped by fingerprint, so usually a handful of lines."""
MAX_GROUPS = 200
PAGE_ROWS = 2000
POLL_S = 0.3
MARGIN = timedelta(seconds=5)
ONE_US = timedelta(microseconds=1)
MESSAGE_CHARS = 100
# Control characters would move the cursor or clear the screen of whoever reads the log: show them escaped.
_ESCAPES = {i: f"\\x{i:02x}" for i in (*range(32), 127)} | {10: "\\n", 9: " ", 13: ""}


class Timed(Protocol):
    """A record with a time (LogLine, ErrorEvent)."""

    @property
    def time(self) -> datetime: ...


R = TypeVar("R", bound=Timed)


@dataclass(frozen=True)
class Feed(Generic[R]):
    """One kind of record, with the store queries `Seen` needs (service filter already applied)."""

    newest: Callable[[datetime, int], list[R]]
    between: Callable[[datetime, datetime], list[R]]
    after: Callable[[datetime, int], list[R]]
    key: Callable[[R], Hashable]
    count: Callable[[datetime, datetime], int] | None
    """None when rows can change (the `errors` view picks its best row anew): then always re-read the range."""
    first_limit: int


def log_feed(store: Store, service: str | None) -> Feed[LogLine]:
    """Log lines of `service` (or every service)."""
    return Feed(
        partial(q.newest_logs, store, service=service),
        partial(q.logs_between, store, service=service),
        partial(q.logs_after, store, service=service),
        q.log_key,
        partial(q.count_logs, store, service=service),
        FIRST_LINES,
    )


def error_feed(store: Store, service: str | None) -> Feed[q.ErrorEvent]:
    """Exceptions of `service` (or every service)."""
    return Feed(
        partial(q.newest_errors, store, service=service),
        partial(q.errors_between, store, service=service),
        partial(q.errors_after, store, service=service),
        q.error_key,
        None,
        FIRST_ERRORS,
    )


class Seen(Generic[R]):
    """What has been printed: a time cursor, and the keys printed at or after `low` (a multiset: two identical
    log lines are two records). Nothing below `floor` is ever looked at."""

    def __init__(self, key: Callable[[R], Hashable], floor: datetime) -> None:
        self.key, self.floor, self.cursor = key, floor, floor
        self._counts: Counter[Hashable] = Counter()
        self._times: dict[Hashable, datetime] = {}

    @property
    def low(self) -> datetime:
        """Where the next poll re-reads from."""
        return max(self.floor, self.cursor - MARGIN)

    def held(self) -> int:
        """How many printed records lie in [low, cursor]."""
        return sum(self._counts.values())

    def take(self, records: Sequence[R]) -> list[R]:
        """The records not printed yet (in order); remembers them and moves the cursor."""
        budget, new = Counter(self._counts), []
        for record in records:
            key = self.key(record)
            self._times[key] = max(record.time, self._times.get(key, record.time))
            if budget[key] > 0:
                budget[key] -= 1
            else:
                new.append(record)
                self._counts[key] += 1
        self.cursor = max([self.cursor, *(r.time for r in records)])
        for key in [k for k, t in self._times.items() if t < self.low]:
            del self._times[key], self._counts[key]
        return new


def first_batch(feed: Feed[R], since: datetime) -> tuple[list[R], Seen[R]]:
    """The newest records since `since`, and a `Seen` that will follow on from them."""
    rows = feed.newest(since, feed.first_limit)
    cut = len(rows) >= feed.first_limit  # older records were left out on purpose: never print them late
    seen = Seen(feed.key, rows[0].time + ONE_US if cut else since)
    seen.take(rows)
    return rows, seen


def poll(feed: Feed[R], seen: Seen[R]) -> tuple[list[R], bool]:
    """Records that arrived since the last poll, and whether a full page says there are more right now."""
    low, cursor = seen.low, seen.cursor
    settled = feed.count is not None and feed.count(low, cursor) == seen.held()
    late = [] if settled else feed.between(low, cursor)
    fresh = feed.after(cursor, PAGE_ROWS)
    return seen.take(late + fresh), len(fresh) >= PAGE_ROWS


def _mark(store: Store) -> tuple[Any, Any]:
    stats = store.stats()
    return stats.get("pid"), stats.get("watermark")


def follow(
    store: Store,
    feed: Feed[R],
    seen: Seen[R],
    show: Callable[[list[R]], None],
    mark: Any,
    *,
    after: Callable[[], None] | None = None,
) -> None:
    """Print new records until interrupted; query only when the hub stored something since `mark` (then run
    `after`, the budget check)."""
    more = False
    while True:
        now = _mark(store)
        if more or now != mark:
            mark = now
            batch, more = poll(feed, seen)
            show(batch)
            if after is not None:
                after()
        if not more:
            time.sleep(POLL_S)


class BudgetWatch:
    """`--budget-per-day`: one marked line each time the LLM spend projected from the window crosses the budget
    (again only after it fell back under)."""

    def __init__(
        self, budget_per_day: float, spend: Callable[[], tuple[SpendGroup, BurnRate]], console: Console
    ) -> None:
        self.budget = budget_per_day
        self.spend = spend
        self.console = console
        self.over = False

    def __call__(self) -> None:
        totals, burn = self.spend()
        over = burn.over(self.budget)
        if over and not self.over:
            self.console.print(self.line(totals, burn))
        self.over = over

    def line(self, totals: SpendGroup, burn: BurnRate) -> Text:
        """`time  BUDGET  LLM spend heading for $X/day, over the budget of $Y/day: $Z in N calls over 12m`."""
        text = Text(f"{_clock(utc_now())}  ")
        text.append(" BUDGET ", "bold white on red")
        text.append(
            f"  LLM spend heading for {money(burn.per_day_usd)}/day ({money(burn.per_month_usd)}/month), over "
            f"the budget of {money(self.budget)}/day: {money(totals.cost_usd)} in {totals.calls} calls over the "
            f"last {span(burn.seconds)}",
            "bold red",
        )
        if totals.unpriced:
            text.append(f" (+{totals.unpriced} unpriced)", "yellow")
        return text


def _flat(value: str) -> str:
    return value.translate(_ESCAPES)


def _clock(moment: datetime) -> str:
    local = moment.replace(tzinfo=UTC).astimezone()
    shown = local.strftime("%H:%M:%S.%f")[:-3]
    return shown if local.date() == datetime.now().astimezone().date() else f"{local:%Y-%m-%d} {shown}"


def _level_style(severity: int) -> str:
    return (
        "bold red" if severity >= 17 else "yellow" if severity >= 13 else "green" if severity >= 9 else "dim"
    )


def log_text(line: LogLine) -> Text:
    """`time  LEVEL  service  logger: body  [Type: message]  trace <id>` as one line."""
    text = Text(f"{_clock(line.time)}  ")
    # every stored field flattened, not just the body: a level of `ESC [2J` cleared the screen (R7 fuzzing)
    text.append(f"{_flat(line.severity_text) or '-':<5}", _level_style(line.severity_number))
    text.append(f"  {_flat(line.service)}  ", "blue")
    text.append(f"{_flat(line.logger)}: " if line.logger else "", "dim")
    text.append(_flat(line.body))
    if line.exception_type:
        text.append(f"  {_flat(line.exception_type)}: {_flat(line.exception_message or '')}", "red")
    if line.trace_id:
        text.append(f"  trace {line.trace_id}", "dim")
    return text


class ErrorPrinter:
    """Prints a batch of exceptions as one line per fingerprint, counting repeats across batches."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.totals: Counter[str] = Counter()

    def __call__(self, events: list[q.ErrorEvent]) -> None:
        groups: dict[str, list[q.ErrorEvent]] = {}
        for event in events:
            groups.setdefault(event.fingerprint or event.exception_type, []).append(event)
        ordered = sorted(groups.items(), key=lambda item: max(e.time for e in item[1]))[-MAX_GROUPS:]
        for fingerprint, group in ordered:
            self.console.print(self.line(fingerprint, group))

    def line(self, fingerprint: str, group: list[q.ErrorEvent]) -> Text:
        """`time  service  Type ×n [more (t total)]  location  route  "message"  trace <latest id>`."""
        latest, repeat = max(group, key=lambda e: e.time), fingerprint in self.totals
        self.totals[fingerprint] += len(group)
        services = _flat(",".join(sorted({e.service for e in group})))
        text = Text(f"{_clock(latest.time)}  {services}  ")
        text.append(_flat(latest.exception_type), "bold red")
        count = f" ×{len(group)} more ({self.totals[fingerprint]} total)" if repeat else f" ×{len(group)}"
        text.append(count, "yellow")
        text.append(f"  {_flat(latest.location or '?')}", "cyan")
        text.append(f"  {_flat(latest.route)}" if latest.route else "", "magenta")
        message = _flat(latest.message)
        text.append(f'  "{message[:MESSAGE_CHARS]}{"…" if len(message) > MESSAGE_CHARS else ""}"')
        text.append(f"  trace {latest.trace_id}" if latest.trace_id else "  (no trace)", "dim")
        return text


class _Console(Console):
    """Rich's console, except that a reader going away (`| head`) is not an error: Rich exits 1 there."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def _note_unknown_service(store: Store, service: str) -> None:
    known = q.known_services(store)
    if service not in known:
        listed = ", ".join(known) or "none"
        sys.stderr.write(f"obsdash: no service named {service!r} has been seen yet (known: {listed})\n")


def _tail(args: argparse.Namespace) -> int:
    store = open_store(resolve(args.data_dir))
    store.sync()  # so a run that just finished is all there; after this the hub's watcher keeps up
    console = _Console(soft_wrap=True, highlight=False, markup=False, emoji=False)
    if args.errors:
        return _run(store, error_feed(store, args.service), ErrorPrinter(console), args)
    return _run(store, log_feed(store, args.service), partial(_print_all, console), args)


def _run(store: Store, feed: Feed[R], show: Callable[[list[R]], None], args: argparse.Namespace) -> int:
    mark = _mark(store)  # taken before the first read: whatever lands after it makes the first poll run
    rows, seen = first_batch(feed, window_named(args.window).start(utc_now()))
    show(rows)
    budget = _budget_watch(store, args)
    if budget is not None:
        budget()
    if args.errors and len(rows) >= FIRST_ERRORS:
        sys.stderr.write(
            f"obsdash: counts cover the newest {FIRST_ERRORS} errors only (try a shorter --window)\n"
        )
    if args.service and not rows:
        _note_unknown_service(store, args.service)
    if args.follow:
        follow(store, feed, seen, show, mark, after=budget)
    return 0


def _budget_watch(store: Store, args: argparse.Namespace) -> BudgetWatch | None:
    budget = getattr(args, "budget_per_day", None)
    if budget is None:
        return None
    window = window_named(args.window)
    console = _Console(soft_wrap=True, highlight=False, markup=False, emoji=False)
    return BudgetWatch(budget, lambda: spend_summary(store, window, utc_now()), console)


def _print_all(console: Console, lines: list[LogLine]) -> None:
    for line in lines:
        console.print(log_text(line))


def run_tail(args: argparse.Namespace) -> int:
    """`obsdash tail [--errors] [--follow] [--service S] [--window W] [--budget-per-day USD]`: 0 after the first
    print, or, with --follow, on Ctrl-C; 0 too when the reader of stdout goes away. Store errors propagate as
    ObsdashError."""
    try:
        return _tail(args)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # The reader left (`| head`): point stdout at /dev/null so the interpreter's final flush is silent.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
