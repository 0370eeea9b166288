"""Ingest: damaged segments cost only their bad lines (counted); a newer store is refused untouched."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import duckdb

from obsdash.store.segments import is_valid_record
from tests.conftest import obsdash_cmd, query, run, scalar, wrapped
from tests.spoolgen import span_line, write_segments


def test_corrupt_and_truncated_segment_costs_only_bad_lines(data_dir: Path) -> None:
    spool = data_dir / "spool"
    spool.mkdir(parents=True)
    good = [span_line(i, trace=i + 1) for i in range(10)]
    bad = [
        b"this is not json",
        b'{"trace_id": 5, "span_id": "x", "name": "n", "start_ns": 1, "end_ns": 2}',  # wrong type
        b'["an", "array"]',
        b'{"trace_id": "' + b"\xff\xfe" + b'"}',  # invalid UTF-8
        good[0][:40],  # truncated mid-line, as a killed writer leaves it
    ]
    lines = good[:5] + bad[:3] + good[5:] + bad[3:]
    (spool / "spans-00000000000000000001-1-000001.jsonl").write_bytes(b"\n".join(lines))
    (spool / "spans-00000000000000000002-1-000002.jsonl").write_bytes(b"\n".join(good[:2]) + b"\n")
    result = run(obsdash_cmd("ingest", "--data-dir", str(data_dir)))
    assert result.returncode == 0, result.stderr
    assert "5 bad lines skipped" in result.stdout
    rows = query(data_dir, "SELECT name, records, bad_lines FROM ingested_segments ORDER BY name")
    assert [(r["records"], r["bad_lines"]) for r in rows] == [(10, 5), (2, 0)]
    assert scalar(data_dir, "SELECT count(*) FROM spans") == 12


def test_record_validation() -> None:
    assert is_valid_record("logs", {"time_ns": 1, "body": "x"})
    assert not is_valid_record("logs", {"time_ns": "1"})
    assert not is_valid_record("logs", {"time_ns": True})
    assert not is_valid_record("spans", {"trace_id": "a", "span_id": "b", "name": "n", "start_ns": 1})
    assert not is_valid_record("logs", {"time_ns": 1, "attributes": ["not", "a", "map"]})


def test_store_from_a_newer_obsdash_is_refused_and_kept(data_dir: Path) -> None:
    assert run(obsdash_cmd("ingest", "--data-dir", str(data_dir))).returncode == 0
    database = data_dir / "telemetry.duckdb"
    with duckdb.connect(str(database)) as conn:
        conn.execute("UPDATE obsdash_meta SET value = '99' WHERE key = 'schema_version'")
    before = database.read_bytes()
    result = run(obsdash_cmd("query", "--data-dir", str(data_dir), "SELECT 1"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "obsdash: the store was written by a newer obsdash (schema 99, this obsdash reads up to 2) "
        "(upgrade obsdash, or use another --data-dir)"
    ]
    assert database.read_bytes() == before


def test_corrupt_database_is_moved_aside_and_rebuilt(data_dir: Path) -> None:
    run(wrapped(data_dir, sys.executable, "-c", "import logging; logging.warning('kept')"))
    assert scalar(data_dir, "SELECT count(*) FROM logs") == 1
    database = data_dir / "telemetry.duckdb"
    database.write_bytes(os.urandom(64 * 1024))
    result = run(
        obsdash_cmd("query", "--data-dir", str(data_dir), "--format", "csv", "SELECT body FROM logs")
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["body", "kept"]
    assert "rebuilding" in result.stderr
    assert list(data_dir.glob("telemetry.duckdb.corrupt-*"))


def test_stale_temporaries_of_killed_writers_are_removed(data_dir: Path) -> None:
    """A killed app leaves its hidden `.<segment>.tmp`; the hub's periodic pass removes it once it is old, and
    leaves a fresh one (a writer about to rename it) alone."""
    spool = data_dir / "spool"
    write_segments(spool, segments=1, spans_per_segment=2)
    stale, fresh = spool / ".spans-1-1-000009.jsonl.tmp", spool / ".spans-2-1-000010.jsonl.tmp"
    for path in (stale, fresh):
        path.write_bytes(b'{"trace_id": "half a line')
    old = time.time() - 3600
    os.utime(stale, (old, old))

    assert scalar(data_dir, "SELECT count(*) FROM spans") == 2  # a hub ran its passes over the spool
    assert not stale.exists() and fresh.exists()
