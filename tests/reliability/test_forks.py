"""R5 — forks: every worker's telemetry arrives, nothing is lost silently, nothing deadlocks.

Each test knows from the client side how many spans the app made (one SERVER span per HTTP request, plus the
spans the app makes on purpose) and checks CONSERVATION against the store: created = stored + counted as dropped.
Drop counts travel in each process's end record, which a server process writes only when it exits, so servers
are stopped the way a user would (SIGTERM / Ctrl-C) before the store is read. Every wait has a timeout, so a
deadlock fails a test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import (
    APPS,
    assert_no_internal_errors,
    child_env,
    free_port,
    query,
    run,
    scalar,
    wait_for_port,
    wrapped,
)

BIN = Path(sys.executable).parent
WORK_ROUTE = "/work/<int:n>"


# -- helpers ------------------------------------------------------------------------------------------


def start_server(data_dir: Path, command: list[str], port: int, **popen: Any) -> subprocess.Popen[str]:
    """Start `command` under obsdash wrap and wait until it listens on `port`."""
    popen.setdefault("env", child_env())
    server = subprocess.Popen(
        wrapped(data_dir, *command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )
    try:
        wait_for_port(port, timeout=30)
    except TimeoutError:
        server.kill()
        raise AssertionError(server.communicate(timeout=10)[0]) from None
    return server


def stop_server(server: subprocess.Popen[str], sig: int = signal.SIGTERM) -> str:
    """Stop the server as a user would; its output. A server that does not stop in 30 s fails the test."""
    server.send_signal(sig)
    try:
        output, _ = server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        output, _ = server.communicate(timeout=10)
        raise AssertionError(f"the server did not stop on signal {sig}:\n{output}") from None
    assert_no_internal_errors(output)
    return output


def hammer(port: int, count: int, clients: int = 16, path: str = "/work/{}") -> list[dict[str, Any]]:
    """`count` GET requests from `clients` threads; the JSON answers (every one must be a 200)."""

    def get(n: int) -> dict[str, Any]:
        answer = requests.get(f"http://127.0.0.1:{port}{path.format(n)}", timeout=20)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(get, range(count)))


def hammer_all_workers(port: int, workers: int, count: int, path: str = "/work/{}") -> list[dict[str, Any]]:
    """Batches of `count` requests until `workers` distinct pids have answered (workers still booting when the
    port opens get their share of a later batch); every answer, for the span count."""
    answers: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while len({a["pid"] for a in answers}) < workers and time.monotonic() < deadline:
        answers += hammer(port, count, path=path)
    return answers


def dropped_total(data_dir: Path) -> int:
    """Records every process of the store counted as dropped, from their end records."""
    rows = query(data_dir, "SELECT details->'dropped' AS dropped FROM run_events WHERE event = 'end'")
    return sum(sum(json.loads(r["dropped"] or "{}").values()) for r in rows)


def assert_every_process_ended(data_dir: Path) -> None:
    """Each process that recorded a start also recorded its end (so its drop counts are known)."""
    rows = query(
        data_dir,
        "SELECT pid FROM run_events WHERE event = 'start' EXCEPT SELECT pid FROM run_events WHERE event = 'end'",
    )
    assert rows == [], f"processes without an end record: {rows}"


def assert_conserved(data_dir: Path, created: int, stored: int) -> None:
    """created = stored + dropped: a span the store lacks must have been counted as dropped."""
    assert stored <= created, f"{stored} spans stored but only {created} made: duplicates"
    assert created - stored <= dropped_total(data_dir), f"{created - stored} spans lost without a count"


def work_spans_by_pid(data_dir: Path) -> dict[int, tuple[int, int]]:
    """pid -> (SERVER spans of the work route, the app's own work spans)."""
    rows = query(
        data_dir,
        f"""SELECT pid, count(*) FILTER (WHERE kind = 'SERVER' AND http_route = '{WORK_ROUTE}') AS server,
                   count(*) FILTER (WHERE name = 'fork_app.work') AS own
            FROM spans GROUP BY pid HAVING server > 0 OR own > 0""",
    )
    return {r["pid"]: (r["server"], r["own"]) for r in rows}


def check_work_served(data_dir: Path, answers: list[dict[str, Any]], workers: int) -> None:
    """Every worker that answered has all its spans stored, under its own pid; conservation over the run."""
    answered_by = Counter(a["pid"] for a in answers)
    assert len(answered_by) == workers, answered_by
    stored = work_spans_by_pid(data_dir)
    assert set(stored) == set(answered_by), (stored, answered_by)
    assert_every_process_ended(data_dir)
    for kind in (0, 1):  # the SERVER spans, then the app's own
        assert_conserved(data_dir, len(answers), sum(s[kind] for s in stored.values()))
    assert stored == {pid: (n, n) for pid, n in answered_by.items()}  # drops are 0 at these rates


# -- servers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preload", [False, True], ids=["fork-after-import", "preload"])
def test_gunicorn_four_sync_workers(data_dir: Path, preload: bool) -> None:
    """gunicorn -w 4 (and --preload: the app and the SDK imported in the master before the fork, its threads
    gone in the workers and its locks copied as they were) under 400 requests from 16 client threads."""
    gunicorn = shutil.which("gunicorn", path=str(BIN))
    assert gunicorn
    port = free_port()
    command = [gunicorn, "-w", "4", "-b", f"127.0.0.1:{port}", "--chdir", str(APPS), "fork_app:app"]
    server = start_server(data_dir, [*command, *(["--preload"] if preload else [])], port)
    try:
        answers = hammer_all_workers(port, 4, 400)
    finally:
        output = stop_server(server)
    assert server.returncode == 0, output
    check_work_served(data_dir, answers, workers=4)
    starts = scalar(data_dir, "SELECT count(DISTINCT pid) FROM run_events WHERE event = 'start'")
    assert starts == 5, output  # the arbiter and four workers


def test_uvicorn_two_spawned_workers(data_dir: Path) -> None:
    """uvicorn --workers 2 starts its workers with multiprocessing's spawn: each is a fresh wrapped Python."""
    port = free_port()
    command = [str(BIN / "uvicorn"), "--app-dir", str(APPS), "fork_fastapi:app", "--port", str(port)]
    server = start_server(data_dir, [*command, "--workers", "2"], port)
    try:
        answers = hammer_all_workers(port, 2, 200, path="/pid/{}")
    finally:
        output = stop_server(server)
    assert server.returncode == 0, output
    answered_by = Counter(a["pid"] for a in answers)
    assert len(answered_by) == 2, answered_by
    rows = query(
        data_dir,
        "SELECT pid, count(*) AS n FROM spans WHERE kind = 'SERVER' AND http_route = '/pid/{n}' GROUP BY pid",
    )
    stored = {r["pid"]: r["n"] for r in rows}
    assert_every_process_ended(data_dir)
    assert_conserved(data_dir, len(answers), sum(stored.values()))
    assert stored == dict(answered_by)  # each worker's spans under its own pid; drops are 0 at this rate


# -- fork while other threads hold locks ----------------------------------------------------------------


def test_fork_storm_no_deadlock_nothing_lost(data_dir: Path) -> None:
    """40 forks (each child forks once more) while three threads make spans, log lines and metric points
    flat out: no child hangs on a lock copied held (the SDK's metric locks did, ~1 fork in 10, before
    providers.py reset them in the child), every span and every metric increment is stored exactly once."""
    forks = 40
    result = run(wrapped(data_dir, sys.executable, str(APPS / "fork_storm.py"), str(forks), "3"), timeout=100)
    assert_no_internal_errors(result.stderr)
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout)
    assert "HUNG" not in result.stderr and made["statuses"] == [0] * forks, result.stderr[-3000:]
    assert_every_process_ended(data_dir)
    stored = {r["name"]: r["n"] for r in query(data_dir, "SELECT name, count(*) AS n FROM spans GROUP BY 1")}
    child_spans = forks * 5  # CHILD_SPANS per child, and as many per grandchild
    assert stored == {"storm.busy": made["busy"], "storm.child": child_spans, "storm.grandchild": child_spans}
    assert dropped_total(data_dir) == 0
    processes = scalar(data_dir, "SELECT count(DISTINCT pid) FROM run_events WHERE event = 'end'")
    assert processes == 1 + 2 * forks
    # Each child starts with empty metric storage: the parent's unexported increments are not sent twice.
    ticks = scalar(
        data_dir, "SELECT CAST(sum(value) AS BIGINT) FROM metric_points WHERE name = 'fork_storm.ticks'"
    )
    assert ticks == made["busy"] * 20 + 2 * forks  # METRIC_ADDS per busy span, one per (grand)child


# -- multiprocessing ------------------------------------------------------------------------------------


def check_pool_run(data_dir: Path, context: str, items: int, rounds: int = 1) -> None:
    result = run(
        wrapped(data_dir, sys.executable, str(APPS / "fork_pool.py"), context, str(items), str(rounds)),
        timeout=100,  # a missed SIGTERM leaves terminate() waiting for ever: this turns it into a failure
    )
    assert_no_internal_errors(result.stderr)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    answered_by = Counter(answers["terminated"]) + Counter(answers["joined"])
    assert sum(answered_by.values()) == items * (rounds + 1)
    rows = query(data_dir, "SELECT pid, count(*) AS n FROM spans WHERE name = 'pool.work' GROUP BY pid")
    stored = {r["pid"]: r["n"] for r in rows}
    assert_every_process_ended(data_dir)
    assert_conserved(data_dir, items * (rounds + 1), sum(stored.values()))
    assert stored == dict(answered_by)  # every worker's spans, under its own pid, none dropped


@pytest.mark.parametrize("context", ["fork", "spawn", "forkserver"])
def test_multiprocessing_pools_every_worker_reports(data_dir: Path, context: str) -> None:
    """Pool.map in each start method, the pool ended by `with` (terminate: SIGTERM, often while a worker flushes
    on its way out after its stop sentinel) and by close()/join() (os._exit after multiprocessing's finalizers)."""
    check_pool_run(data_dir, context, items=20)


def test_many_terminated_pools_no_hang(data_dir: Path) -> None:
    """150 `with Pool(2)` blocks in a row: each terminate() SIGTERMs workers that may be just forked or just about
    to block on the task queue. With a Python-level SIGTERM handler, bare CPython misses some of those signals and
    terminate() hangs (4 runs in 10 of 200 pools); obsdash's handler must not bring that (sigwatch.py and the
    SIGTERM mask across fork in lifecycle.py)."""
    check_pool_run(data_dir, "fork", items=3, rounds=150)


def test_wakeup_fd_stays_the_apps(data_dir: Path) -> None:
    """sigwatch.py sets a signal wakeup fd of its own: the app still sees none, and an asyncio loop's signal
    handling (which sets and clears its own) works as bare."""
    program = (
        "import asyncio, os, signal\n"
        "print(signal.set_wakeup_fd(-1))\n"
        "async def main():\n"
        "    loop, got = asyncio.get_running_loop(), asyncio.Event()\n"
        "    loop.add_signal_handler(signal.SIGUSR1, got.set)\n"
        "    os.kill(os.getpid(), signal.SIGUSR1)\n"
        "    await asyncio.wait_for(got.wait(), 10)\n"
        "    loop.remove_signal_handler(signal.SIGUSR1)\n"
        "    print('handled')\n"
        "asyncio.run(main())\n"
        "print(signal.set_wakeup_fd(-1))\n"
    )
    bare = run([sys.executable, "-c", program])
    wrapped_run = run(wrapped(data_dir, sys.executable, "-c", program))
    assert_no_internal_errors(wrapped_run.stderr)
    assert (
        (wrapped_run.stdout, wrapped_run.returncode)
        == (bare.stdout, bare.returncode)
        == ("-1\nhandled\n-1\n", 0)
    )


# -- --reload -------------------------------------------------------------------------------------------


def flask_reload(app_dir: Path, port: int) -> list[str]:
    return [
        str(BIN / "flask"),
        "--app",
        str(app_dir / "reload_app.py"),
        "run",
        "--port",
        str(port),
        "--reload",
    ]


def get_json(port: int, path: str) -> dict[str, Any]:
    body: dict[str, Any] = requests.get(f"http://127.0.0.1:{port}{path}", timeout=20).json()
    return body


def stop_group(server: subprocess.Popen[str], how: str) -> str:
    """Ctrl-C in a terminal signals the whole group; `kill PID` only the reloader parent."""
    if how == "ctrl-c":
        os.killpg(server.pid, signal.SIGINT)
    else:
        server.send_signal(signal.SIGTERM)
    try:
        output, _ = server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        raise AssertionError(f"the reloader did not stop on {how}:\n{server.communicate()[0]}") from None
    with pytest.raises(ProcessLookupError):
        os.killpg(server.pid, 0)  # nothing of the tree is left running
    return output


def bare_reload_status(app_dir: Path, how: str) -> int:
    port = free_port()
    server = subprocess.Popen(
        flask_reload(app_dir, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env(),
        start_new_session=True,
    )
    wait_for_port(port, timeout=30)
    assert get_json(port, "/work/0")["generation"] == 1
    stop_group(server, how)
    return server.returncode


def wait_until_stored(data_dir: Path, expected: int) -> None:
    """The writer threads flush every 250 ms; wait (bounded) until the store holds the answered requests."""
    sql = f"SELECT count(*) FROM spans WHERE kind = 'SERVER' AND http_route = '{WORK_ROUTE}'"
    deadline = time.monotonic() + 30
    while scalar(data_dir, sql) < expected and time.monotonic() < deadline:
        time.sleep(0.3)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_flask_reload_both_generations_report(data_dir: Path, tmp_path: Path, how: str) -> None:
    """`flask run --reload`: a reloader parent and a serving child; editing the app makes the child exit (3) and
    the parent start a new one. Both generations' spans arrive, each under its own pid; the whole tree stops on
    Ctrl-C (SIGINT to the group) or on SIGTERM to the parent, with the exit status of the bare run."""
    app = tmp_path / "reload_app.py"
    app.write_text((APPS / "fork_app.py").read_text())
    bare_status = bare_reload_status(tmp_path, how)
    port = free_port()
    server = start_server(data_dir, flask_reload(tmp_path, port), port, start_new_session=True)
    try:
        first = [get_json(port, f"/work/{n}") for n in range(20)]
        app.write_text(app.read_text().replace("GENERATION = 1", "GENERATION = 2"))
        os.utime(app, (time.time() + 2, time.time() + 2))  # a newer mtime, whatever the clock's resolution
        reloading = [get_json(port, "/work/100")]
        deadline = time.monotonic() + 30
        while reloading[-1]["generation"] == 1 and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                reloading.append(get_json(port, "/work/100"))
            except requests.ConnectionError:
                # Werkzeug kills the old child mid-request, bare too: that request has no answer and no span
                continue
        second = [get_json(port, f"/work/{n}") for n in range(20)]
        answers = first + reloading + second
        wait_until_stored(data_dir, len(answers))
    finally:
        output = stop_group(server, how)
    assert server.returncode == bare_status, output
    assert {a["generation"] for a in first} == {1} and {a["generation"] for a in second} == {2}, output
    answered_by = Counter(a["pid"] for a in answers)
    assert len(answered_by) == 2, answered_by  # the first child, then the second
    stored = work_spans_by_pid(data_dir)
    assert {pid: server_spans for pid, (server_spans, _own) in stored.items()} == dict(answered_by)
    assert {pid: own for pid, (_server, own) in stored.items()} == dict(answered_by)
    first_child = first[0]["pid"]
    ends = query(data_dir, f"SELECT exit_code FROM run_events WHERE event = 'end' AND pid = {first_child}")
    assert ends == [{"exit_code": 3}]  # the reloaded child left normally: its drop counts are known
    assert dropped_total(data_dir) == 0
