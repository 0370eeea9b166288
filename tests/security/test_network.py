"""S4: no network listener unless asked.

A wrapped program (with its instrumentors loaded and its spool thread writing), a headless hub (`obsdash serve`
without --otlp), a second reader following it (`obsdash tail --follow`), the MCP server on stdio and a one-shot
`obsdash ingest`, all running at once: none of these processes holds a listening TCP socket or any bound UDP
socket (read from /proc/net/{tcp,tcp6,udp,udp6}, each socket's inode matched to the processes' open files).
The hub talks over a Unix socket only. The one listener obsdash has is asked for by name: the OTLP/HTTP intake
(`obsdash serve --otlp`, `obsdash tui --otlp`), bound to 127.0.0.1 — tests/test_otlp_intake.py covers it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import child_env, obsdash_cmd, run, wrapped

TCP_LISTEN = "0A"
APP = """
import logging, sqlite3, sys, time, urllib.request
logging.basicConfig(level=logging.INFO)
db = sqlite3.connect(":memory:")
for i in range(20):
    db.execute("SELECT ?", (i,)).fetchall()
    logging.info("tick %s", i)
    time.sleep(0.1)
print("ready", flush=True)
sys.stdin.read()  # hold the process (and its spool thread) open until the test is done looking
"""


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process `pid` has open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def inet_sockets() -> dict[int, tuple[str, str, str]]:
    """Every TCP and UDP socket on the machine: inode → (table, local address, state)."""
    found = {}
    for table in ("tcp", "tcp6", "udp", "udp6"):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            found[int(fields[9])] = (table, fields[1], fields[3])
    return found


def listening(inodes: set[int]) -> list[tuple[str, str, str]]:
    """Of `inodes`, the TCP sockets in LISTEN and every UDP socket (bound: it receives)."""
    sockets = inet_sockets()
    return [
        sockets[i]
        for i in inodes
        if i in sockets and (sockets[i][0].startswith("udp") or sockets[i][2] == TCP_LISTEN)
    ]


def start(cmd: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cmd, env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture
def processes(data_dir: Path) -> Iterator[dict[str, subprocess.Popen[str]]]:
    """obsdash's long-running processes over one data dir, up and working."""
    running: dict[str, subprocess.Popen[str]] = {}
    try:
        running["serve"] = start(obsdash_cmd("serve", "--data-dir", str(data_dir)))
        deadline = time.monotonic() + 30
        while not (data_dir / "hub.sock").exists():
            assert running["serve"].poll() is None and time.monotonic() < deadline, running["serve"].stderr
            time.sleep(0.05)
        running["app"] = start(wrapped(data_dir, sys.executable, "-c", APP))
        assert running["app"].stdout is not None
        assert running["app"].stdout.readline().strip() == "ready"
        running["tail"] = start(obsdash_cmd("tail", "--data-dir", str(data_dir), "--follow"))
        running["mcp"] = start(obsdash_cmd("mcp", "--data-dir", str(data_dir)))
        result = run(obsdash_cmd("ingest", "--data-dir", str(data_dir)))
        assert result.returncode == 0, result.stderr
        time.sleep(0.5)  # the readers connect and make their first queries
        for name, proc in running.items():
            assert proc.poll() is None, (name, proc.returncode)
        yield running
    finally:
        for proc in running.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in running.values():
            try:
                proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def test_no_listener_without_asking(processes: dict[str, subprocess.Popen[str]]) -> None:
    found = {name: listening(socket_inodes(proc.pid)) for name, proc in processes.items()}
    assert found == {name: [] for name in processes}, found
    # and the wrapped app, which opens no socket of its own here, holds none at all: obsdash adds no exporter
    assert not socket_inodes(processes["app"].pid) & set(inet_sockets())
    sockets = sum(len(socket_inodes(p.pid)) for p in processes.values())
    print(f"\nS4: {len(processes)} processes, {sockets} sockets open, 0 TCP/UDP listeners")


def test_the_checks_see_a_listener(tmp_path: Path) -> None:
    """The control: the same inspection finds the socket a plain Python server listens on."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', 0)); "
            "s.listen(); print('up', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "up"
        found = listening(socket_inodes(server.pid))
        assert [(table, state) for table, _, state in found] == [("tcp", TCP_LISTEN)]
    finally:
        server.kill()
        server.communicate()
