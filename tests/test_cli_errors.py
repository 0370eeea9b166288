"""Bad input anywhere on the command line: one line on stderr saying what is wrong (and what to do), a non-zero
status, no traceback, and nothing removed — the store next to it keeps every byte.

A store written by a newer obsdash is refused the same way: tests/test_ingest.py::
test_store_from_a_newer_obsdash_is_refused_and_kept.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import child_env, obsdash_cmd, run, wrapped
from tests.reliability.faultkit import in_namespace, namespace_prefix

COUNTS = (
    "SELECT (SELECT count(*) FROM logs) AS logs, (SELECT count(*) FROM spans) AS spans, "
    "(SELECT count(*) FROM run_events) AS runs, (SELECT count(*) FROM ingested_segments) AS segments"
)


def snapshot(root: Path) -> dict[str, Any]:
    """Every file under `root` with a hash of its bytes, and the store's row counts. (The database file's own
    bytes change whenever a hub opens it: the views are recreated and prices refreshed on each open.)"""
    files = {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in ("hub.sock", "telemetry.duckdb", "telemetry.duckdb.wal")
    }
    result = run(obsdash_cmd("query", "--data-dir", str(root), "--format", "csv", COUNTS))
    assert result.returncode == 0, result.stderr
    return {"files": files, "counts": result.stdout}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real store (a wrapped run, ingested); every test checks it is untouched afterwards."""
    data_dir = tmp_path_factory.mktemp("cli-errors") / "data"
    result = run(wrapped(data_dir, sys.executable, "-c", "import logging; logging.warning('kept')"))
    assert result.returncode == 0, result.stderr
    assert run(obsdash_cmd("ingest", "--data-dir", str(data_dir))).returncode == 0
    before = snapshot(data_dir)
    yield data_dir
    assert snapshot(data_dir) == before


def obsdash(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """The CLI with stdin from /dev/null (never a terminal), stdout and stderr captured."""
    return run(obsdash_cmd(*args), stdin=subprocess.DEVNULL, timeout=30, **kwargs)


def assert_one_line(result: Any, *expected: str, status: int = 2) -> None:
    stderr = result.stderr if isinstance(result.stderr, str) else result.stderr.decode()
    code = getattr(result, "returncode", getattr(result, "status", None))
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("obsdash: "), stderr
    assert all(part in lines[0] for part in expected), (expected, lines[0])
    assert code == status, (code, stderr)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["frobnicate"], ["invalid choice: 'frobnicate'", "--help"]),
        (["--frobnicate"], ["unrecognized arguments: --frobnicate"]),
        (["query", "--data-dir"], ["--data-dir: expected one argument"]),
        (["query", "--format", "xml", "SELECT 1"], ["invalid choice: 'xml'"]),
        (["tail", "--window", "nonsense"], ["--window: invalid choice: 'nonsense'", "5m"]),
        (["tui", "--window", "nonsense"], ["--window: invalid choice: 'nonsense'"]),
        (["tui", "--budget-per-day", "-5"], ["a budget must be more than $0, not '-5'"]),
        (["tail", "--budget-per-day", "abc"], ["not an amount of dollars: 'abc'"]),
        (["wrap"], ["nothing to run", "usage: obsdash wrap"]),
        (["wrap", "--", "no-such-command-obsdash"], ["command not found: no-such-command-obsdash", "PATH"]),
    ],
)
def test_usage_errors(store: Path, args: list[str], expected: list[str]) -> None:
    assert_one_line(
        obsdash(*args, "--data-dir", str(store)) if args[0] == "tail" else obsdash(*args), *expected
    )


def test_sql_errors(store: Path) -> None:
    for sql, expected in [
        ("SELEC 1", 'syntax error at or near "SELEC"'),
        ("SELECT * FROM no_such_table", "no_such_table does not exist"),
        ("SELECT nope FROM logs", 'column "nope" not found'),
    ]:
        assert_one_line(obsdash("query", "--data-dir", str(store), sql), "SQL error", expected)


def test_data_dir_that_cannot_be(store: Path, tmp_path: Path) -> None:
    """A path under a regular file (ENOTDIR), a regular file, a directory that does not exist (for query)."""
    regular = tmp_path / "a-file"
    regular.write_text("not a directory\n")
    under = regular / "data"
    for command in (["wrap", "--data-dir", str(under), "--", "true"], ["ingest", "--data-dir", str(under)]):
        assert_one_line(obsdash(*command), f"cannot create the data directory {under}", "Not a directory")
    for command in (
        ["query", "--data-dir", str(regular), "SELECT 1"],
        ["ingest", "--data-dir", str(regular)],
    ):
        assert_one_line(obsdash(*command), f"{regular} is a file, not a directory")
    assert regular.read_text() == "not a directory\n"
    missing = tmp_path / "no" / "such" / "data"
    assert_one_line(obsdash("query", "--data-dir", str(missing), "SELECT 1"), f"no obsdash data in {missing}")
    assert not (tmp_path / "no").exists()  # a typo does not become a new, empty store


@pytest.mark.skipif(namespace_prefix() is None, reason="no mount namespace (unshare) here")
def test_data_dir_on_a_read_only_mount(store: Path, tmp_path: Path) -> None:
    """A new data dir on a read-only mount, and the existing store remounted read-only: ingest and tail need
    hub.lock and the database writable; one line each (a traceback from hub.lock before)."""
    empty = tmp_path / "ro"
    empty.mkdir()
    setup = "\n".join(f"mount --bind {d} {d} && mount -o remount,bind,ro {d}" for d in (empty, store))
    new = in_namespace(setup, obsdash_cmd("ingest", "--data-dir", str(empty / "data")), child_env())
    assert_one_line(new, "cannot create the data directory", "Read-only file system")
    for command in (["ingest"], ["tail"], ["query", "SELECT count(*) FROM logs"]):
        outcome = in_namespace(
            setup, obsdash_cmd(*command[:1], "--data-dir", str(store), *command[1:]), child_env()
        )
        assert_one_line(outcome, "Read-only file system", str(store), status=1)


def test_the_dashboard_without_a_terminal(store: Path) -> None:
    """`obsdash tui` (and `obsdash` alone) from a script or a pipe: one line at once, not a screen drawn into
    the pipe and a wait for keys that never come."""
    for args in (["tui", "--data-dir", str(store)], ["--data-dir", str(store)]):
        result = obsdash(*args)
        assert_one_line(result, "the dashboard needs a terminal", "obsdash tail")
        assert result.stdout == ""


def test_a_reader_that_stops_early_is_not_an_error(store: Path) -> None:
    """`obsdash query ... | head -1`: the closed pipe ends the command quietly, with status 0."""
    query = obsdash_cmd(
        "query", "--data-dir", str(store), "--max-rows", "100000", "SELECT * FROM range(100000)"
    )
    with subprocess.Popen(query, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env()) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()  # the reader goes away with the rest unread
        stderr = proc.stderr.read().decode()
        status = proc.wait(timeout=30)
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert status == 0, stderr
