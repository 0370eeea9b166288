"""`obsdash query` (S5): formats, and every way to write or reach outside the store refused in one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import obsdash_cmd, run, wrapped


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("query") / "data"
    run(wrapped(data_dir, sys.executable, "-c", "import sys; sys.exit(0)"))
    return data_dir


def query_cli(data_dir: Path, sql: str, fmt: str = "table") -> tuple[int, str, str]:
    result = run(obsdash_cmd("query", "--data-dir", str(data_dir), "--format", fmt, sql))
    return result.returncode, result.stdout, result.stderr


def test_formats(filled: Path) -> None:
    status, out, _ = query_cli(filled, "SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, NULL ORDER BY a", "json")
    assert status == 0 and json.loads(out) == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]
    status, out, _ = query_cli(filled, "SELECT 1 AS a, 'x' AS b", "csv")
    assert out.splitlines() == ["a,b", "1,x"]
    status, out, _ = query_cli(filled, "SELECT exit_code, service_name FROM runs")
    assert out.splitlines()[0].split() == ["exit_code", "service_name"]
    assert out.splitlines()[-1] == "(1 row)"


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM spans",
        "INSERT INTO spans (name) VALUES ('x')",
        "DROP TABLE logs",
        "CREATE TABLE t AS SELECT 1",
        "ATTACH '/tmp/other.duckdb' AS other",
        "COPY spans TO '/tmp/leak.csv'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "PRAGMA version",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT 1; DELETE FROM spans",
        "SELEC 1",
    ],
)
def test_refused_in_one_line(filled: Path, sql: str) -> None:
    status, out, err = query_cli(filled, sql)
    assert status != 0
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("obsdash: "), err
    status, out, _ = query_cli(filled, "SELECT count(*) AS n FROM run_events", "json")
    assert json.loads(out) == [{"n": 2}]  # nothing was changed
