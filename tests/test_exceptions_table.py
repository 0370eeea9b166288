"""The `exceptions` table (store/exceptions.py) holds exactly the exception records of `span_events` and `logs`.

Through the real hub: after ingest of spool segments in several passes, after a retention cut, and after the
backfill at open of a store written before the table existed. `errors_since` reads only this table, so a record
missing here would be an error the dashboard never shows.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from obsdash.datadir import DataDir
from obsdash.hub.client import Store, open_store
from obsdash.store import exceptions
from obsdash.store.queries.window import utc_now
from obsdash.store.schema import SCHEMA_VERSION
from tests.spoolgen import ns

_COLUMNS = "time, trace_id, span_id, service_name, run_id, {rank}, exception_type, exception_message, " + (
    "exception_stacktrace, exception_location"
)
EXPECTED = f"""
SELECT {_COLUMNS.format(rank=exceptions.SPAN_EVENT)} FROM span_events WHERE exception_type IS NOT NULL
UNION ALL
SELECT {_COLUMNS.format(rank=exceptions.LOG)} FROM logs WHERE exception_type IS NOT NULL
"""
STORED = f"SELECT {exceptions.COLUMNS} FROM exceptions"


def _exception(rng: random.Random) -> dict[str, str]:
    kind = rng.choice(["builtins.ValueError", "KeyError", "sqlite3.OperationalError"])
    attributes = {"exception.type": kind, "exception.message": f"m{rng.randrange(5)}"}
    if rng.random() < 0.8:
        attributes["exception.stacktrace"] = "Traceback ...\n" * rng.randrange(1, 4)
    if rng.random() < 0.7:
        attributes["obsdash.exception.location"] = f"shop.py:{rng.randrange(3)}"
    return attributes


def _records(rng: random.Random, traces: int, start: datetime, end: datetime) -> tuple[list[Any], list[Any]]:
    """Spans (a root and a child; some with exception events, some with other events) and log lines (with and
    without exceptions, traced and untraced) spread over [start, end)."""
    spans: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = []
    step = (end - start) / traces
    for n in range(traces):
        t = start + n * step
        trace = f"{rng.getrandbits(128):032x}"
        for i, parent in ((0, None), (1, 0)):
            events = [
                {"name": "exception", "time_ns": ns(t) + 1000 * j, "attributes": _exception(rng)}
                for j in range(rng.choice([0, 0, 1, 2]))
            ]
            if rng.random() < 0.2:
                events.append({"name": "retry", "time_ns": ns(t), "attributes": {"attempt": 2}})
            spans.append(
                {
                    "trace_id": trace,
                    "span_id": f"{n:012x}{i:04x}",
                    "parent_span_id": f"{n:012x}{parent:04x}" if parent is not None else None,
                    "name": "GET /pay",
                    "kind": "SERVER",
                    "start_ns": ns(t),
                    "end_ns": ns(t) + 3_000_000,
                    "status_code": "ERROR" if events else "UNSET",
                    "attributes": {"http.route": "/pay"},
                    "events": events,
                    "scope": "test",
                    "service_name": rng.choice(["shop", "billing"]),
                    "run_id": "exceptions-test",
                    "pid": 7,
                    "resource": {},
                }
            )
        for _ in range(rng.choice([0, 1, 2])):
            traced = rng.random() < 0.7
            logs.append(
                {
                    "time_ns": ns(t) + 2000,
                    "severity_text": "ERROR",
                    "severity_number": 17,
                    "body": "failed",
                    "trace_id": trace if traced else None,
                    "span_id": f"{n:012x}0000" if traced or rng.random() < 0.5 else None,
                    "attributes": _exception(rng) if rng.random() < 0.6 else {"user": "x"},
                    "scope": "shop",
                    "service_name": "shop",
                    "run_id": "exceptions-test",
                    "pid": 7,
                    "resource": {},
                }
            )
    return spans, logs


def _ingest(store: Store, rng: random.Random, start: datetime, end: datetime, seq: int) -> None:
    """Three passes of ingest, each of several segments per kind."""
    for _ in range(3):
        spans, logs = _records(rng, 40, start, end)
        for kind, records in (("spans", spans), ("logs", logs)):
            for part in range(2):
                seq += 1
                name = f"{kind}-{ns(utc_now()) + seq:020d}-7-{seq:06d}.jsonl"
                chunk = records[part::2]
                store.data_dir.spool.mkdir(mode=0o700, parents=True, exist_ok=True)
                (store.data_dir.spool / name).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in chunk))
        store.sync()


def _rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    return sorted((tuple(row) for row in store.query(sql).rows), key=repr)


def _assert_equal(store: Store) -> int:
    expected = _rows(store, EXPECTED)
    assert _rows(store, STORED) == expected
    return len(expected)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(DataDir(tmp_path / "data"))
    now = utc_now()
    _ingest(opened, random.Random(3), now - timedelta(hours=6), now, seq=0)
    yield opened
    opened.close()


def test_ingest_copies_every_exception_record(store: Store) -> None:
    n = _assert_equal(store)
    by_source = dict(store.query("SELECT source_rank, count(*) FROM exceptions GROUP BY 1").rows)
    assert n > 100 and by_source[exceptions.SPAN_EVENT] > 0 and by_source[exceptions.LOG] > 0
    # the records without an exception stay out: a `retry` event, log lines without exception.type
    assert store.query("SELECT count(*) FROM span_events WHERE exception_type IS NULL").rows[0][0] > 0
    assert store.query("SELECT count(*) FROM logs WHERE exception_type IS NULL").rows[0][0] > 0
    assert store.query(
        "SELECT count(*) FROM logs WHERE exception_type IS NOT NULL AND trace_id IS NULL"
    ).rows[0][0]


def test_retention_prunes_exceptions_with_their_records(store: Store) -> None:
    before = _assert_equal(store)
    store.set_retention({"max_age_s": 3 * 3600 + 17.5})
    left = _assert_equal(store)
    assert 0 < left < before
    oldest = store.query("SELECT min(time) FROM exceptions").rows[0][0]
    assert oldest >= utc_now() - timedelta(hours=3, seconds=18)


def test_a_store_from_before_the_table_is_backfilled_at_open(store: Store) -> None:
    data_dir = store.data_dir
    expected = _rows(store, EXPECTED)
    errors = _rows(store, "SELECT * FROM errors")
    store.close()
    with duckdb.connect(str(data_dir.database)) as conn:  # as the previous obsdash left it
        conn.execute("DROP TABLE exceptions")
        conn.execute("DELETE FROM obsdash_meta WHERE key = 'exceptions_version'")
        conn.execute("UPDATE obsdash_meta SET value = '2' WHERE key = 'schema_version'")
    reopened = open_store(data_dir)
    try:
        assert _rows(reopened, STORED) == expected
        assert _rows(reopened, "SELECT * FROM errors") == errors
        meta = dict(reopened.query("SELECT key, value FROM obsdash_meta").rows)
        assert meta["exceptions_version"] == exceptions.VERSION
        assert meta["schema_version"] == str(SCHEMA_VERSION)
        # and ingest goes on adding to it
        now = utc_now()
        _ingest(reopened, random.Random(4), now - timedelta(minutes=10), now, seq=100)
        assert _assert_equal(reopened) > len(expected)
    finally:
        reopened.close()
