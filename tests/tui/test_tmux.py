"""The dashboard as a user runs it: `obsdash tui` in a real terminal (tmux, 80x24), driven by keys, read off the
screen, quit with `q`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import child_env
from tests.tui.store import write_fixture_spool

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

TIMEOUT_S = 20.0


class Terminal:
    """One tmux session on a private server (its own socket), holding one command."""

    def __init__(self) -> None:
        self.socket = f"obsdash-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._socket_path: str | None = None

    def open(self, command: str, width: int = 80, height: int = 24) -> None:
        """Start `command` in a detached session of `width` x `height` cells."""
        self._tmux(
            "new-session", "-d", "-s", "ui", "-x", str(width), "-y", str(height), command,
            # keep the pane once the command ends, to read what it left on the screen
            ";", "set-option", "-w", "-t", "ui", "remain-on-exit", "on",
        )  # fmt: skip
        self._socket_path = self._tmux("display-message", "-p", "#{socket_path}").strip()

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=10,
            env=child_env(),
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def screen(self) -> str:
        """What the pane shows now, as text."""
        return self._tmux("capture-pane", "-p", "-t", "ui")

    def keys(self, *keys: str) -> None:
        """Type keys (tmux key names: Enter, Escape, ...)."""
        self._tmux("send-keys", "-t", "ui", *keys)

    def wait_for(self, condition: Callable[[str], bool], what: str) -> str:
        """The screen, once `condition(screen)` holds."""
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen shows:\n{screen}")
            time.sleep(0.1)

    def close(self) -> None:
        """Stop the tmux server (and whatever still runs in it); tmux leaves its socket file behind."""
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10, check=False
        )
        if self._socket_path:
            Path(self._socket_path).unlink(missing_ok=True)


@pytest.fixture
def fixture_dir(tmp_path: Path) -> Path:
    """A data directory holding the fixture as spool segments, not ingested yet (the dashboard's hub does)."""
    path = tmp_path / "data"
    write_fixture_spool(path)
    return path


@pytest.fixture
def terminal_for(tmp_path: Path) -> Iterator[Callable[[str], Terminal]]:
    """Start commands in tmux; every server started is killed at the end, whatever happened."""
    started: list[Terminal] = []

    def start(command: str) -> Terminal:
        terminal = Terminal()
        started.append(terminal)
        terminal.open(command)
        return terminal

    yield start
    for terminal in started:
        terminal.close()


def showing(*texts: str) -> Callable[[str], bool]:
    """A condition on the screen: every one of `texts` is on it."""
    return lambda screen: all(text in screen for text in texts)


def obsdash_script() -> str:
    """The console script users run (installed in the venv next to the interpreter)."""
    script = Path(sys.prefix) / "bin" / "obsdash"
    return shlex.quote(str(script)) if script.exists() else f"{shlex.quote(sys.executable)} -m obsdash"


def test_dashboard_in_a_real_terminal(
    fixture_dir: Path, tmp_path: Path, terminal_for: Callable[[str], Terminal]
) -> None:
    exit_file = tmp_path / "exit-status"
    command = (
        f"{obsdash_script()} tui --data-dir {shlex.quote(str(fixture_dir))} --window all; "
        f"echo EXIT=$? > {shlex.quote(str(exit_file))}"
    )
    terminal = terminal_for(f"sh -c {shlex.quote(command)}")

    # Each wait names everything the step must show: a screen is painted in pieces, so one string on it does
    # not mean the rest is there yet.
    terminal.wait_for(showing("Overview", "/checkout", "40.0%", "3 dropped (queue_full)"), "the overview")

    terminal.keys("2")
    header = re.compile(r"\brequest\s+status\s+duration")  # the list's column titles

    def traces(screen: str) -> bool:
        return header.search(screen) is not None and showing("/weather", "upstream")(screen)

    terminal.wait_for(traces, "the traces")

    terminal.keys("Enter")  # the newest request: GET /items and its sqlite call
    terminal.wait_for(showing("timeline", "GET /items", "SELECT id, name, price"), "the waterfall")

    terminal.keys("Escape")
    terminal.wait_for(lambda s: traces(s) and "timeline" not in s, "the traces again")

    terminal.keys("3")
    terminal.wait_for(showing("ValueError", "×2", "shop.py:checkout", "fingerprint"), "the errors view")

    terminal.keys("q")
    deadline = time.monotonic() + TIMEOUT_S
    while not exit_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert exit_file.read_text().strip() == "EXIT=0"
    after = terminal.screen()
    assert "Traceback" not in after and "Error" not in after, after
    # the hub it hosted ingested the spool and let go of the store
    assert not list((fixture_dir / "spool").glob("*.jsonl"))
    assert len(list((fixture_dir / "spool" / "ingested").glob("*.jsonl"))) == 4
    assert not (fixture_dir / "hub.sock").exists()
