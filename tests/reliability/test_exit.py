"""R1 and R4: however a wrapped program ends, it ends as it would bare; the flush at exit and SIGTERM is bounded.

R1 (extends tests/test_wrap_transparency.py): every case runs the same program bare and under `obsdash wrap` and
compares status, stdout and stderr byte for byte — exit statuses (`sys.exit(4)`, `os._exit(3)`, `sys.exit("msg")`),
Ctrl-C, SIGKILL, an app's own SIGTERM handler, SIGTERM ignored by the parent, binary stdin, awkward argv, and a
user's own sitecustomize and usercustomize together.

R4: with the spool unwritable, or a segment write that hangs (fault point `spool_stall`), the wrapped process still
exits, at exit and at SIGTERM. Tests only guard against a hang (exit timeout + a generous margin); the added time is
measured by bench/exit_bound.py.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import STRICT_MARKER, child_env, query, scalar, wrapped
from tests.reliability.faultkit import (
    Outcome,
    assert_same,
    bare_and_wrapped,
    env_for,
    run_records,
)

HANG_GUARD_S = 10.0
"""A wrapped process must be gone this long after it was asked to end: the exit bound (1.5 s) plus a margin wide
enough for a loaded 2-core box. Not a speed assertion: bench/exit_bound.py measures the time."""

EXITS = {
    "sys.exit(4)": ("import sys; print('a'); sys.exit(4)", 4),
    "os._exit(3)": ("import os; print('lost in the buffer, bare too'); os._exit(3)", 3),
    "sys.exit('msg')": ("import sys; print('a'); sys.exit('fatal: cannot go on')", 1),
    "sys.exit(261)": ("import sys; sys.exit(261)", 5),
    "SystemExit in a thread": (
        "import sys, threading; t = threading.Thread(target=sys.exit, args=(9,)); t.start(); t.join();"
        " print('main goes on')",
        0,
    ),
    "exception in a thread": (
        "import threading; t = threading.Thread(target=lambda: 1 / 0, name='worker'); t.start(); t.join();"
        " print('main goes on')",
        0,
    ),
}


@pytest.mark.parametrize("case", list(EXITS))
def test_exit_status_and_output_as_bare(data_dir: Path, case: str) -> None:
    program, status = EXITS[case]
    bare, wrapped_run = bare_and_wrapped(data_dir, [sys.executable, "-c", program], child_env())
    assert bare.status == status
    assert_same(bare, wrapped_run)
    ends = run_records(data_dir)
    if case == "os._exit(3)":
        assert ends == []  # os._exit skips atexit: no end record, as documented
    else:
        assert [e["exit_code"] for e in ends] == [status], ends  # the store says how the process ended


@pytest.fixture(autouse=True)
def _sigint_not_ignored() -> None:
    """A shell's background job starts with SIGINT ignored and passes that on to what it starts, where Python
    then installs no KeyboardInterrupt handler: the Ctrl-C case would hang, bare and wrapped alike. A terminal's
    foreground process has the default, as CI's has."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _start(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env or child_env(),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line == b"ready\n", (line, proc.stderr.read() if proc.stderr else b"")
    return proc  # type: ignore[no-any-return]


def _wait_until_asleep(pid: int) -> None:
    """Wait until the main thread sleeps (state S): a signal sent right after `ready` could land in the print
    instead of the sleep, and the traceback would name another line (bare and wrapped alike)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rpartition(")")[2].split()[0] == "S":
            return
        time.sleep(0.01)


def _signalled(cmd: list[str], signum: int, env: dict[str, str] | None = None) -> Outcome:
    """Start `cmd`, wait for its `ready` line, send `signum`, and collect how it ended (within the hang guard)."""
    proc = _start(cmd, env)
    _wait_until_asleep(proc.pid)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=HANG_GUARD_S)
    return Outcome(proc.returncode, b"ready\n" + stdout, stderr)


def _both_signalled(data_dir: Path, program: str, signum: int) -> tuple[Outcome, Outcome]:
    command = [sys.executable, "-c", program]
    return _signalled(command, signum), _signalled(wrapped(data_dir, *command), signum)


SLEEPER = "import time\nprint('ready', flush=True)\ntime.sleep(30)\n"


def test_ctrl_c_prints_the_same_traceback_and_status(data_dir: Path) -> None:
    bare, wrapped_run = _both_signalled(data_dir, SLEEPER, signal.SIGINT)
    assert bare.status == -signal.SIGINT  # Python re-raises SIGINT after the KeyboardInterrupt traceback
    assert b"KeyboardInterrupt" in bare.stderr
    assert_same(bare, wrapped_run)
    assert [e["exit_code"] for e in run_records(data_dir)] == [-signal.SIGINT]


def test_sigkill_same_status(data_dir: Path) -> None:
    bare, wrapped_run = _both_signalled(data_dir, SLEEPER, signal.SIGKILL)
    assert bare.status == -signal.SIGKILL
    assert_same(bare, wrapped_run)


OWN_HANDLER = (
    "import os, signal, sys, time\n"
    "from opentelemetry import trace\n"
    "def on_term(signum, frame):\n"
    "    print('handler ran', signum, flush=True)\n"
    "    if sys.argv[1] == 'exit':\n"
    "        sys.exit(7)\n"
    "    signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
    "    os.kill(os.getpid(), signal.SIGTERM)\n"
    "signal.signal(signal.SIGTERM, on_term)\n"
    "with trace.get_tracer('t').start_as_current_span('before-sigterm'): pass\n"
    "print('ready', flush=True)\n"
    "time.sleep(30)\n"
)


@pytest.mark.parametrize(("how", "status"), [("exit", 7), ("re-kill", -signal.SIGTERM)])
def test_apps_own_sigterm_handler_runs_and_ends_as_bare(data_dir: Path, how: str, status: int) -> None:
    command = [sys.executable, "-c", OWN_HANDLER, how]
    bare = _signalled(command, signal.SIGTERM)
    wrapped_run = _signalled(wrapped(data_dir, *command), signal.SIGTERM)
    assert bare.status == status
    assert bare.stdout == b"ready\nhandler ran 15\n"
    assert_same(bare, wrapped_run)
    if how == "exit":  # the app's handler leaves through sys.exit: our exit flush still runs
        assert [e["exit_code"] for e in run_records(data_dir)] == [7]
        assert scalar(data_dir, "SELECT count(*) FROM spans WHERE name = 'before-sigterm'") == 1


def test_sigterm_ignored_by_the_parent_stays_ignored(data_dir: Path) -> None:
    """A disposition in place before obsdash starts (here SIGTERM ignored, inherited from the shell's `trap ''`)
    is left alone and still applies."""
    program = "import time\nprint('ready', flush=True)\ntime.sleep(0.5)\nprint('survived')\n"
    command = [sys.executable, "-c", program]
    outcomes = [
        _signalled(["sh", "-c", f"trap '' TERM; exec {shlex.join(cmd)}"], signal.SIGTERM)
        for cmd in (command, wrapped(data_dir, *command))
    ]
    assert (outcomes[0].status, outcomes[0].stdout) == (0, b"ready\nsurvived\n")
    assert_same(*outcomes)


def test_binary_stdin_round_trip(data_dir: Path) -> None:
    data = bytes(range(256)) * 256 + b"\r\n\x00\xff no newline at the end"
    program = (
        "import sys; data = sys.stdin.buffer.read(); sys.stdout.buffer.write(data[::-1]);"
        " sys.stderr.write(f'{len(data)} bytes\\n')"
    )
    bare, wrapped_run = bare_and_wrapped(data_dir, [sys.executable, "-c", program], child_env(), stdin=data)
    assert bare.stdout == data[::-1]
    assert_same(bare, wrapped_run)


def test_argv_with_unicode_spaces_and_double_dash(data_dir: Path) -> None:
    args = [
        "héllo wörld",
        "--",
        "-x",
        "日本語",
        "",
        "a\tb",
        "--data-dir",
        "/nowhere",
        "-c",
        "$HOME",
        "'\"",
        "--",
    ]
    program = "import json, sys; print(json.dumps(sys.argv[1:]))"
    bare, wrapped_run = bare_and_wrapped(data_dir, [sys.executable, "-c", program, *args], child_env())
    assert json.loads(bare.stdout) == args
    assert_same(bare, wrapped_run)
    argv = scalar(data_dir, "SELECT (details->'argv')::VARCHAR FROM run_events WHERE event = 'start'")
    assert json.loads(argv) == ["-c", *args]


def test_users_sitecustomize_and_usercustomize_both_run(data_dir: Path, tmp_path: Path) -> None:
    """usercustomize runs only where the user site is enabled, which a venv without system site packages turns
    off; so this runs the base interpreter with the venv's packages on PYTHONPATH."""
    interpreter = getattr(sys, "_base_executable", sys.executable)
    user_dir = tmp_path / "user_path"
    user_dir.mkdir()
    (user_dir / "sitecustomize.py").write_text("import builtins; builtins.RAN = ['sitecustomize']\n")
    user_base = tmp_path / "userbase"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    user_site = user_base / "lib" / version / "site-packages"
    user_site.mkdir(parents=True)
    (user_site / "usercustomize.py").write_text("import builtins; builtins.RAN.append('usercustomize')\n")
    venv_site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    repo = Path(__file__).resolve().parents[2]
    env = child_env(
        PYTHONPATH=f"{user_dir}:{repo / 'instrumenters'}:{repo}:{venv_site}", PYTHONUSERBASE=str(user_base)
    )
    program = (
        "import builtins, site, sys; print(site.ENABLE_USER_SITE, getattr(builtins, 'RAN', None));"
        " print('obsdash' if 'obsdash_instrumenters.bootstrap' in sys.modules else 'bare', file=sys.stderr)"
    )
    bare, wrapped_run = bare_and_wrapped(data_dir, [interpreter, "-c", program], env)
    if not bare.stdout.startswith(b"True"):
        pytest.skip(f"the user site is disabled for {interpreter}, so usercustomize cannot run")
    assert bare.stdout == wrapped_run.stdout == b"True ['sitecustomize', 'usercustomize']\n"
    assert (bare.stderr, wrapped_run.stderr) == (b"bare\n", b"obsdash\n")
    assert wrapped_run.status == bare.status == 0


# -- R4: the flush at exit and SIGTERM is bounded -----------------------------------------------------------
SPANS_THEN_EXIT = (
    "import os, shutil, sys, time\n"
    "from opentelemetry import trace\n"
    "tracer = trace.get_tracer('exit')\n"
    "if sys.argv[1] == 'unwritable':\n"
    "    spool = os.environ.get('OBSDASH_DIR', sys.argv[2]) + '/spool'\n"
    "    shutil.rmtree(spool, ignore_errors=True); open(spool, 'w').close()\n"
    "for i in range(500):\n"
    "    with tracer.start_as_current_span('work', attributes={'i': i}): pass\n"
    "print('ready', flush=True)\n"
    "if sys.argv[3] == 'wait':\n"
    "    time.sleep(30)\n"
)


def _exit_case(data_dir: Path, fault: str, how: str) -> tuple[Outcome, Outcome, float]:
    """Run SPANS_THEN_EXIT bare and wrapped; `how` = exit (it ends by itself) or sigterm. Returns both outcomes and
    the wrapped run's seconds from `ready` to gone."""
    scratch = data_dir.parent / "bare-scratch"
    scratch.mkdir(exist_ok=True)
    (scratch / "spool").mkdir(exist_ok=True)
    extra = {"OBSDASH_FAULTS": "spool_stall"} if fault == "stall" else {}
    env = child_env(**extra)
    command = [
        sys.executable,
        "-c",
        SPANS_THEN_EXIT,
        fault,
        str(scratch),
        "wait" if how == "sigterm" else "-",
    ]
    outcomes = []
    took = 0.0
    for cmd in (command, wrapped(data_dir, *command)):
        proc = _start(cmd, env)
        sent = time.monotonic()
        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=HANG_GUARD_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"{fault}/{how}: still running {HANG_GUARD_S} s after it should have ended")
        took = time.monotonic() - sent
        outcomes.append(Outcome(proc.returncode, b"ready\n" + stdout, stderr))
    return outcomes[0], outcomes[1], took


@pytest.mark.parametrize("how", ["exit", "sigterm"])
@pytest.mark.parametrize("fault", ["unwritable", "stall"])
def test_exit_is_bounded_when_the_spool_fails(data_dir: Path, fault: str, how: str) -> None:
    bare, wrapped_run, took = _exit_case(data_dir, fault, how)
    print(f"{fault}/{how}: wrapped process gone {took:.2f} s after ready/SIGTERM")
    assert bare.status == (-signal.SIGTERM if how == "sigterm" else 0)
    assert_same(bare, wrapped_run)  # strict mode on: a write failure is counted, not an internal error
    assert STRICT_MARKER not in wrapped_run.err
    spool = data_dir / "spool"
    if fault == "unwritable":
        assert spool.is_file()  # nothing could be written, and the app never knew
    else:
        assert not list(spool.glob("spans-*.jsonl"))  # every write hung; the process left anyway


def test_spans_made_until_sigterm_are_stored_and_counted(data_dir: Path) -> None:
    """SIGTERM while the app is busy making spans: every span it finished is stored, and the end record's
    `written` count matches the store (conservation: created = stored + dropped, dropped = 0)."""
    program = (
        "import sys\n"
        "from opentelemetry import trace\n"
        "tracer = trace.get_tracer('busy')\n"
        "for i in range(10**9):\n"
        "    with tracer.start_as_current_span('busy', attributes={'seq': i}): pass\n"
        "    print(i, flush=True)\n"
        "    if i == 200: print('ready', file=sys.stderr, flush=True)\n"
    )
    proc = subprocess.Popen(
        wrapped(data_dir, sys.executable, "-c", program),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env_for(fast=True),
    )
    assert proc.stderr is not None and proc.stderr.readline() == b"ready\n"
    time.sleep(0.3)  # mid-stream, with segments written and more queued
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == -signal.SIGTERM
    assert STRICT_MARKER not in stderr.decode()
    printed = [int(n) for n in stdout.split()]
    assert printed == list(range(len(printed)))
    (stored,) = query(
        data_dir,
        "SELECT count(*) AS n, count(DISTINCT attributes.seq) AS d, max(attributes.seq::INT) AS top FROM spans",
    )
    # every span finished before SIGTERM is stored, once; at most one more (ended, its print cut off by the signal)
    assert stored["n"] == stored["d"] == stored["top"] + 1
    assert len(printed) <= stored["n"] <= len(printed) + 1
    (end,) = run_records(data_dir)
    assert end["exit_code"] == -signal.SIGTERM
    assert end["written"]["spans"] == stored["n"]  # the end record counts the final batch too
    assert not end["dropped"]
    print(f"SIGTERM after {len(printed)} spans printed: {stored['n']} stored, 0 dropped")
