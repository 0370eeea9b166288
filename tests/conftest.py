"""Shared fixtures: run commands wrapped or bare, and query the store as a user would (the CLI).

Every wrapped run sets OBSDASH_STRICT=1, so an error obsdash swallows inside the app prints a marker that
`assert_no_internal_errors` fails on.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"
STRICT_MARKER = "obsdash-internal-error"


def obsdash_cmd(*args: str) -> list[str]:
    """The obsdash CLI as a user runs it (same interpreter as the tests)."""
    return [sys.executable, "-m", "obsdash", *args]


def wrapped(data_dir: Path, *command: str, service: str | None = None) -> list[str]:
    """`obsdash wrap --data-dir D -- COMMAND...`."""
    extra = ["--service-name", service] if service else []
    return obsdash_cmd("wrap", "--data-dir", str(data_dir), *extra, "--", *command)


def child_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: strict mode on, no inherited obsdash settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSDASH_")}
    env["OBSDASH_STRICT"] = "1"
    env.update(extra)
    return env


def run(cmd: list[str], timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, capturing text output."""
    kwargs.setdefault("env", child_env())
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)


def query(data_dir: Path, sql: str) -> list[dict[str, Any]]:
    """`obsdash query --format json` → list of row dicts; fails the test on a non-zero status."""
    result = run(obsdash_cmd("query", "--data-dir", str(data_dir), "--format", "json", sql))
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def scalar(data_dir: Path, sql: str) -> Any:
    """The single value of a one-row, one-column query."""
    rows = query(data_dir, sql)
    assert len(rows) == 1, rows
    return next(iter(rows[0].values()))


def assert_no_internal_errors(output: str) -> None:
    """Strict mode: obsdash must not have swallowed any error inside the app."""
    assert STRICT_MARKER not in output, output


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20) -> None:
    """Block until something listens on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh obsdash data directory."""
    path = tmp_path / "obsdash-data"
    yield path
