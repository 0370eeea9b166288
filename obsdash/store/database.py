"""Opening `telemetry.duckdb` read-write, locked down, for the hub (the only process that opens it).

The database is opened with external access disabled except for the data directory, and the configuration
locked, so no query can read other files, attach databases, or install and load extensions (S5). A database file
that is not a valid DuckDB file is moved aside and rebuilt from the spool segments still on disk (R6); a store
written by a newer obsdash or DuckDB is refused with a clear message and left untouched.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import duckdb

from obsdash.datadir import DataDir
from obsdash.errors import StoreError
from obsdash.store import schema

log = logging.getLogger(__name__)

_CORRUPT_SIGNS = (
    "not a valid duckdb database",
    "corrupt",
    "checksum",
    "invalid block",
    "failed to read database header",
)
_NEWER_SIGNS = ("version number", "newer version", "storage version")


MEMORY_LIMIT = "320MB"
"""DuckDB's cap in a hub hosted by a command that does not stay on screen (`ingest`, `serve`, `tail`, ...)."""
DASHBOARD_MEMORY_LIMIT = "160MB"
"""The cap when the dashboard hosts the hub: its process promises ≤ 300 MB with 10M spans stored (P7). DuckDB's
buffer pool fills to its cap with the blocks a long window reads, and Python with Textual add ~120 MB: with the
`all` window on a 10M-span store the process peaked at 419 MB under 320 MB, 310 MB under 192 MB and 285 MB under
160 MB, with the same refresh times (overview `all` 323 vs 320 ms). What it costs is ingest: a backlog goes in at
0.39x read_json's rate instead of 0.57x (the batch's temporary table spills), still ~130k spans/s
(docs/benchmarks.md, P4 and P7)."""


def open_database(data_dir: DataDir, memory_limit: str = MEMORY_LIMIT) -> Any:
    """The hub's read-write connection, with the schema created or upgraded, DuckDB capped at `memory_limit`."""
    # S3: the process that owns the store keeps umask 077 from here on. DuckDB creates files long after the open
    # (the WAL again after a CHECKPOINT deletes it, spill files in DIR/tmp) with the process umask: 0666 under a
    # umask of 0 (tests/security/test_private_files.py). Only obsdash's own processes host the hub.
    os.umask(0o077)
    mark = damaged_mark(data_dir)
    if mark.exists():
        if data_dir.database.exists():
            _move_aside_for_rebuild(data_dir, mark.read_text(errors="replace") or "marked damaged")
        mark.unlink(missing_ok=True)
    try:
        conn = _connect_with_schema(data_dir, memory_limit)
    except duckdb.Error as exc:
        text = str(exc).lower()
        if "could not set lock" in text:  # not just "lock": a corrupt file's message says "in block at ..."
            raise StoreError(
                f"{data_dir.database} is held by another program (not an obsdash hub)",
                hint="close it (a duckdb shell?) and try again",
            ) from None
        if any(sign in text for sign in _NEWER_SIGNS):
            raise StoreError(
                f"{data_dir.database} was written by a newer DuckDB", hint="upgrade obsdash"
            ) from None
        if is_corruption(exc):
            _move_aside_for_rebuild(data_dir, str(exc))
            conn = _connect_with_schema(data_dir, memory_limit)
        else:
            raise StoreError(f"cannot open {data_dir.database}: {str(exc).splitlines()[0]}") from None
    _make_private(data_dir.database)
    return conn


def _connect_with_schema(data_dir: DataDir, memory_limit: str) -> Any:
    """Connect and create the schema. Both count as opening: a file whose header is intact but whose catalog or
    meta blocks are damaged connects fine and fails only on the first read ("Corrupt database file: computed
    checksum ... does not match"), which must also lead to the rebuild, not a traceback (tests/reliability)."""
    conn = _connect(data_dir, memory_limit)
    try:
        schema.create(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _connect(data_dir: DataDir, memory_limit: str) -> Any:
    conn = duckdb.connect(
        str(data_dir.database),
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    allowed = str(data_dir.root) + os.sep
    spill = data_dir.root / "tmp"
    spill.mkdir(mode=0o700, exist_ok=True)
    # DuckDB's default cap is 80% of RAM: a hub on a 10M-span store grew to 1.2-1.5 GB. At 320 MB (spilling
    # inside the data dir) read_json keeps its speed; the dashboard's smaller cap is explained above.
    conn.execute("SET memory_limit = ?", [memory_limit])
    # Every query that shows rows in an order says so (ORDER BY); keeping the order rows arrive in held a batch's
    # read_json and insert to one thread's sequence: 200k spans ingested in 1.21 s with it, 0.97 s without (P4).
    conn.execute("SET preserve_insertion_order = false")
    conn.execute("SET temp_directory = ?", [str(spill)])
    conn.execute("SET allowed_directories = [?]", [allowed])
    conn.execute("SET enable_external_access = false")
    conn.execute("SET lock_configuration = true")
    return conn


def is_corruption(exc: BaseException) -> bool:
    """True when DuckDB's error says the file is damaged."""
    text = str(exc).lower()
    return any(sign in text for sign in _CORRUPT_SIGNS)


def damaged_mark(data_dir: DataDir) -> Path:
    """The file that says "rebuild this store at the next open"."""
    return data_dir.database.with_name(data_dir.database.name + ".damaged")


def mark_damaged(data_dir: DataDir, exc: BaseException) -> None:
    """Damage found in a store already open (a query read a bad data block; the header and catalog were fine):
    leave a mark, so the next hub to open the store moves it aside and rebuilds it. The open hub cannot swap the
    file under its readers."""
    try:
        fd = os.open(damaged_mark(data_dir), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as mark:
            mark.write(str(exc).splitlines()[0])
    except OSError:
        pass


def _make_private(path: Path) -> None:
    for candidate in (path, path.with_name(path.name + ".wal")):
        try:
            candidate.chmod(0o600)
        except FileNotFoundError:
            pass


def _move_aside_for_rebuild(data_dir: DataDir, reason: str) -> None:
    """Keep the damaged file for inspection and queue every archived segment for ingest again."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = data_dir.database.with_name(f"{data_dir.database.name}.corrupt-{stamp}")
    for n in range(1, 1000):  # a second damaged file in the same second must not replace the first
        if not aside.exists():
            break
        aside = data_dir.database.with_name(f"{data_dir.database.name}.corrupt-{stamp}-{n}")
    os.replace(data_dir.database, aside)
    aside.chmod(0o600)  # a rename keeps the mode: whatever damaged the file may have left it readable (S3)
    wal = data_dir.database.with_name(data_dir.database.name + ".wal")
    if wal.exists():
        os.replace(wal, aside.with_name(aside.name + ".wal"))
        aside.with_name(aside.name + ".wal").chmod(0o600)
    requeued = 0
    for segment in data_dir.ingested.glob("*.jsonl"):
        os.replace(segment, data_dir.spool / segment.name)
        requeued += 1
    log.warning(
        "obsdash: %s was damaged (%s); moved it to %s and rebuilding from %d spool segments",
        data_dir.database,
        (reason.splitlines() or ["?"])[0],
        aside,
        requeued,
    )
