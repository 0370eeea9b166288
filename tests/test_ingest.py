"""Ingest: damaged segments cost only their bad lines (counted); a newer store is refused untouched."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from obsdash.datadir import DataDir, prepare
from obsdash.store import ingest
from obsdash.store.database import open_database
from obsdash.store.ingest import Ingester
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
        "obsdash: the store was written by a newer obsdash (schema 99, this obsdash reads up to 3) "
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


def _ingester(root: Path) -> tuple[Any, Ingester, DataDir]:
    data_dir = prepare(DataDir(root))
    conn = open_database(data_dir)
    return conn, Ingester(conn, data_dir.spool, data_dir.ingested), data_dir


def _segments_per_commit(ingester: Ingester, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gets, for each transaction `ingester` commits, the number of segments in it."""
    commits: list[int] = []
    real_load = ingester._load

    def counting_load(*args: Any, **kwargs: Any) -> dict[str, tuple[int, int]]:
        counts = real_load(*args, **kwargs)
        commits.append(len(counts))
        return counts

    monkeypatch.setattr(ingester, "_load", counting_load)
    return commits


def test_a_backlog_is_cut_into_batches_by_bytes_and_each_segment_stored_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches are bounded by segment bytes (BATCH_BYTES), not by a count of files: with a small budget the same
    spool is split into several transactions, and every segment is still stored once with its own counts."""
    conn, ingester, data_dir = _ingester(tmp_path / "data")
    spans = write_segments(data_dir.spool, segments=12, spans_per_segment=40)
    one_segment = max(p.stat().st_size for p in data_dir.spool.glob("*.jsonl"))
    monkeypatch.setattr(ingest, "BATCH_BYTES", 3 * one_segment)  # 12 segments: at least 4 batches
    commits = _segments_per_commit(ingester, monkeypatch)
    report = ingester.run()
    assert len(commits) >= 4 and max(commits) <= 3 and sum(commits) == 12
    assert report.segments == 12 and report.records == {"spans": spans} and report.bad_lines == 0
    assert conn.execute("SELECT count(*), count(DISTINCT span_id) FROM spans").fetchone() == (spans, spans)
    assert conn.execute(
        "SELECT count(*), sum(records), sum(bad_lines) FROM ingested_segments"
    ).fetchone() == (
        12,
        spans,
        0,
    )
    assert not list(data_dir.spool.glob("*.jsonl")) and len(list(data_dir.ingested.glob("*.jsonl"))) == 12
    assert ingester.archived_bytes == sum(p.stat().st_size for p in data_dir.ingested.glob("*.jsonl"))
    conn.close()


def test_a_short_last_part_of_a_backlog_goes_with_the_batch_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut by bytes alone, 11 segments with room for 5 a batch would end in a batch of one; being under a quarter
    of a batch, that segment goes with the batch before it (a small batch's commit goes through the WAL and can
    set off a checkpoint that rewrites the partial row groups: docs/benchmarks.md, P4)."""
    conn, ingester, data_dir = _ingester(tmp_path / "data")
    spans = write_segments(data_dir.spool, segments=11, spans_per_segment=40)
    one_segment = max(p.stat().st_size for p in data_dir.spool.glob("*.jsonl"))
    monkeypatch.setattr(ingest, "BATCH_BYTES", int(5.5 * one_segment))
    commits = _segments_per_commit(ingester, monkeypatch)
    report = ingester.run()
    assert commits == [5, 6]
    assert report.segments == 11 and report.records == {"spans": spans}
    assert conn.execute("SELECT count(*), count(DISTINCT span_id) FROM spans").fetchone() == (spans, spans)
    conn.close()


def test_a_line_past_the_batch_object_size_setting_is_stored(tmp_path: Path) -> None:
    """Batches read with `maximum_object_size` 16 MB (faster under the hub's memory cap than the 64 MB used
    before); read_json's buffer holds two objects' worth, so a 20 MB record is still stored whole, in its batch."""
    conn, ingester, data_dir = _ingester(tmp_path / "data")
    spans = write_segments(data_dir.spool, segments=3, spans_per_segment=5)
    big = orjson.loads(span_line(10**9, trace=10**9))
    big["attributes"]["blob"] = "x" * (ingest.FAST_MAX_OBJECT + (4 << 20))
    name = "spans-99999999999999999999-1-000099.jsonl"
    (data_dir.spool / name).write_bytes(
        orjson.dumps(big) + b"\n" + span_line(10**9 + 1, trace=10**9 + 1) + b"\n"
    )
    report = ingester.run()
    assert report.records == {"spans": spans + 2} and report.bad_lines == 0
    assert conn.execute(
        "SELECT records, bad_lines FROM ingested_segments WHERE name = ?", [name]
    ).fetchone() == (
        2,
        0,
    )
    blob = conn.execute("SELECT length(attributes->>'$.blob') FROM spans WHERE span_id = ?", [big["span_id"]])
    assert blob.fetchone() == (ingest.FAST_MAX_OBJECT + (4 << 20),)
    assert conn.execute("SELECT count(*) FROM ingested_segments").fetchone() == (4,)
    conn.close()


def test_a_file_named_like_a_glob_is_not_a_segment(tmp_path: Path) -> None:
    """read_json expands each path as a glob: a stray `spans-*.jsonl` in the spool would read every span segment
    again and store its rows twice. Such a name is not a segment's; it is left alone."""
    conn, ingester, data_dir = _ingester(tmp_path / "data")
    spans = write_segments(data_dir.spool, segments=2, spans_per_segment=3)
    stray = data_dir.spool / "spans-*.jsonl"
    stray.write_bytes(span_line(10**9, trace=10**9) + b"\n")
    report = ingester.run()
    assert report.segments == 2 and report.records == {"spans": spans}
    assert conn.execute("SELECT count(*), count(DISTINCT span_id) FROM spans").fetchone() == (spans, spans)
    assert stray.exists()
    conn.close()


def test_genai_columns_are_read_for_every_alias_and_only_where_present(tmp_path: Path) -> None:
    """The GenAI hot columns are extracted only from rows whose attributes text holds `gen_ai.` or
    `llm.token_count.` (ingest._HotAttributes guard): each alias still lands in its column, a span without them
    gets NULLs, and a value that merely mentions `gen_ai.` changes nothing."""
    conn, ingester, data_dir = _ingester(tmp_path / "data")
    shapes = {
        "semconv": {
            "gen_ai.provider.name": "openai",
            "gen_ai.response.model": "gpt-4o-mini",
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": 11,
            "gen_ai.usage.output_tokens": 7,
            "gen_ai.usage.cache_read.input_tokens": 3,
            "gen_ai.usage.cache_creation.input_tokens": 2,
        },
        "older": {
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": "claude",
            "gen_ai.usage.prompt_tokens": 5,
        },
        "openinference": {"llm.token_count.prompt": 13, "llm.token_count.completion": 17},
        "mention": {"http.route": "/x", "note": "ask gen_ai.usage.input_tokens = 9"},
        "plain": {"http.route": "/x"},
    }
    records = []
    for i, (label, attributes) in enumerate(shapes.items()):
        record = orjson.loads(span_line(i, trace=i + 1))
        record["name"] = label
        record["attributes"] = attributes
        records.append(orjson.dumps(record))
    (data_dir.spool / "spans-00000000000000000001-1-000001.jsonl").write_bytes(b"\n".join(records) + b"\n")
    ingester.run()
    rows = conn.execute(
        "SELECT name, gen_ai_provider, gen_ai_model, gen_ai_operation, input_tokens, output_tokens, "
        "cache_read_tokens, cache_write_tokens, http_route FROM spans"
    ).fetchall()
    got = {row[0]: row[1:] for row in rows}
    assert got == {
        "semconv": ("openai", "gpt-4o-mini", "chat", 11, 7, 3, 2, None),
        "older": ("anthropic", "claude", None, 5, None, None, None, None),
        "openinference": (None, None, None, 13, 17, None, None, None),
        "mention": (None, None, None, None, None, None, None, "/x"),
        "plain": (None, None, None, None, None, None, None, "/x"),
    }
    conn.close()
