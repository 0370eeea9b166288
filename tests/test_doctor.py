"""`obsdash doctor`: what a real wrapped run instrumented, skipped and lost, and the exit status that says so.

The runs are real (`obsdash wrap` of a script importing sqlite3 and requests, one instrumentor disabled; the span
burst of the R3 test against a stalled spool); doctor runs as a user runs it, as a subprocess.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.conftest import APPS, assert_no_internal_errors, child_env, obsdash_cmd, run, scalar, wrapped
from tests.spoolgen import write_segments

APP = """
import sqlite3
import requests
sqlite3.connect(":memory:").execute("select 1")
print("done")
"""


def doctor(data_dir: Path, *args: str) -> tuple[int, str, str]:
    result = run(obsdash_cmd("doctor", "--data-dir", str(data_dir), *args))
    return result.returncode, result.stdout, result.stderr


def section(output: str, run_id: str) -> str:
    """Doctor's lines about one run."""
    blocks = output.split("\n\n")
    return next(block for block in blocks if block.startswith(f"run {run_id} "))


def row(output: str, label: str) -> str:
    """The value part of doctor's `  <label>   value` line (the first one)."""
    for line in output.splitlines():
        if line.startswith(f"  {label} "):
            return line[len(label) + 2 :].strip()
    raise AssertionError(f"no {label!r} line in:\n{output}")


def test_clean_run_lists_instrumented_skipped_and_startup_and_exits_0(data_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(APP)
    env = child_env(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="urllib3")
    app = run(wrapped(data_dir, sys.executable, str(script)), env=env)
    assert app.returncode == 0 and app.stdout == "done\n", app.stderr
    assert_no_internal_errors(app.stderr)

    status, out, err = doctor(data_dir)

    assert status == 0, out + err
    run_id = scalar(data_dir, "SELECT run_id FROM runs")
    startup_ms = float(
        scalar(data_dir, "SELECT details->>'$.startup_ms' FROM run_events WHERE event = 'start'")
    )
    assert f"run {run_id}  app  {sys.executable} {script}" in out
    instrumented = row(out, "instrumented")
    assert "requests" in instrumented and "sqlite3" in instrumented and "urllib3" not in instrumented
    assert "urllib3 (OTEL_PYTHON_DISABLED_INSTRUMENTATIONS)" in row(out, "skipped")
    assert row(out, "start-up").startswith(f"{startup_ms:.1f} ms in bootstrap;")
    assert "exit 0, 1 process" in row(out, "when")
    assert row(out, "dropped") == "none"
    assert row(out, "internal errors") == "none"
    assert row(out, "file modes") == "private (dirs 700, files 600)"
    assert "verdict: healthy" in out
    assert "\x1b[" not in out  # not a terminal: plain text


def test_drops_make_exit_1_and_run_selects_one_run(data_dir: Path) -> None:
    # a stalled spool and a queue of 100: most of the 3000 spans are dropped (counted as queue_full)
    env = child_env(OBSDASH_FAULTS="spool_stall", OBSDASH_MAX_QUEUED="100")
    burst = run(wrapped(data_dir, sys.executable, str(APPS / "span_burst.py"), "1000"), env=env, input="\n")
    assert burst.returncode == 0, burst.stderr
    clean = run(wrapped(data_dir, sys.executable, "-c", "pass"))
    assert clean.returncode == 0, clean.stderr
    burst_run = scalar(data_dir, "SELECT run_id FROM runs WHERE command LIKE '%span_burst%'")
    dropped = int(
        scalar(
            data_dir,
            "SELECT details->>'$.dropped.queue_full' FROM run_events WHERE event = 'end' "
            f"AND run_id = '{burst_run}'",
        )
    )
    assert dropped > 2000

    status, out, err = doctor(data_dir)
    assert status == 1, out + err
    assert row(section(out, burst_run), "dropped") == f"{dropped} queue_full"
    assert "verdict: 1 problem" in out
    assert f"run {burst_run}: {dropped} records dropped (queue_full" in out

    clean_run = scalar(data_dir, f"SELECT run_id FROM runs WHERE run_id <> '{burst_run}'")
    status, out, err = doctor(data_dir, "--run", clean_run)
    assert status == 0, out + err
    assert burst_run not in out and "verdict: healthy" in out


def test_bad_lines_and_readable_files_are_problems(data_dir: Path) -> None:
    spool = data_dir / "spool"
    write_segments(spool, segments=1, spans_per_segment=5)
    bad = spool / "spans-00000000000000000001-1-000001.jsonl"
    bad.write_bytes(b'{"trace_id": 1}\nnot json\n')
    # explicit modes: a hub hosted earlier in this pytest process leaves umask 077 (database.py)
    os.chmod(bad, 0o644)
    os.chmod(data_dir, 0o755)

    status, out, err = doctor(data_dir)

    assert status == 1, out + err
    assert "2 bad lines skipped" in row(out, "ingest")
    assert "spans-00000000000000000001-1-000001.jsonl (2)" in out
    assert row(out, "file modes").startswith("./ 755 (want 700)")
    assert "spool/spans-00000000000000000001-1-000001.jsonl 644 (want 600)" in row(out, "file modes")
    assert "no runs in the store yet" in out
    assert "2 bad lines skipped at ingest" in out


@pytest.mark.parametrize("case", ["missing", "file", "unknown-run"])
def test_errors_are_one_line_and_exit_2(data_dir: Path, tmp_path: Path, case: str) -> None:
    args: list[str] = []
    if case == "file":
        data_dir = tmp_path / "not-a-dir"
        data_dir.write_text("")
    if case == "unknown-run":
        write_segments(data_dir / "spool", segments=1, spans_per_segment=1)
        args = ["--run", "20990101-000000-beef"]

    status, out, err = doctor(data_dir, *args)

    assert status == 2, out + err
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("obsdash: "), err
    expected = {
        "missing": "no obsdash data in",
        "file": "is not a directory",
        "unknown-run": "no run 20990101",
    }
    assert expected[case] in err
