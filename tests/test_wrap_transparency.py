"""R1 (first part): a wrapped command behaves exactly like the bare one — status, stdio, argv, signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import assert_no_internal_errors, child_env, run, scalar, wrapped

HEAVY = ("textual", "rich", "duckdb", "watchfiles")


def both(data_dir: Path, *command: str, **kwargs: object) -> tuple[subprocess.CompletedProcess[str], ...]:
    bare = run(list(command), **kwargs)  # type: ignore[arg-type]
    wrapped_run = run(wrapped(data_dir, *command), **kwargs)  # type: ignore[arg-type]
    assert_no_internal_errors(wrapped_run.stderr)
    return bare, wrapped_run


def test_exit_status_and_stdout_pass_through(data_dir: Path) -> None:
    result = run(wrapped(data_dir, sys.executable, "-c", 'print("hi"); import sys; sys.exit(3)'))
    assert (result.returncode, result.stdout) == (3, "hi\n")
    assert_no_internal_errors(result.stderr)
    assert scalar(data_dir, "SELECT exit_code FROM runs") == 3


def test_stdin_argv_and_stderr_identical_to_bare(data_dir: Path) -> None:
    program = "import sys; data = sys.stdin.read(); print(sys.argv[1:], data.upper()); print('err', file=sys.stderr)"
    bare, wrapped_run = both(data_dir, sys.executable, "-c", program, "a b", "--flag", input="piped in\n")
    assert wrapped_run.stdout == bare.stdout == "['a b', '--flag'] PIPED IN\n\n"
    assert wrapped_run.stderr == bare.stderr
    assert wrapped_run.returncode == bare.returncode == 0


def test_logging_output_unchanged(data_dir: Path) -> None:
    """Our log handler must not silence Python's last-resort output nor block basicConfig."""
    for program in (
        "import logging; logging.getLogger('x').warning('careful'); logging.info('hidden')",
        "import logging; logging.basicConfig(level=logging.INFO, format='%(levelname)s:%(message)s');"
        " logging.info('shown'); logging.getLogger('a.b').debug('no')",
    ):
        bare, wrapped_run = both(data_dir, sys.executable, "-c", program)
        assert wrapped_run.stderr == bare.stderr
        assert bare.stderr


def test_unhandled_exception_prints_and_exits_like_bare(data_dir: Path) -> None:
    bare, wrapped_run = both(data_dir, sys.executable, "-c", "raise ValueError('bad input 42')")
    assert wrapped_run.returncode == bare.returncode == 1
    assert wrapped_run.stderr == bare.stderr
    row = scalar(data_dir, "SELECT exception_type || ' ' || message FROM errors")
    assert row == "ValueError bad input 42"


def test_killed_by_sigterm_same_status_as_bare(data_dir: Path) -> None:
    program = "import time; print('ready', flush=True); time.sleep(30)"
    statuses = []
    for cmd in ([sys.executable, "-c", program], wrapped(data_dir, sys.executable, "-c", program)):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=child_env())
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        statuses.append(proc.wait(timeout=10))
    assert statuses == [-signal.SIGTERM, -signal.SIGTERM]
    assert scalar(data_dir, "SELECT exit_code FROM runs") == -signal.SIGTERM


def test_python_dash_m_and_service_name(data_dir: Path) -> None:
    bare, wrapped_run = both(data_dir, sys.executable, "-m", "json.tool", input='{"a": 1}')
    assert wrapped_run.stdout == bare.stdout
    assert scalar(data_dir, "SELECT service_name FROM runs") == "json.tool"


def test_no_heavy_modules_in_the_app(data_dir: Path) -> None:
    """The wall: the app's process holds none of the dashboard side's libraries."""
    program = "import sys; print(sorted(m for m in sys.modules if m.split('.')[0] in {'textual','rich','duckdb','watchfiles','obsdash','obsdash_instrumenters'}))"
    result = run(wrapped(data_dir, sys.executable, "-c", program))
    loaded = eval(result.stdout)  # a printed list of module names
    assert "obsdash_instrumenters.bootstrap" in loaded  # injection happened
    assert not [m for m in loaded if m.split(".")[0] in (*HEAVY, "obsdash")]


def test_users_own_sitecustomize_still_runs(data_dir: Path, tmp_path: Path) -> None:
    user_dir = tmp_path / "user_site"
    user_dir.mkdir()
    (user_dir / "sitecustomize.py").write_text("import builtins; builtins.USER_SITE_RAN = True\n")
    env = child_env(PYTHONPATH=str(user_dir))
    program = "import builtins, sys; print(getattr(builtins, 'USER_SITE_RAN', False), 'obsdash_instrumenters.bootstrap' in sys.modules)"
    bare = run([sys.executable, "-c", program], env=env)
    wrapped_run = run(wrapped(data_dir, sys.executable, "-c", program), env=env)
    assert bare.stdout == "True False\n"
    assert wrapped_run.stdout == "True True\n"


def test_missing_command_is_one_clear_line(data_dir: Path) -> None:
    result = run(wrapped(data_dir, "no-such-program-xyz", "--flag"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "obsdash: command not found: no-such-program-xyz (check the name and your PATH)"
    ]
    assert "Traceback" not in result.stderr


def test_wrap_without_command_and_bad_flag(data_dir: Path) -> None:
    for args in (["wrap", "--data-dir", str(data_dir)], ["query"], ["--no-such-flag"]):
        result = run([sys.executable, "-m", "obsdash", *args])
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_sigterm_after_5000_spans_stores_all(data_dir: Path) -> None:
    program = (
        "from opentelemetry import trace\n"
        "tracer = trace.get_tracer('burst')\n"
        "for i in range(5000):\n"
        "    with tracer.start_as_current_span('work', attributes={'i': i}): pass\n"
        "print('ready', flush=True)\n"
        "import time; time.sleep(30)\n"
    )
    proc = subprocess.Popen(
        wrapped(data_dir, sys.executable, "-c", program),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == -signal.SIGTERM
    print(f"exit after SIGTERM took {time.monotonic() - sent:.3f} s")
    assert proc.stderr is not None
    assert_no_internal_errors(proc.stderr.read())
    assert scalar(data_dir, "SELECT count(*) FROM spans WHERE name = 'work'") == 5000
    assert scalar(data_dir, "SELECT count(DISTINCT span_id) FROM spans") == 5000
