"""S5: `obsdash query` is strictly read-only — what tests/test_query.py::test_refused_in_one_line does not try.

Every statement below runs through the real CLI against a hub this test process hosts (so over the socket, as a
second reader): each exits non-zero with exactly one line on stderr saying why, no traceback, and leaves the store
as it was — row counts, tables, settings, attached databases, and the bytes of telemetry.duckdb and its WAL — and
writes no file anywhere.

Reading files *inside* the data directory stays possible (`SELECT * FROM '<data dir>/spool/ingested/x.jsonl'`):
the hub's one connection ingests spool segments and spills there, DuckDB's allowed_directories is per database,
and those files hold the same telemetry as the store. Everything outside it is refused, `..` included.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from obsdash.datadir import DataDir
from obsdash.hub.client import Store, open_store
from tests.conftest import obsdash_cmd, run
from tests.tui.store import write_fixture_spool

READ_ONLY = "queries are read-only"
NO_FILES = "file system operations are disabled"


def refused_statements(data_dir: Path, outside: Path) -> list[tuple[str, str]]:
    """(statement, what its one line must say)."""
    d, o = str(data_dir), str(outside)
    return [
        # writes the statement check names
        ("UPDATE spans SET name = 'x'", "UPDATE statements are not allowed"),
        ("ALTER TABLE spans ADD COLUMN x INTEGER", "ALTER statements are not allowed"),
        ("CREATE TEMP TABLE t AS SELECT 1", "CREATE statements are not allowed"),
        ("CREATE OR REPLACE VIEW errors AS SELECT 1", "CREATE statements are not allowed"),
        ("CREATE MACRO m(x) AS x", "CREATE statements are not allowed"),
        ("CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 'v')", "CREATE statements are not allowed"),
        ("TRUNCATE logs", "DELETE statements are not allowed"),
        ("INSERT OR REPLACE INTO obsdash_meta VALUES ('schema_version', '9')", "INSERT statements are not"),
        ("DETACH telemetry", "DETACH statements are not allowed"),
        ("USE memory", "statements are not allowed"),
        ("ATTACH ':memory:' AS m", "ATTACH statements are not allowed"),
        (f"COPY logs TO '{d}/inside.csv'", "COPY statements are not allowed"),
        ("COPY logs FROM '/etc/passwd'", "COPY statements are not allowed"),
        (f"EXPORT DATABASE '{o}/exported'", "EXPORT statements are not allowed"),
        (f"IMPORT DATABASE '{o}/exported'", "statements are not allowed"),
        ("LOAD json", "LOAD statements are not allowed"),
        ("SET threads = 1", "SET statements are not allowed"),
        ("SET lock_configuration = false", "SET statements are not allowed"),
        ("RESET memory_limit", "SET statements are not allowed"),
        ("SET VARIABLE x = 1", "SET statements are not allowed"),
        ("PRAGMA enable_profiling", "PRAGMA statements are not allowed"),
        ("CALL pragma_version()", "CALL statements are not allowed"),
        ("CHECKPOINT", "CALL statements are not allowed"),
        ("FORCE CHECKPOINT", "CALL statements are not allowed"),
        ("VACUUM", "statements are not allowed"),
        ("BEGIN TRANSACTION", "TRANSACTION statements are not allowed"),
        ("COMMIT", "TRANSACTION statements are not allowed"),
        # more than one statement, however hidden
        ("SELECT 1; DROP TABLE spans", "expected one SQL statement, got 2"),
        ("SELECT 1 -- a comment\n; DROP TABLE spans", "expected one SQL statement, got 2"),
        ("/* SELECT 1; */ DROP TABLE spans", "DROP statements are not allowed"),
        ("SELECT 1; SELECT 2", "expected one SQL statement, got 2"),
        # writes inside a SELECT or an EXPLAIN
        ("WITH gone AS (DELETE FROM logs RETURNING *) SELECT count(*) FROM gone", READ_ONLY),
        ("EXPLAIN ANALYZE DELETE FROM logs", "DELETE statements are not allowed"),
        ("EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1", "CREATE statements are not allowed"),
        (f"EXPLAIN ANALYZE COPY logs TO '{d}/explained.csv'", "COPY statements are not allowed"),
        ("EXPLAIN (ANALYZE, FORMAT json) UPDATE spans SET name = 'x'", "UPDATE statements are not allowed"),
        # table functions that act rather than read
        ("SELECT * FROM checkpoint()", "checkpoint() is not allowed"),
        ("WITH c AS (FROM force_checkpoint()) SELECT * FROM c", "force_checkpoint() is not allowed"),
        ("SELECT * FROM query('SELECT * FROM checkpoint()')", "query() is not allowed"),
        (
            "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
            "json_execute_serialized_sql() is not allowed",
        ),
        (f"SELECT * FROM read_duckdb('{d}/telemetry.duckdb')", "read_duckdb() is not allowed"),
        ("SELECT (SELECT count(*) FROM truncate_duckdb_logs())", "truncate_duckdb_logs() is not allowed"),
        # files outside the data dir
        ("SELECT * FROM read_blob('/etc/passwd')", NO_FILES),
        ("SELECT * FROM read_json('/etc/passwd')", NO_FILES),
        ("SELECT * FROM read_parquet('/etc/passwd')", NO_FILES),
        ("SELECT * FROM sniff_csv('/etc/passwd')", NO_FILES),
        ("SELECT * FROM read_text('/proc/self/environ')", NO_FILES),
        (f"SELECT * FROM read_text('{d}/../../../../../../etc/passwd')", NO_FILES),
        (f"SELECT * FROM read_text('{d}/spool/../../outside.txt')", NO_FILES),
        (f"SELECT * FROM '{o}/outside.csv'", NO_FILES),
        ("SELECT * FROM 'file.csv'", NO_FILES),
        ("FROM '/etc/passwd'", "does not exist"),
        ("SELECT * FROM read_csv('https://example.com/x.csv')", NO_FILES),
        ("SELECT * FROM duckdb_secrets()", NO_FILES),
    ]


def state(store: Store, data_dir: Path) -> dict[str, Any]:
    """Everything a statement could have changed."""
    tables = [
        "spans",
        "span_events",
        "logs",
        "metric_points",
        "run_events",
        "ingested_segments",
        "llm_prices",
    ]
    counts = store.query(
        " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in tables) + " ORDER BY 1"
    ).rows
    catalog = store.query(
        "SELECT (SELECT list(table_name ORDER BY table_name) FROM duckdb_tables()), "
        "(SELECT list(view_name ORDER BY view_name) FROM duckdb_views() WHERE NOT internal), "
        "(SELECT list(database_name ORDER BY database_name) FROM duckdb_databases()), "
        "(SELECT list(name || '=' || value ORDER BY name) FROM duckdb_settings() WHERE name IN "
        "('enable_external_access', 'lock_configuration', 'memory_limit', 'threads', 'allowed_directories'))"
    ).rows
    files = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (data_dir / "telemetry.duckdb", data_dir / "telemetry.duckdb.wal")
        if p.exists()
    }
    listing = sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.name != "hub.sock")
    return {"counts": counts, "catalog": catalog, "files": files, "listing": listing}


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path, Path]]:
    """The dashboard tests' fixture store behind a hub this process hosts, and a folder outside it."""
    root = tmp_path_factory.mktemp("readonly")
    data_dir, outside = root / "data", root / "outside"
    outside.mkdir()
    (outside / "outside.csv").write_text("secret,value\nk,v\n")
    (outside / "outside.txt").write_text("secret\n")
    write_fixture_spool(data_dir)
    store = open_store(DataDir(data_dir))
    store.sync()
    yield store, data_dir, outside
    store.close()


def query_cli(data_dir: Path, sql: str) -> Any:
    return run(obsdash_cmd("query", "--data-dir", str(data_dir), sql))


def test_a_plain_select_changes_nothing(hosted: tuple[Store, Path, Path]) -> None:
    """The control: the before/after comparison below is stable when nothing writes."""
    store, data_dir, _ = hosted
    before = state(store, data_dir)
    result = query_cli(data_dir, "SELECT count(*) FROM spans")
    assert result.returncode == 0, result.stderr
    assert state(store, data_dir) == before


def test_every_write_and_escape_is_refused_in_one_line(hosted: tuple[Store, Path, Path]) -> None:
    store, data_dir, outside = hosted
    statements = refused_statements(data_dir, outside)
    before = state(store, data_dir)
    outside_before = sorted(p.name for p in outside.iterdir())
    problems = []
    for sql, expected in statements:
        result = query_cli(data_dir, sql)
        lines = result.stderr.splitlines()
        if not (
            result.returncode != 0
            and result.stdout == ""
            and len(lines) == 1
            and lines[0].startswith("obsdash: ")
            and expected in lines[0]
            and "Traceback" not in result.stderr
        ):
            problems.append((sql, result.returncode, result.stdout[:200], result.stderr[-500:]))
    assert not problems, problems
    assert state(store, data_dir) == before
    assert sorted(p.name for p in outside.iterdir()) == outside_before
    print(f"\nS5: {len(statements)} statements refused, store unchanged")


def test_reads_still_work(hosted: tuple[Store, Path, Path]) -> None:
    """What the check must let through: SELECT forms, EXPLAIN ANALYZE of a SELECT, the views, DESCRIBE/SHOW."""
    store, data_dir, _ = hosted
    before = state(store, data_dir)
    for sql in [
        "WITH r AS (SELECT * FROM spans WHERE is_root) SELECT count(*) FROM r",
        "EXPLAIN ANALYZE SELECT count(*) FROM logs",
        "EXPLAIN (FORMAT json) SELECT 1",
        "SELECT count(*) FROM errors",
        "SELECT count(*) FROM llm_calls",
        "SELECT * FROM errors_since(TIMESTAMP '2000-01-01') LIMIT 1",
        "DESCRIBE spans",
        "SHOW TABLES",
        "SUMMARIZE logs",
        "SELECT 1 /* ; DROP TABLE spans */",
        "SELECT 'checkpoint' AS word",  # names a refused function in a string: not a call
        "SELECT count(*) FROM glob('" + str(data_dir) + "/spool/ingested/*')",
    ]:
        result = query_cli(data_dir, sql)
        assert result.returncode == 0, (sql, result.stderr)
        assert result.stdout.strip(), sql
    assert state(store, data_dir) == before
