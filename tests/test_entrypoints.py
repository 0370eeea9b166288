"""Console scripts and process models under wrap: flask run, uvicorn (+ workers), pytest, threads, asyncio,
multiprocessing — each stores its telemetry and behaves as it does bare."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

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


def serve_and_get(data_dir: Path, command: list[str], port: int, paths: list[str], **env: str) -> str:
    server = subprocess.Popen(
        wrapped(data_dir, *command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env(**env),
    )
    try:
        wait_for_port(port)
        for path in paths:
            assert requests.get(f"http://127.0.0.1:{port}{path}", timeout=10).status_code < 600
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert_no_internal_errors(output)
    return output


def test_flask_run(data_dir: Path) -> None:
    port = free_port()
    command = [str(BIN / "flask"), "--app", str(APPS / "flask_shop.py"), "run", "--port", str(port)]
    serve_and_get(data_dir, command, port, ["/items", "/items"])
    assert scalar(data_dir, "SELECT count(*) FROM spans WHERE is_root AND http_route = '/items'") == 2
    assert scalar(data_dir, "SELECT service_name FROM runs") == "flask"


def test_uvicorn_fastapi_one_span_per_request(data_dir: Path) -> None:
    port = free_port()
    command = [str(BIN / "uvicorn"), "--app-dir", str(APPS), "fastapi_app:app", "--port", str(port)]
    serve_and_get(data_dir, command, port, ["/hello/a", "/hello/b", "/hello/c"])
    rows = query(data_dir, "SELECT http_route, count(*) AS n FROM spans WHERE is_root GROUP BY 1")
    assert rows == [{"http_route": "/hello/{name}", "n": 3}]  # FastAPI and Starlette not both counted


def test_uvicorn_workers_each_report(data_dir: Path) -> None:
    port = free_port()
    command = [
        str(BIN / "uvicorn"),
        "--app-dir",
        str(APPS),
        "fastapi_app:app",
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    serve_and_get(data_dir, command, port, [f"/hello/{i}" for i in range(20)])
    assert scalar(data_dir, "SELECT count(*) FROM spans WHERE is_root") == 20
    assert scalar(data_dir, "SELECT count(DISTINCT pid) FROM run_events WHERE event = 'start'") >= 3


def test_pytest_exit_status_passes_through(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(
        "def test_ok():\n    assert True\n\ndef test_bad():\n    assert 1 == 2\n"
    )
    bare = run([str(BIN / "pytest"), "-q", "-p", "no:cacheprovider", str(tmp_path)])
    wrapped_run = run(wrapped(data_dir, str(BIN / "pytest"), "-q", "-p", "no:cacheprovider", str(tmp_path)))
    assert wrapped_run.returncode == bare.returncode == 1
    assert scalar(data_dir, "SELECT exit_code FROM runs") == 1


def test_unhandled_in_thread_and_asyncio_task(data_dir: Path) -> None:
    program = (
        "import asyncio, threading, gc\n"
        "def worker(): raise KeyError('in thread')\n"
        "t = threading.Thread(target=worker); t.start(); t.join()\n"
        "async def task(): raise LookupError('in task')\n"
        "async def main():\n"
        "    asyncio.get_running_loop().create_task(task())\n"
        "    await asyncio.sleep(0.05)\n"
        "asyncio.run(main()); gc.collect()\n"
    )
    bare = run([sys.executable, "-c", program])
    wrapped_run = run(wrapped(data_dir, sys.executable, "-c", program))
    assert_no_internal_errors(wrapped_run.stderr)
    assert wrapped_run.stderr == bare.stderr and wrapped_run.returncode == bare.returncode == 0
    rows = query(data_dir, "SELECT exception_type, message FROM errors ORDER BY 1")
    assert rows == [
        {"exception_type": "KeyError", "message": "'in thread'"},
        {"exception_type": "LookupError", "message": "in task"},
    ]


def test_multiprocessing_fork_children_flush(data_dir: Path) -> None:
    program = (
        "import multiprocessing as mp\n"
        "from opentelemetry import trace\n"
        "def child(i):\n"
        "    with trace.get_tracer('mp').start_as_current_span('child-work'): pass\n"
        "if __name__ == '__main__':\n"
        "    ctx = mp.get_context('fork')\n"
        "    procs = [ctx.Process(target=child, args=(i,)) for i in range(3)]\n"
        "    [p.start() for p in procs]; [p.join() for p in procs]\n"
        "    print([p.exitcode for p in procs])\n"
    )
    result = run(wrapped(data_dir, sys.executable, "-c", program))
    assert result.stdout == "[0, 0, 0]\n"
    assert_no_internal_errors(result.stderr)
    rows = query(
        data_dir, "SELECT count(*) AS n, count(DISTINCT pid) AS pids FROM spans WHERE name = 'child-work'"
    )
    assert rows == [{"n": 3, "pids": 3}]
