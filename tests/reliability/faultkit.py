"""Helpers of the reliability suite: run a program bare and wrapped and compare, read run records straight from the
spool, and run a command inside a private mount namespace (read-only bind mounts, a tiny tmpfs for "disk full")."""

from __future__ import annotations

import functools
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import APPS, STRICT_MARKER, child_env, obsdash_cmd, wrapped

FAULT_APP = str(APPS / "fault_app.py")
FAST = {"OBSDASH_BATCH_DELAY_S": "0.05"}
"""Segments every 50 ms instead of 250: the tests see records land sooner and stay short."""


@dataclass
class Outcome:
    """What a user sees of one run: status and both streams (bytes, compared exactly)."""

    status: int
    stdout: bytes
    stderr: bytes

    @property
    def err(self) -> str:
        return self.stderr.decode(errors="replace")


def execute(cmd: list[str], env: dict[str, str], stdin: bytes | None = None, timeout: float = 60) -> Outcome:
    """Run to completion with binary stdio."""
    result = subprocess.run(cmd, input=stdin, capture_output=True, env=env, timeout=timeout, check=False)
    return Outcome(result.returncode, result.stdout, result.stderr)


def env_for(*, strict: bool = True, fast: bool = False, faults: str | None = None) -> dict[str, str]:
    """A child environment: strict mode (a marker for every error obsdash swallows) unless told otherwise,
    optionally 50 ms batches (FAST) and faults injected (OBSDASH_FAULTS)."""
    env = child_env(**(FAST if fast else {}))
    if not strict:
        env.pop("OBSDASH_STRICT", None)
    if faults:
        env["OBSDASH_FAULTS"] = faults
    return env


def bare_and_wrapped(
    data_dir: Path, command: list[str], env: dict[str, str], stdin: bytes | None = None
) -> tuple[Outcome, Outcome]:
    """The same command run bare, then under `obsdash wrap`, with the same environment."""
    bare = execute(command, env, stdin)
    return bare, execute(wrapped(data_dir, *command), env, stdin)


def assert_same(bare: Outcome, wrapped_run: Outcome) -> None:
    """Status, stdout and stderr identical, byte for byte."""
    assert wrapped_run.status == bare.status, wrapped_run.err
    assert wrapped_run.stdout == bare.stdout
    assert wrapped_run.stderr == bare.stderr, wrapped_run.err


def without_markers(stderr: str) -> list[str]:
    """stderr's lines with strict-mode reports taken out (a marker line and its traceback, up to the blank line
    that ends the report)."""
    kept: list[str] = []
    in_report = False
    for line in stderr.splitlines():
        if line.startswith(STRICT_MARKER):
            in_report = True
        elif in_report and line == "":
            in_report = False
        elif not in_report:
            kept.append(line)
    return kept


def assert_same_but_markers(bare: Outcome, wrapped_run: Outcome) -> int:
    """Status and stdout identical, stderr identical once strict-mode reports are removed; returns how many
    reports there were."""
    assert wrapped_run.status == bare.status, wrapped_run.err
    assert wrapped_run.stdout == bare.stdout
    assert without_markers(wrapped_run.err) == bare.err.splitlines(), wrapped_run.err
    return wrapped_run.err.count(STRICT_MARKER + ":")


def run_records(data_dir: Path, event: str = "end") -> list[dict[str, Any]]:
    """Run records of one kind read straight from the spool files (waiting or ingested), no store needed."""
    found = []
    for folder in (data_dir / "spool", data_dir / "spool" / "ingested"):
        for path in sorted(folder.glob("runs-*.jsonl")) if folder.is_dir() else []:
            for line in path.read_text().splitlines():
                record = json.loads(line)
                if record.get("event") == event:
                    found.append(record)
    return found


def ingest(data_dir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`obsdash ingest`, checked."""
    result = subprocess.run(
        obsdash_cmd("ingest", "--data-dir", str(data_dir)),
        capture_output=True,
        text=True,
        env=env or child_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


# -- private mount namespaces ------------------------------------------------------------------------------
@functools.cache
def namespace_prefix() -> list[str] | None:
    """How to get a private mount namespace here: unprivileged (user + mount namespace, as CI may need), else
    plain `unshare --mount` as root; None when neither works."""
    for prefix in (["unshare", "--user", "--map-root-user", "--mount"], ["unshare", "--mount"]):
        probe = "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d && umount $d && rmdir $d"
        try:
            result = subprocess.run(
                [*prefix, "sh", "-c", probe], capture_output=True, timeout=20, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if result.returncode == 0:
            return prefix
    return None


def in_namespace(
    setup: str, command: list[str], env: dict[str, str], after: str = "", timeout: float = 60
) -> Outcome:
    """Run `command` between the shell snippets `setup` (mounts) and `after` (e.g. copy results out) inside a
    private mount namespace; the mounts vanish with it. The outcome is the command's (its status, its output).
    The namespace must be available: check namespace_prefix() first."""
    prefix = namespace_prefix()
    assert prefix is not None
    script = f"set -e\n{setup}\nset +e\n{shlex.join(command)}\nstatus=$?\n{after}\nexit $status"
    return execute([*prefix, "sh", "-c", script], env, timeout=timeout)


def spool_files(data_dir: Path, pattern: str) -> list[Path]:
    """Segment files matching `pattern` in the spool and its ingested folder."""
    spool = data_dir / "spool"
    return sorted([*spool.glob(pattern), *(spool / "ingested").glob(pattern)]) if spool.is_dir() else []


HOST = (
    "import sys, time\n"
    "from obsdash.datadir import resolve\n"
    "from obsdash.hub.client import open_store\n"
    "store = open_store(resolve(sys.argv[1]))\n"
    "print('hosting' if store.is_host else 'client', flush=True)\n"
    "time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 120)\n"
)
"""A process that hosts the hub of a data dir (watching the spool, ingesting) until killed."""


def start_host(data_dir: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start a hub host and wait until it hosts."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOST, str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or child_env(),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "hosting\n"
    return proc
