"""R2: a fault in obsdash never reaches the app — and what obsdash loses to it is counted.

Each test injects one fault while tests/apps/fault_app.py runs (sqlite3, logging, requests to a local server,
deterministic output) and compares the wrapped run with the bare one: status, stdout and stderr byte for byte —
exactly without strict mode, and with strict mode (OBSDASH_STRICT=1) after taking out its reports where the fault is
one obsdash swallows. Faults: the spool a regular file (ENOTDIR), on a read-only mount, deleted mid-run; the disk
full (a 256 kB tmpfs); the exporter, a segment write and the scrubber raising (OBSDASH_FAULTS); pricing raising in
the hub; the hub killed -9 while the app runs; the store corrupted while the app runs.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    STRICT_MARKER,
    assert_no_internal_errors,
    child_env,
    obsdash_cmd,
    query,
    run,
    scalar,
    wrapped,
)
from tests.reliability.faultkit import (
    FAULT_APP,
    Outcome,
    assert_same,
    assert_same_but_markers,
    env_for,
    execute,
    in_namespace,
    ingest,
    namespace_prefix,
    run_records,
    start_host,
)

ROUNDS = 12


def app(*at: tuple[int, str, Path], rounds: int = ROUNDS, pause: float = 0.02, payload: int = 0) -> list[str]:
    """The fault app's command line; `at` = (round, action, path) faults it does to itself."""
    command = [sys.executable, FAULT_APP, str(rounds), "--pause", str(pause), "--payload", str(payload)]
    for round_, action, path in at:
        command += ["--at", str(round_), action, str(path)]
    return command


def scratch_spool(tmp_path: Path) -> Path:
    """A stand-in spool for the bare run's self-inflicted faults."""
    path = tmp_path / "bare-scratch" / "spool"
    path.mkdir(parents=True, exist_ok=True)
    return path


def end_record(data_dir: Path) -> dict[str, Any]:
    (end,) = run_records(data_dir)
    return end


@pytest.fixture(scope="module")
def clean_spans(tmp_path_factory: pytest.TempPathFactory) -> int:
    """How many spans the fault app makes when nothing goes wrong (the `written` count of a clean run)."""
    clean = tmp_path_factory.mktemp("clean-run")
    result = execute(wrapped(clean, *app()), env_for(fast=True))
    assert result.status == 0, result.err
    count: int = end_record(clean)["written"]["spans"]
    assert count >= ROUNDS * 4  # round, INSERT, SELECT, GET per round
    return count


# -- the spool unwritable, deleted, full ---------------------------------------------------------------------
def test_spool_turned_into_a_regular_file(data_dir: Path, tmp_path: Path) -> None:
    """ENOTDIR from round 3 on. Run as root, chmod would not stop us; a file where the directory was does."""
    env = env_for(fast=True)
    bare = execute(app((3, "fileify", scratch_spool(tmp_path))), env)
    wrapped_run = execute(wrapped(data_dir, *app((3, "fileify", data_dir / "spool"))), env)
    assert_same(
        bare, wrapped_run
    )  # strict mode on, and not one report: a failed write is counted, not an error
    assert (data_dir / "spool").is_file()
    # what obsdash counted cannot reach the disk either: the end record is lost with everything else


def test_spool_on_a_read_only_mount(data_dir: Path) -> None:
    if namespace_prefix() is None:
        pytest.skip("no mount namespace here (unshare --user --mount and unshare --mount both failed)")
    env = env_for(fast=True)
    prepared = execute(
        wrapped(data_dir, sys.executable, "-c", "pass"), env
    )  # the data dir as a first run leaves it
    assert prepared.status == 0, prepared.err
    before = sorted(p.name for p in (data_dir / "spool").iterdir())
    bare = execute(app(), env)
    setup = f"mount --bind {data_dir} {data_dir}\nmount -o remount,bind,ro {data_dir}"
    wrapped_run = in_namespace(setup, wrapped(data_dir, *app()), env)
    assert_same(bare, wrapped_run)
    assert sorted(p.name for p in (data_dir / "spool").iterdir()) == before  # nothing written, nothing broken


def test_spool_deleted_mid_run(data_dir: Path, tmp_path: Path) -> None:
    """The app deletes the spool before round 5: the writer recreates it and everything from then on lands."""
    env = env_for(fast=True)
    bare = execute(app((5, "rmtree", scratch_spool(tmp_path))), env)
    wrapped_run = execute(wrapped(data_dir, *app((5, "rmtree", data_dir / "spool"))), env)
    assert_same(bare, wrapped_run)
    end = end_record(data_dir)
    assert (end["exit_code"], end["dropped"]) == (0, {})
    ingest(data_dir)
    stored = query(data_dir, "SELECT DISTINCT attributes.seq::INT AS seq FROM spans WHERE name = 'round'")
    assert set(range(5, ROUNDS)) <= {row["seq"] for row in stored}
    assert scalar(data_dir, "SELECT count(*) FROM logs WHERE body = 'round 11 done'") == 1


def test_disk_full(data_dir: Path, tmp_path: Path) -> None:
    """A 256 kB tmpfs with 32 kB left: every span segment (a 40 kB attribute each) fails with ENOSPC; small
    segments (logs, run records) still fit. The app sees nothing; the drops are counted as disk_full."""
    if namespace_prefix() is None:
        pytest.skip("no mount namespace here (unshare --user --mount and unshare --mount both failed)")
    mount = tmp_path / "tiny"
    mount.mkdir()
    out = tmp_path / "copied-out"
    out.mkdir()
    data = mount / "data"
    env = env_for()  # the default batch delay: the whole run fits in a few segments
    command = app(rounds=4, pause=0, payload=40_000)
    setup = f"mount -t tmpfs -o size=256k tmpfs {mount}\ndd if=/dev/zero of={mount}/filler bs=4096 count=56 2>/dev/null"
    after = f"cp -r {data}/spool {out}/"
    bare = execute(command, env)
    wrapped_run = in_namespace(setup, wrapped(data, *command), env, after=after)
    assert_same(bare, wrapped_run)
    copied = out  # run_records wants DIR/spool
    ends = run_records(copied)
    assert not list((out / "spool").glob("spans-*.jsonl"))
    assert len(ends) == 1, "the end record did not fit either"
    dropped = ends[0]["dropped"]
    assert dropped.get("disk_full", 0) >= 4, (
        dropped
    )  # at least the four round spans, each in a failed segment
    print(f"disk full: end record written, dropped {dropped}")


# -- in-app code raising (OBSDASH_FAULTS) --------------------------------------------------------------------
@pytest.mark.parametrize("strict", [True, False])
def test_exporter_raising(data_dir: Path, clean_spans: int, strict: bool) -> None:
    """Every span export raises: the app is untouched, every span is counted as dropped (export_error) and as an
    internal error — as many as a clean run writes."""
    expected = clean_spans
    env = env_for(strict=strict, fast=True, faults="exporter")
    bare = execute(app(), env)
    wrapped_run = execute(wrapped(data_dir, *app()), env)
    if strict:
        assert assert_same_but_markers(bare, wrapped_run) == expected  # one report per span
    else:
        assert_same(bare, wrapped_run)
    end = end_record(data_dir)
    assert end["dropped"] == {"export_error": expected}
    assert end["internal_errors"] == {"span.encode": expected}
    assert "spans" not in end["written"] and end["written"]["logs"] == ROUNDS


def test_span_segment_write_raising(data_dir: Path, clean_spans: int) -> None:
    """Every span segment write raises (not an OSError): the spans are dropped and counted as write_error; the
    logs and run records are still written."""
    expected = clean_spans
    env = env_for(fast=True, faults="spool_write.spans")
    bare = execute(app(), env)
    wrapped_run = execute(wrapped(data_dir, *app()), env)
    assert assert_same_but_markers(bare, wrapped_run) >= 1
    end = end_record(data_dir)
    assert end["dropped"] == {"write_error": expected}
    assert end["internal_errors"]["spool.write"] >= 1
    assert end["written"]["logs"] == ROUNDS and "spans" not in end["written"]


def test_strict_mode_reports_a_swallowed_fault(data_dir: Path) -> None:
    """Strict mode is what makes the suite fail when obsdash swallows an error: an injected fault prints the
    marker, so `assert_no_internal_errors` (used by every wrapped run in the suite) would fail."""
    env = env_for(faults="exporter")
    result = execute(wrapped(data_dir, *app(rounds=1)), env)
    assert result.status == 0
    assert f"{STRICT_MARKER}: span.encode: Traceback" in result.err
    assert "InjectedFault: fault injected at exporter" in result.err
    with pytest.raises(AssertionError):
        assert_no_internal_errors(result.err)


# -- the dashboard side -------------------------------------------------------------------------------------
def test_hub_killed_while_the_app_runs(data_dir: Path) -> None:
    """kill -9 of the hub mid-run: the app never notices; a new `obsdash ingest` stores every span exactly once."""
    rounds = 40
    env = env_for(fast=True)
    bare = execute(app(rounds=rounds), env)
    host = start_host(data_dir)
    proc = subprocess.Popen(
        wrapped(data_dir, *app(rounds=rounds)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    # a quarter of the way in: the hub has ingested some segments, more are coming
    head = b"".join(proc.stdout.readline() for _ in range(rounds // 4))
    host.send_signal(signal.SIGKILL)
    host.wait()
    stdout, stderr = proc.communicate(timeout=60)
    assert_same(bare, Outcome(proc.returncode, head + stdout, stderr))
    ingest(data_dir)
    written = end_record(data_dir)["written"]["spans"]
    (row,) = query(data_dir, "SELECT count(*) AS n, count(DISTINCT span_id) AS d FROM spans")
    assert row == {"n": written, "d": written}
    assert scalar(data_dir, "SELECT count(DISTINCT attributes.seq) FROM spans WHERE name = 'round'") == rounds


def test_store_corrupted_while_the_app_runs(data_dir: Path, tmp_path: Path) -> None:
    """The store is overwritten with garbage before round 4: the app never notices (it does not read the store);
    the next reader moves the file aside with one clear line and rebuilds it from the spool — both runs' data."""
    env = env_for(fast=True)
    first = execute(wrapped(data_dir, *app(rounds=3)), env)
    assert first.status == 0
    ingest(data_dir)
    database = data_dir / "telemetry.duckdb"
    scratch_db = tmp_path / "bare-scratch.duckdb"
    scratch_db.write_bytes(database.read_bytes())
    bare = execute(app((4, "corrupt", scratch_db)), env)
    wrapped_run = execute(wrapped(data_dir, *app((4, "corrupt", database))), env)
    assert_same(bare, wrapped_run)
    result = subprocess.run(
        obsdash_cmd(
            "query",
            "--data-dir",
            str(data_dir),
            "--format",
            "csv",
            "SELECT count(*) AS n FROM spans WHERE name = 'round'",
        ),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["n", str(3 + ROUNDS)]
    (message,) = result.stderr.splitlines()
    assert message.startswith(f"obsdash: {database} was damaged (") and "rebuilding from" in message
    (aside,) = data_dir.glob("telemetry.duckdb.corrupt-*")
    assert stat.S_IMODE(aside.stat().st_mode) == 0o600


# -- pricing (dashboard side) ---------------------------------------------------------------------------------
def _llm_spool(data_dir: Path) -> int:
    from tests.test_llm_store import CALLS, write_calls

    write_calls(data_dir / "spool", CALLS, 1)
    return len(CALLS)


def test_pricing_raising_in_ingest(data_dir: Path) -> None:
    """`obsdash ingest` and `obsdash query` (each its own hub) with pricing raising: every span stored, LLM calls
    unpriced (NULL, never $0), one line on stderr; without the fault the next hub prices them."""
    calls = _llm_spool(data_dir)
    faulty = child_env(OBSDASH_FAULTS="pricing")
    warning = (
        "obsdash: pricing LLM calls failed (InjectedFault: fault injected at pricing); they stay unpriced"
    )
    assert ingest(data_dir, env=faulty).stderr.splitlines() == [warning]
    sql = "SELECT count(*) AS n, count(cost_usd) AS priced, sum(input_tokens) > 0 AS tokens FROM llm_calls"
    result = run(obsdash_cmd("query", "--data-dir", str(data_dir), "--format", "json", sql), env=faulty)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": calls, "priced": 0, "tokens": True}]
    assert result.stderr.splitlines() == [warning]
    assert scalar(data_dir, "SELECT count(cost_usd) FROM llm_calls") > 0  # fault gone: priced at hub start


def test_pricing_raising_in_a_long_running_hub(data_dir: Path) -> None:
    """A hub that keeps failing to price warns once, not at every ingest, and keeps ingesting."""
    host = start_host(data_dir, env=child_env(OBSDASH_FAULTS="pricing"))
    try:
        calls = _llm_spool(data_dir)
        assert scalar(data_dir, "SELECT count(*) FROM llm_calls WHERE cost_usd IS NULL") == calls
        from tests.spoolgen import write_segments

        more = write_segments(data_dir / "spool", segments=2, spans_per_segment=5)
        assert scalar(data_dir, "SELECT count(*) FROM spans WHERE name = 'GET /x'") == more
    finally:
        host.send_signal(signal.SIGTERM)
        _, stderr = host.communicate(timeout=30)
    warnings = [line for line in stderr.splitlines() if "pricing LLM calls failed" in line]
    assert len(warnings) == 1, stderr


# -- the scrubber (in-app) -------------------------------------------------------------------------------------
def test_scrubber_raising(data_dir: Path, clean_spans: int) -> None:
    """The scrubber raising: the app is untouched and nothing unscrubbed is written — the records are dropped and
    counted, once each (scrub_error)."""
    if importlib.util.find_spec("obsdash_instrumenters.scrub") is None:
        pytest.skip("obsdash_instrumenters/scrub.py is not in this tree yet")
    expected = clean_spans
    env = env_for(strict=False, fast=True, faults="scrubber")
    bare = execute(app(), env)
    wrapped_run = execute(wrapped(data_dir, *app()), env)
    assert_same(bare, wrapped_run)
    assert not list((data_dir / "spool").glob("spans-*.jsonl"))
    end = end_record(data_dir)
    assert end["dropped"].get("scrub_error", 0) >= expected + ROUNDS, end[
        "dropped"
    ]  # every span and log line
    assert "export_error" not in end["dropped"]  # counted once, as what it is
    # internal errors: one more, the resource (left out of every record, no record lost)
    assert end["internal_errors"]["scrub"] >= end["dropped"]["scrub_error"]
