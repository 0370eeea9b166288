"""Retention: `--max-age` / `--max-size` prune old telemetry, the policy persists in the store, the data dir stays
under its cap while the sample shop runs, and the dashboard and `obsdash doctor` say what is kept."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from obsdash.datadir import DataDir
from obsdash.store.retention_policy import describe, format_size, parse_age, parse_size
from tests.conftest import REPO, child_env, obsdash_cmd, query, run, scalar

S = 1_000_000_000
AGE_TABLES = {"spans": "start_time", "span_events": "time", "logs": "time", "metric_points": "time"}


# -- spool records with chosen times ------------------------------------------------------------------------------
def _common(run_id: str) -> dict[str, Any]:
    return {"service_name": "ret", "run_id": run_id, "pid": 7, "resource": {"service.name": "ret"}}


def _span(n: int, at: int, run_id: str) -> dict[str, Any]:
    event = {"name": "exception", "time_ns": at, "attributes": {"exception.type": "ValueError"}}
    return {
        "trace_id": f"{n:032x}",
        "span_id": f"{n:016x}",
        "parent_span_id": None,
        "name": "GET /r",
        "kind": "SERVER",
        "start_ns": at,
        "end_ns": at + 2_000_000,
        "status_code": "ERROR",
        "status_message": None,
        "attributes": {"http.route": "/r"},
        "events": [event],
        "scope": "test",
        **_common(run_id),
    }


def _log(at: int, run_id: str) -> dict[str, Any]:
    return {"time_ns": at, "severity_text": "INFO", "severity_number": 9, "body": "hello", **_common(run_id)}


def _metric(at: int, run_id: str) -> dict[str, Any]:
    return {
        "time_ns": at,
        "start_ns": at - 5 * S,
        "name": "m",
        "unit": "1",
        "kind": "sum",
        "value": 1.0,
    } | _common(run_id)


def _run_event(event: str, at: int, run_id: str) -> dict[str, Any]:
    return {"event": event, "time_ns": at, "root": True, "command": "python app.py", **_common(run_id)}


def write(spool: Path, kind: str, records: list[dict[str, Any]], written_ns: int) -> str:
    """One segment named as written at `written_ns` (the archive is aged by that name); returns the name."""
    spool.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{kind}-{written_ns:020d}-7-{written_ns % 1_000_000:06d}.jsonl"
    (spool / name).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return name


def write_old_and_new(spool: Path, first: int) -> tuple[list[str], list[str]]:
    """Records two hours old (run `old`, all its data old) and a minute old (run `long`, started two hours ago
    and still sending), each kind in its own segments; the old and the new segment names."""
    now = time.time_ns()
    old, new = now - 2 * 3600 * S, now - 60 * S
    old_names = [
        write(spool, "spans", [_span(first, old, "old"), _span(first + 1, old + S, "old")], old),
        write(spool, "logs", [_log(old, "old")], old + 1),
        write(spool, "metrics", [_metric(old, "old")], old + 2),
        write(spool, "runs", [_run_event("start", old, "old"), _run_event("end", old + S, "old")], old + 3),
        write(spool, "runs", [_run_event("start", old, "long")], old + 4),
    ]
    new_names = [
        write(spool, "spans", [_span(first + 2, new, "long")], new),
        write(spool, "logs", [_log(new, "long")], new + 1),
        write(spool, "metrics", [_metric(new, "long")], new + 2),
    ]
    return old_names, new_names


def count(data_dir: Path, table: str, where: str = "true") -> int:
    return int(scalar(data_dir, f"SELECT count(*) FROM {table} WHERE {where}"))


def telemetry_bytes(data_dir: DataDir) -> int:
    """What counts against the size cap: the store, its WAL, spool/ingested/."""
    return sum(telemetry_parts(data_dir))


def telemetry_parts(data_dir: DataDir) -> tuple[int, int, int]:
    """(store, WAL, spool/ingested/) bytes."""
    try:
        archived = [Path(entry.path) for entry in os.scandir(data_dir.ingested)]
    except FileNotFoundError:
        archived = []
    store, wal = (
        _size(p) for p in (data_dir.database, data_dir.database.with_name(data_dir.database.name + ".wal"))
    )
    return store, wal, sum(_size(p) for p in archived)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


# -- (1) age -------------------------------------------------------------------------------------------------------
def test_max_age_prunes_every_table_and_persists(data_dir: Path) -> None:
    spool = DataDir(data_dir).spool
    old_names, new_names = write_old_and_new(spool, first=1)

    result = run(obsdash_cmd("ingest", "--data-dir", str(data_dir), "--max-age", "1h"))
    assert result.returncode == 0, result.stderr
    assert "keeping 1h / 2 GB" in result.stdout, result.stdout

    hour_ago = f"TIMESTAMP '{_utc_now() - timedelta(hours=1):%Y-%m-%d %H:%M:%S}'"
    for table, column in AGE_TABLES.items():
        assert count(data_dir, table, f"{column} < {hour_ago}") == 0, table
        assert count(data_dir, table) == 1, table  # the new row of each
    # run `old` has no data left: its start and end go; `long` started two hours ago but still has data
    assert query(data_dir, "SELECT run_id, event FROM run_events") == [{"run_id": "long", "event": "start"}]
    # what a rebuild could restore is gone with the rows: the old segments' files and their names
    archived = {p.name for p in DataDir(data_dir).ingested.iterdir()}
    assert archived == set(new_names)
    names = {row["name"] for row in query(data_dir, "SELECT name FROM ingested_segments")}
    assert names == set(new_names) and not names & set(old_names)
    meta = {row["key"]: row["value"] for row in query(data_dir, "SELECT * FROM obsdash_meta")}
    assert float(meta["retention.max_age_s"]) == 3600

    # a later ingest without the flag applies the saved policy
    write_old_and_new(spool, first=10)
    result = run(obsdash_cmd("ingest", "--data-dir", str(data_dir)))
    assert result.returncode == 0, result.stderr
    for table, column in AGE_TABLES.items():
        assert count(data_dir, table, f"{column} < {hour_ago}") == 0, table
        assert count(data_dir, table) == 2, table


def test_a_command_joining_a_running_hub_sets_its_policy(data_dir: Path) -> None:
    # the host is another process, as a user's dashboard would be (hosting it in the test process made the
    # outcome depend on what earlier tests left in it: it failed only in the full suite)
    host = subprocess.Popen(
        obsdash_cmd("serve", "--data-dir", str(data_dir)), env=child_env(), stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not (data_dir / "hub.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        write_old_and_new(DataDir(data_dir).spool, first=1)
        result = run(obsdash_cmd("ingest", "--data-dir", str(data_dir), "--max-age", "1h"))
        assert result.returncode == 0, result.stderr
        assert "keeping 1h / 2 GB" in result.stdout, result.stdout
        # the prune runs when the policy lands and again at the ingest after it; past that, at the age pass every
        # 30 s (retention.AGE_INTERVAL_S): wait up to that, ingesting, however the hub's watcher raced the command
        deadline = time.monotonic() + 40
        while count(data_dir, "spans") != 1 and time.monotonic() < deadline:
            run(obsdash_cmd("ingest", "--data-dir", str(data_dir)))
            time.sleep(0.5)
        assert count(data_dir, "spans") == 1
        assert host.poll() is None  # the policy reached the running host: it did the pruning
    finally:
        host.terminate()
        host.wait(timeout=30)


# -- (2) size while the sample shop runs --------------------------------------------------------------------------
CAP = 16_000_000
SLACK = 1_000_000
"""Above the cap the data dir may hold, for a moment, what one ingest pass adds before the retention pass right
after it (its segments moved into spool/ingested/ and its rows in the WAL: ~0.1-0.3 MB for 0.25 s of the shop),
and a checkpoint's new blocks written before the old ones are freed (a 256 KB block per table it rewrites)."""
TRAFFIC_S = 25.0


class Sampler:
    """The data dir's telemetry size every 0.1 s, in a thread."""

    def __init__(self, data_dir: DataDir) -> None:
        self.data_dir = data_dir
        self.samples: list[int] = []
        self.parts: list[tuple[int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            parts = telemetry_parts(self.data_dir)
            self.parts.append(parts)
            self.samples.append(sum(parts))

    def stop(self) -> list[int]:
        self._stop.set()
        self._thread.join()
        return self.samples


def test_retention_keeps_the_store_under_its_cap_while_the_sample_app_runs(tmp_path: Path) -> None:
    from sample_app.demo import kill_group, stop
    from sample_app.traffic import run_traffic

    data_dir = DataDir(tmp_path / "data")
    prefilled_at = prefill(data_dir.spool)  # the data dir starts near its cap: the shop's 25 s take it over
    # the hub lives in `obsdash tail --follow`, started with the cap; the shop's wrap and the queries join it
    hub = subprocess.Popen(
        obsdash_cmd("tail", "--follow", "--data-dir", str(data_dir.root), "--max-size", "16MB"),
        cwd=REPO,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    children: list[subprocess.Popen[bytes]] = [hub]
    try:
        deadline = time.monotonic() + 60
        while not data_dir.socket.exists() or any(data_dir.spool.glob("*.jsonl")):
            assert hub.poll() is None and time.monotonic() < deadline, "the hub did not ingest the prefill"
            time.sleep(0.1)
        app, app_url = start_shop(tmp_path, data_dir, children)
        sampler = Sampler(data_dir)
        sent = run_traffic(app_url, duration=TRAFFIC_S, concurrency=4)
        ended = _utc_now()
        assert stop(app, 10.0)
        # the hub's last ingest and retention passes: 1 s unloaded; a loaded CI run found the data dir still
        # 0.8 MB over (inside SLACK) one second after the shop stopped, so wait for the passes, up to 20 s
        settle = time.monotonic() + 20
        time.sleep(1.0)
        while telemetry_bytes(data_dir) > CAP and time.monotonic() < settle:
            time.sleep(0.25)
        samples = sampler.stop()
        status = _retention_status(data_dir)
        newest = scalar(data_dir.root, "SELECT max(start_time) FROM spans WHERE service_name = 'shop'")
        kept = query(
            data_dir.root,
            "SELECT count(*) AS n, min(start_time) AS first FROM spans WHERE run_id = 'prefill'",
        )
    finally:
        for child in children:
            if child.poll() is None:
                kill_group(child)
        hub_err = hub.stderr.read().decode(errors="replace") if hub.stderr else ""

    assert "Traceback" not in hub_err, hub_err
    curve = " ".join(format_size(s) for s in samples[:: max(1, len(samples) // 12)])
    print(
        f"{sum(sent.values())} requests; data dir: {curve}; peak {format_size(max(samples))}; {describe(status)}"
    )
    assert status["max_size"] == CAP
    peak = sampler.parts[samples.index(max(samples))]
    assert max(samples) <= CAP + SLACK, f"{curve}; at the peak store/WAL/archive = {peak}"
    # A running hub cannot shrink the DuckDB file, which keeps its high-water mark: what a peak's overshoot left
    # in it stays (status: over the cap) until the next hub opens the store and compacts it (a loaded CI run
    # ended at 16.8 MB). So: under the cap plus the slack now, and under the cap once a new hub has opened it.
    assert telemetry_bytes(data_dir) <= CAP + SLACK
    reopened = run(obsdash_cmd("ingest", "--data-dir", str(data_dir.root)))
    assert reopened.returncode == 0, reopened.stderr
    assert telemetry_bytes(data_dir) <= CAP, describe(_retention_status(data_dir))
    # retention had to act, oldest first: what is left of the older run is its newest part; the shop's last
    # requests are there
    assert status["last_prune"] is not None, status
    left = kept[0]["n"]
    assert left < len(prefilled_at), "nothing was pruned from the store"
    if left:
        assert datetime.fromisoformat(kept[0]["first"]) == prefilled_at[len(prefilled_at) - left]
    assert datetime.fromisoformat(newest) > ended - timedelta(seconds=5), (newest, ended)


def start_shop(
    tmp_path: Path, data_dir: DataDir, children: list[subprocess.Popen[bytes]]
) -> tuple[subprocess.Popen[bytes], str]:
    """The stand-in, and the sample shop under `obsdash wrap`, answering; (the shop's process, its URL)."""
    from sample_app.demo import free_ports, start, wait_for_http

    standin_port, app_port = free_ports(2)
    standin_url, app_url = f"http://127.0.0.1:{standin_port}", f"http://127.0.0.1:{app_port}"
    standin = start([sys.executable, "-m", "sample_app.standin", "--port", str(standin_port), "--seed", "1"])
    children.append(standin)
    wait_for_http(f"{standin_url}/", standin, "the stand-in")
    app_argv = ["--port", str(app_port), "--upstream", standin_url, "--llm-url", standin_url]
    app_argv += ["--db", str(tmp_path / "shop.db")]
    wrap = obsdash_cmd("wrap", "--data-dir", str(data_dir.root), "--service-name", "shop", "--")
    app = start([*wrap, sys.executable, "-m", "sample_app.app", *app_argv], tmp_path / "shop.log")
    children.append(app)
    wait_for_http(f"{app_url}/health", app, "the shop", tmp_path / "shop.log")
    return app, app_url


def prefill(spool: Path) -> list[datetime]:
    """Ten minutes old telemetry of another run: ~7 MB of segments, ~4 MB in the store (random payloads do not
    compress); the spans' start times, oldest first, as the store keeps them."""
    start = time.time_ns() - 600 * S
    times = []
    for n in range(12):
        at = start + n * 10 * S
        spans = [_span(n * 1000 + i, at + i * 5_000_000, "prefill") for i in range(1000)]
        for span in spans:
            span["attributes"]["payload"] = os.urandom(128).hex()
            times.append(datetime(1970, 1, 1) + timedelta(microseconds=span["start_ns"] // 1000))
        write(spool, "spans", spans, at)
    return times


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _retention_status(data_dir: DataDir) -> dict[str, Any]:
    from obsdash.hub.client import open_store

    store = open_store(data_dir)
    try:
        return dict(store.stats()["retention"])
    finally:
        store.close()


# -- a lowered cap: the file is compacted when the hub opens it ---------------------------------------------------
def test_a_lowered_cap_prunes_and_compacts_at_open(data_dir: Path) -> None:
    spool = DataDir(data_dir).spool
    start = time.time_ns() - 600 * S
    for n in range(40):  # 60k spans over the last ten minutes: ~45 MB of segments, a ~20 MB store
        at = start + n * 15 * S
        spans = [_span(n * 1500 + i, at + i * 10_000_000, "big") for i in range(1500)]
        for span in spans:
            span["attributes"]["payload"] = os.urandom(128).hex()  # what does not compress
        write(spool, "spans", spans, at)
    assert run(obsdash_cmd("ingest", "--data-dir", str(data_dir)), timeout=120).returncode == 0
    before = telemetry_bytes(DataDir(data_dir))
    assert before > 3 * CAP, format_size(before)

    result = run(obsdash_cmd("ingest", "--data-dir", str(data_dir), "--max-size", "16MB"), timeout=120)

    assert result.returncode == 0, result.stderr
    assert "keeping up to 16 MB" in result.stdout
    assert "compacted" in result.stderr, result.stderr
    assert telemetry_bytes(DataDir(data_dir)) <= CAP
    assert 0 < count(data_dir, "spans") < 60_000


# -- (3) the dashboard and doctor show the policy -----------------------------------------------------------------
def test_doctor_and_overview_show_the_policy(tmp_path: Path) -> None:
    from textual.widgets import Static

    from tests.tui.conftest import dashboard, wait_loaded
    from tests.tui.conftest import run as run_app
    from tests.tui.store import build_store

    store = build_store(tmp_path / "data")
    try:
        status = store.set_retention({"max_age_s": 30 * 86400, "max_size": 500_000_000})
        assert describe(status).startswith("keeping 30d / 500 MB, ")
        app = dashboard(store)

        async def scenario() -> None:
            async with app.run_test(size=(120, 30)) as pilot:
                screen = await wait_loaded(pilot, pilot.app.screen)
                health = str(screen.query_one("#health", Static).content)
                assert "keeping 30d / 500 MB, " in health and " used" in health, health

        run_app(scenario)
    finally:
        store.close()

    doctor = run(obsdash_cmd("doctor", "--data-dir", str(tmp_path / "data")))
    line = next(line for line in doctor.stdout.splitlines() if line.strip().startswith("retention"))
    assert "keeping 30d / 500 MB, " in line and " used" in line, doctor.stdout


# -- flags -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["ingest", "tail", "tui", "serve"])
@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--max-age", "7x", "not an age: '7x'"),
        ("--max-age", "10", "not an age: '10'"),
        ("--max-age", "10s", "at least 1m"),
        ("--max-size", "lots", "not a size: 'lots'"),
        ("--max-size", "8MB", "at least 16 MB"),
    ],
)
def test_a_bad_value_is_one_line_and_status_2(
    data_dir: Path, command: str, flag: str, value: str, says: str
) -> None:
    result = run(obsdash_cmd(command, "--data-dir", str(data_dir), flag, value))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"obsdash: argument {flag}: ") and says in lines[0], lines
    assert not data_dir.exists() or not DataDir(data_dir).database.exists()


def test_values_are_read_as_written() -> None:
    assert [parse_age(v) for v in ("90m", "24h", "7d", "2w", "1.5h", "none")] == [
        5400,
        86400,
        604800,
        1209600,
        5400,
        None,
    ]
    assert [parse_size(v) for v in ("500MB", "2GB", "1.5g", "512MiB", "off")] == [
        500_000_000,
        2_000_000_000,
        1_500_000_000,
        512 * 2**20,
        None,
    ]
    status = {"max_age_s": 86400.0, "max_size": 500_000_000, "used": 312_400_000}
    assert describe(status) == "keeping 1d / 500 MB, 312 MB used"
    assert (
        describe({"max_age_s": None, "max_size": 2_000_000_000, "used": 3_100_000})
        == "keeping up to 2 GB, 3.1 MB used"
    )
