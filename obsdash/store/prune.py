"""Deleting old rows from the store, oldest first, in slices that hold the hub's write lock only briefly.

Deletes go in slices of about `SLICE_SPANS` spans, and ingest runs between slices; dashboard queries never wait
(they read their own snapshot and do not take the write lock). While spans had the `spans_trace` ART index a span
cost ~9 µs to delete (`--max-age 1h` on a 24 h, 1M-span store: 1.54M rows in 48 slices, 23.7 s, the lock held at
most 427 ms); without it (dropped for ingest, docs/benchmarks.md P4) 0.06 µs, a log row 0.11 µs, so a slice now
holds the lock for milliseconds and the slice sizes leave ample room.

Where to cut is found from rows per time bucket of the tables with a time column (one GROUP BY, 30 ms on 1M
spans), weighted by each table's bytes per row (`pragma_storage_info`, 16 ms) when the cut is by size."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from obsdash.store import rollup

TIME_COLUMNS = {
    "spans": "start_time",
    "span_events": "time",
    "logs": "time",
    "metric_points": "time",
    "exceptions": "time",  # the exception records of span_events and logs, cut at the same time (exceptions.py)
}
SLICE_SPANS = 20_000
"""Spans per delete transaction (~0.2-0.4 s)."""
ROWS_PER_SPAN = 50
"""Weight of a log, metric point or span event against a span when slicing (set when spans had an index: 1/50 of
a span's delete cost; now about the same cost, which only makes slices smaller than they need to be)."""
SEGMENT_ROWS_KEPT_S = 3600
"""`ingested_segments` rows younger than this stay whatever the cut (see `delete_leftovers`)."""
SEGMENT_DELETE_CHUNK = 20_000
REWRITE_ROWS = 122_880
"""One row group: a table this small after a size prune is rewritten, not just deleted from (see `rewrite`). A
larger one has neighbouring row groups that DuckDB's checkpoint merges once their remaining rows fit in fewer."""

WAL_PER_STORED_BYTE = 5.0
"""A row takes ~5x the bytes in the WAL that it takes in the file once checkpointed (a 1.7 MB copy of a 16 MB
store's spans: 8.4 MB of WAL)."""

_SPAN = " UNION ALL ".join(
    f"SELECT min({column}) AS first, max({column}) AS last FROM {table} WHERE {column} < $before"
    for table, column in TIME_COLUMNS.items()
)
_HISTOGRAM = " UNION ALL ".join(
    f"SELECT time_bucket(to_microseconds($width), {column}) AS bucket, '{table}' AS source, count(*) AS n "
    f"FROM {table} WHERE {column} < $before GROUP BY ALL"
    for table, column in TIME_COLUMNS.items()
)
BUCKETS = 1000
"""Buckets over the stored time span: 1 s at least (a small cap holds seconds of data), 60 s at most."""


class Stopped(Exception):
    """The hub is closing: no more work on its connection."""


@dataclass(frozen=True)
class Writer:
    """The hub's connection and its write lock."""

    conn: Any
    lock: Any
    stopping: Callable[[], bool]

    @contextmanager
    def holding(self) -> Iterator[Any]:
        """The connection, with the write lock held, unless the hub is closing. Every statement on it runs so:
        `Hub.close` takes the lock to close the connection, so no daemon thread is still inside DuckDB when the
        interpreter exits (one there aborted the process: "terminate called ... FATAL: exception not rethrown")."""
        with self.lock:
            if self.stopping():
                raise Stopped
            yield self.conn


@dataclass
class Bucket:
    """The rows of one stretch of time: spans, other rows, and their estimated bytes."""

    start: datetime
    end: datetime
    spans: int = 0
    others: int = 0
    bytes: float = 0.0

    @property
    def cost(self) -> float:
        """Delete cost in spans."""
        return self.spans + self.others / ROWS_PER_SPAN


@dataclass
class Pruned:
    """What one prune removed from the store."""

    rows: dict[str, int] = field(default_factory=dict)
    slices: int = 0
    seconds: float = 0.0
    lock_seconds: float = 0.0
    """The longest the write lock was held at once."""

    @property
    def total(self) -> int:
        """Rows deleted from every table."""
        return sum(self.rows.values())

    def add(self, table: str, n: int) -> None:
        """Count `n` more rows deleted from `table`."""
        if n:
            self.rows[table] = self.rows.get(table, 0) + n


def histogram(cursor: Any, before: datetime, weights: dict[str, float] | None = None) -> list[Bucket]:
    """Rows per bucket older than `before`, oldest first; bytes estimated when `weights` (bytes per row) are given."""
    firsts, lasts = zip(*cursor.execute(_SPAN, {"before": before}).fetchall(), strict=True)
    known_firsts, known_lasts = [t for t in firsts if t], [t for t in lasts if t]
    if not known_firsts:
        return []
    stretch = (max(known_lasts) - min(known_firsts)).total_seconds()
    width = timedelta(seconds=min(60, max(1, int(stretch / BUCKETS))))
    found: dict[datetime, Bucket] = {}
    params = {"before": before, "width": int(width.total_seconds() * 1_000_000)}
    for start, source, n in cursor.execute(_HISTOGRAM, params).fetchall():
        bucket = found.setdefault(start, Bucket(start, start + width))
        if source == "spans":
            bucket.spans += n
        else:
            bucket.others += n
        if weights:
            bucket.bytes += n * weights.get(source, 0.0)
    return [found[start] for start in sorted(found)]


def row_bytes(cursor: Any) -> dict[str, float]:
    """Bytes per row of each table with a time column: its blocks on disk over its rows (rows still only in the
    WAL count as rows, so a fresh table looks a little cheaper than it will be)."""
    (block_size,) = cursor.execute(
        "SELECT block_size FROM pragma_database_size() WHERE database_name = current_database()"
    ).fetchone()
    weights = {}
    for table in TIME_COLUMNS:
        blocks, rows = cursor.execute(
            f"SELECT (SELECT count(DISTINCT block_id) FROM pragma_storage_info('{table}') WHERE block_id >= 0), "
            f"(SELECT count(*) FROM {table})"
        ).fetchone()
        weights[table] = blocks * block_size / rows if rows else 0.0
    return weights


def cut_for_bytes(buckets: list[Bucket], nbytes: float) -> datetime | None:
    """The end of the oldest buckets that together hold `nbytes`; never into the newest bucket (the data still
    arriving stays, even when it alone is over the cap). None when nothing can go."""
    if len(buckets) < 2 or nbytes <= 0:
        return None
    total = 0.0
    for bucket in buckets[:-1]:
        total += bucket.bytes
        if total >= nbytes:
            return bucket.end
    return buckets[-1].start


def slice_ends(buckets: list[Bucket], cut: datetime) -> list[datetime]:
    """Where each delete transaction ends, so that each costs about `SLICE_SPANS` (a busier bucket is one slice)."""
    ends: list[datetime] = []
    cost = 0.0
    for bucket in buckets:
        if bucket.end > cut:
            break
        cost += bucket.cost
        if cost >= SLICE_SPANS:
            ends.append(bucket.end)
            cost = 0.0
    if not ends or ends[-1] < cut:
        ends.append(cut)
    return ends


def delete_before(writer: Writer, cut: datetime, buckets: list[Bucket]) -> Pruned:
    """Delete every row older than `cut` from the time tables, one slice per transaction under `lock`, and
    the spans' rollup rows with them (its minute at the slice's end recomputed from the spans left)."""
    pruned = Pruned()
    started = time.perf_counter()
    for end in slice_ends(buckets, cut):
        with writer.holding() as conn:
            held = time.perf_counter()
            conn.execute("BEGIN TRANSACTION")
            try:
                for table, column in TIME_COLUMNS.items():
                    (n,) = conn.execute(f"DELETE FROM {table} WHERE {column} < ?", [end]).fetchone()
                    pruned.add(table, n)
                # the rollup keeps equal to the spans left: `all` on the overview shows what is stored
                pruned.add("route_minutes", rollup.prune_before(conn, end))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            pruned.lock_seconds = max(pruned.lock_seconds, time.perf_counter() - held)
        pruned.slices += 1
    pruned.seconds = time.perf_counter() - started
    return pruned


def delete_leftovers(writer: Writer, cut: datetime, now: datetime, pruned: Pruned) -> None:
    """After the rows: the `ingested_segments` names and `run_events` that no longer stand for anything.

    - `ingested_segments` rows keep a segment from being ingested twice, and only a segment still in the spool
      can be. Prune runs after an ingest pass, which moved every recorded segment out of the spool, and an
      archived segment never comes back except in a rebuild, which starts a new store. So a row whose segment
      was written before the cut goes, but never one under an hour old: a move that failed (spool unwritable)
      leaves the segment in the spool, and its row is what stops it being ingested again. Aged by the write
      time in the name, not `ingested_at` (DuckDB's `now()` there is in local time).
    - `run_events` (a run's start and end records, a few per process) stay while the run has any span, log or
      metric left — they hold its command, exit code and drop counts — and go with the run's last data.
    """
    cut_ns = int(
        (min(cut, now - timedelta(seconds=SEGMENT_ROWS_KEPT_S)) - datetime(1970, 1, 1)).total_seconds()
    )
    cut_ns *= 1_000_000_000
    while True:
        with writer.holding() as conn:
            (n,) = conn.execute(
                "DELETE FROM ingested_segments WHERE name IN (SELECT name FROM ingested_segments "
                "WHERE TRY_CAST(split_part(name, '-', 2) AS BIGINT) < ? LIMIT ?)",
                [cut_ns, SEGMENT_DELETE_CHUNK],
            ).fetchone()
        pruned.add("ingested_segments", n)
        if n < SEGMENT_DELETE_CHUNK:
            break
    with writer.holding() as conn:
        (n,) = conn.execute(
            "DELETE FROM run_events WHERE time < ? AND run_id NOT IN ("
            + " UNION ".join(
                f"SELECT run_id FROM {table} WHERE run_id IS NOT NULL"
                for table in ("spans", "logs", "metric_points")
            )
            + ")",
            [cut],
        ).fetchone()
    pruned.add("run_events", n)


def rewrite(writer: Writer, table: str, chunk_rows: int | None = None) -> None:
    """Copy a table's rows into a new table that takes its place, so its deleted rows leave the disk.

    DuckDB frees a row group's blocks only when every row in it is deleted (or when neighbours merge into fewer):
    a row group holds 122,880 rows, so in a small store a DELETE frees nothing. Measured: 45k of 60k spans
    deleted + CHECKPOINT, live data 14.4 -> 13.6 MB; the same table rewritten, 5.5 MB (0.05 s). Queries already
    running keep reading the old table (MVCC); the indexes are re-created from their own SQL.

    With `chunk_rows`, the copy is made that many rows at a time with a checkpoint after each, so the WAL never
    holds more than a chunk: copied in one statement, a 16 MB store's spans put 8.4 MB into the WAL (~5x their
    bytes in the file) and the data dir peaked at 20.2 MB under its 16 MB cap (tests/test_retention.py). The write
    lock is held throughout, so no row arrives in between; only the swap is one transaction.
    """
    with writer.holding() as conn:
        indexes = [
            sql
            for (sql,) in conn.execute(
                "SELECT sql FROM duckdb_indexes() WHERE database_name = current_database() "
                "AND schema_name = current_schema() AND table_name = ?",
                [table],
            ).fetchall()
        ]
        if chunk_rows:
            _copy_in_chunks(conn, table, chunk_rows)
        conn.execute("BEGIN TRANSACTION")
        try:
            if not chunk_rows:
                conn.execute(f"CREATE OR REPLACE TABLE obsdash_rewrite AS SELECT * FROM {table}")
            conn.execute(f"DROP TABLE {table}")
            conn.execute(f"ALTER TABLE obsdash_rewrite RENAME TO {table}")
            for sql in indexes:
                conn.execute(sql)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            conn.execute("DROP TABLE IF EXISTS obsdash_rewrite")  # a chunked copy is committed on its own
            raise


def _copy_in_chunks(conn: Any, table: str, chunk_rows: int) -> None:
    """`obsdash_rewrite` := the rows of `table` in their order, `chunk_rows` at a time, checkpointed in between (a
    copy left by a hub killed here is replaced by the next rewrite)."""
    conn.execute(f"CREATE OR REPLACE TABLE obsdash_rewrite AS SELECT * FROM {table} LIMIT 0")
    first, last = conn.execute(f"SELECT min(rowid), max(rowid) FROM {table}").fetchone()
    if first is None:
        return
    for start in range(first, last + 1, chunk_rows):
        conn.execute(
            f"INSERT INTO obsdash_rewrite SELECT * FROM {table} WHERE rowid >= ? AND rowid < ? ORDER BY rowid",
            [start, start + chunk_rows],
        )
        try:
            conn.execute("CHECKPOINT")
        except Exception:  # a reader still on an older snapshot: this chunk stays in the WAL until the next
            pass


def rewrite_small_tables(writer: Writer, pruned: Pruned, room: float, wal_room: float) -> list[str]:
    """Rewrite the tables the prune deleted from that hold at most `REWRITE_ROWS` rows, while their copies fit in
    `room` bytes (a rewrite holds both copies until its checkpoint: up to 1.2 MB over an 8 MB cap, measured, when
    it was not budgeted), copying at most `wal_room` bytes of WAL at a time; their names."""
    done = []
    weights = None
    for table in TIME_COLUMNS:
        if not pruned.rows.get(table):
            continue
        with writer.holding() as conn:
            (rows,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            weights = weights or row_bytes(conn)
        copy = (
            rows * weights[table] * rows / (rows + pruned.rows[table])
        )  # its blocks still hold the deleted rows
        if rows <= REWRITE_ROWS and copy <= room:
            started = time.perf_counter()
            chunk_rows = max(1024, int(wal_room / (WAL_PER_STORED_BYTE * weights[table] or 1.0)))
            rewrite(writer, table, chunk_rows)
            pruned.lock_seconds = max(pruned.lock_seconds, time.perf_counter() - started)
            done.append(table)
            room -= copy
    return done
