"""S3: everything obsdash creates is private — directories 0700, files 0600 — even under `umask 000`.

The wrapped app and every obsdash process here run with umask 0, the worst a user's shell can hand them: the data
dir, spool/ and spool/ingested/, segment files (and the hidden temporary file each is written to first), the
DuckDB file and its WAL, DuckDB's temp_directory DIR/tmp, hub.sock, hub.lock, and a corrupt store moved aside.
(Supersedes tests/test_ingest.py::test_files_are_private, which checked the same under the default umask.)
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import child_env, obsdash_cmd, run, wrapped
from tests.spoolgen import write_segments

APP = "import logging, sqlite3; sqlite3.connect(':memory:').execute('SELECT 1'); logging.warning('private?')"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def assert_private(paths: list[Path]) -> int:
    """Every directory 0700 and every file or socket 0600; returns how many were checked."""
    wrong = [(str(p), oct(mode(p))) for p in paths if mode(p) != (0o700 if p.is_dir() else 0o600)]
    assert not wrong, wrong
    return len(paths)


def run_umask0(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return run(cmd, umask=0, **kwargs)


def test_wrapped_app_and_ingest_under_umask_0(data_dir: Path) -> None:
    result = run_umask0(wrapped(data_dir, sys.executable, "-c", APP))
    assert result.returncode == 0, result.stderr
    spool = data_dir / "spool"
    segments = sorted(spool.glob("*.jsonl"))
    assert {p.name.split("-")[0] for p in segments} >= {"spans", "logs", "runs"}, segments
    checked = assert_private([data_dir, spool, spool / "ingested", *segments])

    result = run_umask0(obsdash_cmd("ingest", "--data-dir", str(data_dir)))
    assert result.returncode == 0, result.stderr
    ingested = sorted((spool / "ingested").glob("*.jsonl"))
    assert len(ingested) == len(segments)
    checked += assert_private(
        [data_dir / "telemetry.duckdb", data_dir / "hub.lock", data_dir / "tmp", *ingested]
    )
    print(f"\nS3: {checked} paths private after wrap + ingest")


def test_a_data_dir_deleted_under_the_app_comes_back_private(data_dir: Path) -> None:
    """The spool writer recreates what was deleted (R2); under umask 0 the data dir came back 0777."""
    app = (
        "import logging, shutil, time; logging.warning('one'); time.sleep(0.6); "
        f"shutil.rmtree({str(data_dir)!r}); logging.warning('two'); time.sleep(0.6)"
    )
    result = run_umask0(wrapped(data_dir, sys.executable, "-c", app))
    assert result.returncode == 0, result.stderr
    segments = sorted((data_dir / "spool").glob("*.jsonl"))
    assert segments
    assert_private([data_dir, data_dir / "spool", *segments])


def test_a_running_hub_under_umask_0(data_dir: Path) -> None:
    """A hub that stays up (`tail --follow`) while segments arrive: its socket, lock and WAL, and its own umask,
    077, which covers what DuckDB creates later on its own (a WAL after a CHECKPOINT deleted it, spill files)."""
    assert run_umask0(obsdash_cmd("ingest", "--data-dir", str(data_dir))).returncode == 0
    hub = subprocess.Popen(
        obsdash_cmd("tail", "--data-dir", str(data_dir), "--follow"),
        env=child_env(),
        umask=0,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sock, wal = data_dir / "hub.sock", data_dir / "telemetry.duckdb.wal"
        wait_for(sock.exists)
        write_segments(data_dir / "spool", segments=3, spans_per_segment=50)
        wait_for(lambda: wal.exists() and not list((data_dir / "spool").glob("*.jsonl")))
        files = [data_dir / "telemetry.duckdb", wal, sock, data_dir / "hub.lock", data_dir / "tmp"]
        checked = assert_private(files + sorted((data_dir / "tmp").iterdir()))
        umask = next(
            line for line in Path(f"/proc/{hub.pid}/status").read_text().splitlines() if "Umask" in line
        )
        assert umask.split() == ["Umask:", "0077"], umask
    finally:
        hub.send_signal(signal.SIGINT)
        try:
            hub.wait(timeout=15)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()
    print(f"\nS3: {checked} paths private in a running hub")


def wait_for(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        time.sleep(0.05)


def test_a_corrupt_store_is_moved_aside_private(data_dir: Path) -> None:
    result = run_umask0(wrapped(data_dir, sys.executable, "-c", APP))
    assert run_umask0(obsdash_cmd("ingest", "--data-dir", str(data_dir))).returncode == 0, result.stderr
    database = data_dir / "telemetry.duckdb"
    database.write_bytes(os.urandom(64 * 1024))
    database.chmod(0o644)  # whoever damaged it left it readable: the copy obsdash keeps must not be
    result = run_umask0(obsdash_cmd("query", "--data-dir", str(data_dir), "SELECT count(*) FROM logs"))
    assert result.returncode == 0 and "rebuilding" in result.stderr, result.stderr
    aside = list(data_dir.glob("telemetry.duckdb.corrupt-*"))
    assert aside
    assert_private([*aside, database, data_dir])


def test_the_spool_writer_temporary_file_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hidden file a segment is written to before its rename, seen at the moment of the rename (it lives a
    few microseconds), with the process umask at 0."""
    from obsdash_instrumenters import spool

    seen: dict[str, int] = {}
    real_rename = os.rename

    def rename_and_look(src: str, dst: str) -> None:
        seen[os.path.basename(src)] = stat.S_IMODE(os.stat(src).st_mode)
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename_and_look)
    old = os.umask(0)
    try:
        spool._write_atomically(str(tmp_path), "logs-1-1-000001.jsonl", b"{}\n")
    finally:
        os.umask(old)
    assert seen == {".logs-1-1-000001.jsonl.tmp": 0o600}
    assert mode(tmp_path / "logs-1-1-000001.jsonl") == 0o600
