"""The `errors` view's dedup, through real ingest: one row per exception whichever records carry it.

`errors_since` ranks narrow rows and reads a log's span id only when the log has no trace id (schema.py); these
cases pin the rules it must keep: a span event wins over the log of the same exception, the longest stack trace
wins among span events, untraced log lines are told apart by time and span id, and the route is the trace's
first root's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from obsdash.datadir import DataDir
from obsdash.hub.client import Store, open_store
from obsdash.store.queries.errors import error_groups
from obsdash.store.queries.window import utc_now
from tests.spoolgen import ns, write_records

SHORT = 'Traceback (most recent call last):\n  File "shop.py", line 9, in pay\nValueError: bad\n'
LONG = (
    'Traceback (most recent call last):\n  File "flask/app.py", line 1, in wsgi\n' + SHORT.split("\n", 1)[1]
)


def _exception(kind: str, stack: str, location: str = "shop.py:pay") -> dict[str, str]:
    return {
        "exception.type": kind,
        "exception.message": "bad",
        "exception.stacktrace": stack,
        "obsdash.exception.location": location,
    }


def _span(trace: int, span: int, start: datetime, parent: int | None, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "trace_id": f"{trace:032x}",
        "span_id": f"{trace:012x}{span:04x}",
        "parent_span_id": f"{trace:012x}{parent:04x}" if parent is not None else None,
        "name": "GET /pay",
        "kind": "SERVER" if parent is None else "INTERNAL",
        "start_ns": ns(start),
        "end_ns": ns(start) + 5_000_000,
        "status_code": "ERROR",
        "attributes": {"http.route": "/pay"} if parent is None else {},
        "events": [],
        "scope": "test",
        "service_name": "shop",
        "run_id": "errors-test",
        "pid": 7,
        "resource": {},
    }
    record.update(fields)
    return record


def _event(at: datetime, kind: str, stack: str) -> dict[str, Any]:
    return {"name": "exception", "time_ns": ns(at), "attributes": _exception(kind, stack)}


def _log(at: datetime, trace: int | None, span: str | None, kind: str, stack: str) -> dict[str, Any]:
    return {
        "time_ns": ns(at),
        "severity_text": "ERROR",
        "severity_number": 17,
        "body": "failed",
        "trace_id": f"{trace:032x}" if trace is not None else None,
        "span_id": span,
        "attributes": _exception(kind, stack),
        "scope": "shop",
        "service_name": "shop",
        "run_id": "errors-test",
        "pid": 7,
        "resource": {},
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(DataDir(tmp_path / "data"))
    t = utc_now() - timedelta(minutes=30)
    ms = timedelta(milliseconds=1)
    spans = [
        # trace 1: the request and its handler span both record the exception (the handler's stack is shorter),
        # and the framework logs it again: one error, the request span's record
        _span(1, 0, t, None, events=[_event(t + 3 * ms, "builtins.ValueError", LONG)]),
        _span(1, 1, t + ms, 0, events=[_event(t + 2 * ms, "builtins.ValueError", SHORT)]),
        # trace 2: only a log line carries it (a handled exception logged with logger.exception)
        _span(2, 0, t + timedelta(minutes=1), None, status_code="UNSET"),
    ]
    untraced_at = t + timedelta(minutes=2)
    logs = [
        _log(t + 4 * ms, 1, f"{1:012x}{0:04x}", "ValueError", LONG),
        _log(t + timedelta(minutes=1, milliseconds=2), 2, f"{2:012x}{0:04x}", "ValueError", SHORT),
        # untraced (a background thread): the same line twice at the same instant and span is one exception;
        # another span id, or no span id at another instant, is another one
        _log(untraced_at, None, "aaaaaaaaaaaaaaaa", "ValueError", SHORT),
        _log(untraced_at, None, "aaaaaaaaaaaaaaaa", "ValueError", SHORT),
        _log(untraced_at, None, "bbbbbbbbbbbbbbbb", "ValueError", SHORT),
        _log(untraced_at + ms, None, None, "ValueError", SHORT),
    ]
    write_records(opened.data_dir.spool, "spans", spans, 1)
    write_records(opened.data_dir.spool, "logs", logs, 2)
    opened.sync()
    yield opened
    opened.close()


def test_each_exception_counts_once(store: Store) -> None:
    rows = store.query(
        "SELECT trace_id, span_id, exception_type, stacktrace, route FROM errors ORDER BY time, span_id"
    ).records()
    assert len(rows) == 5
    first = rows[0]
    assert first["trace_id"] == f"{1:032x}"
    assert (first["span_id"], first["exception_type"]) == (f"{1:012x}{0:04x}", "builtins.ValueError")
    assert first["stacktrace"] == LONG and first["route"] == "/pay"
    assert (rows[1]["trace_id"], rows[1]["route"]) == (f"{2:032x}", "/pay")  # from its log line
    untraced = [(r["trace_id"], r["span_id"], r["route"]) for r in rows[2:]]
    assert untraced == [
        (None, "aaaaaaaaaaaaaaaa", None),
        (None, "bbbbbbbbbbbbbbbb", None),
        (None, None, None),
    ]


def test_error_groups_count_the_deduplicated_exceptions(store: Store) -> None:
    groups = error_groups(store, utc_now() - timedelta(hours=1))
    assert [(g.exception_type.rsplit(".", 1)[-1], g.count, g.routes) for g in groups] == [
        ("ValueError", 5, ["/pay"])
    ]
    # the window applies before the dedup: from just after trace 1, its records are not counted
    later = error_groups(store, store.query("SELECT min(time) FROM logs").rows[0][0] + timedelta(seconds=1))
    assert [g.count for g in later] == [4]
