"""`obsdash tail`: real wrapped programs write telemetry, `obsdash tail` (a subprocess, stdout a pipe) prints it.

Covers the first print (logs with their trace ids, newest 200, errors collapsed per fingerprint, --service), the
follow loop next to a live writer and other readers of the same store, records ingested out of time order, and a
reader closing the pipe early.
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from tests import genai
from tests.conftest import assert_no_internal_errors, child_env, obsdash_cmd, query, run, wrapped

ALPHA = """
import logging
from opentelemetry import trace
logging.basicConfig(level=logging.INFO)
log = logging.getLogger("alpha.jobs")
tracer = trace.get_tracer("alpha")
log.info("alpha starting")
def parse(i):
    with tracer.start_as_current_span("parse"):
        return int("bad%d" % i)
for i in range(7):
    with tracer.start_as_current_span("job"):
        log.info("job %d begins", i)
        try:
            parse(i)
        except ValueError:
            log.exception("job %d failed", i)
with tracer.start_as_current_span("lookup"):
    try:
        {}["missing"]
    except KeyError:
        log.exception("lookup failed")
log.warning("alpha done " + "z" * 300 + "\\nsecond line")
"""
BETA = """
import logging
logging.basicConfig(level=logging.INFO)
log = logging.getLogger("beta")
for i in range(250):
    log.info("filler %03d %s", i, "y" * 1000)
try:
    raise RuntimeError("beta broke")
except RuntimeError:
    log.exception("beta failed")
"""
WRITER = """
import logging, time
from opentelemetry import trace
log = logging.getLogger("writer")
tracer = trace.get_tracer("writer")
def fail(i):
    with tracer.start_as_current_span("step"):
        raise ValueError("bad input %d" % i)
def burst(n, base):
    for i in range(n):
        with tracer.start_as_current_span("request"):
            try:
                fail(base + i)
            except ValueError:
                log.exception("request failed")
burst(4, 0)
time.sleep(1.5)
burst(3, 4)
"""
TRACE = re.compile(r"  trace ([0-9a-f]{32})$")
COUNT = re.compile(r" ×(\d+)(?: more \((\d+) total\))?  ")


def tail(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`obsdash tail --data-dir D --window all ARGS` to completion; fails the test on a non-zero status."""
    result = run(obsdash_cmd("tail", "--data-dir", str(data_dir), "--window", "all", *args), timeout=30)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


@pytest.fixture(scope="module")
def two_services(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alpha: logs in spans, 7 ValueErrors and a KeyError; beta: 250 long filler lines, then a RuntimeError."""
    data_dir = tmp_path_factory.mktemp("tail") / "data"
    for service, program in (("alpha", ALPHA), ("beta", BETA)):
        result = run(wrapped(data_dir, sys.executable, "-c", program, service=service))
        assert result.returncode == 0, result.stderr
        assert_no_internal_errors(result.stderr)
    return data_dir


def test_log_lines_carry_their_trace_ids(two_services: Path) -> None:
    lines = tail(two_services, "--service", "alpha").stdout.splitlines()
    rows = query(two_services, "SELECT body, trace_id FROM logs WHERE service_name = 'alpha' ORDER BY time")
    assert len(lines) == len(rows) == 17
    for line, row in zip(lines, rows, strict=True):
        assert "  alpha  alpha.jobs: " in line
        assert row["body"].replace("\n", "\\n") in line  # one record per line, never wrapped
        trace_id = TRACE.search(line)
        assert (trace_id.group(1) if trace_id else None) == row["trace_id"], line
    failed = [line for line in lines if "job 3 failed" in line]
    assert len(failed) == 1 and "ValueError: invalid literal for int() with base 10: 'bad3'" in failed[0]


def test_first_print_is_the_newest_200_newest_last(two_services: Path) -> None:
    lines = tail(two_services).stdout.splitlines()
    assert len(lines) == 200
    assert "beta: beta failed  RuntimeError: beta broke" in lines[-1]
    assert "filler 051 " in lines[0] and all("  beta  " in line for line in lines)


def test_errors_collapse_per_fingerprint_with_latest_trace(two_services: Path) -> None:
    lines = tail(two_services, "--errors").stdout.splitlines()
    assert len(lines) == 3, lines
    by_type = {line.split()[2]: line for line in lines}
    assert set(by_type) == {"ValueError", "KeyError", "RuntimeError"}
    assert " ×7  <string>:parse  " in by_type["ValueError"] and "'bad6'" in by_type["ValueError"]
    assert " ×1  " in by_type["KeyError"] and " ×1  " in by_type["RuntimeError"]
    latest = query(
        two_services,
        "SELECT trace_id FROM errors WHERE exception_type = 'ValueError' ORDER BY time DESC LIMIT 1",
    )
    assert by_type["ValueError"].endswith(f"  trace {latest[0]['trace_id']}")


def test_service_filter_and_unknown_service(two_services: Path) -> None:
    errors = tail(two_services, "--errors", "--service", "beta").stdout.splitlines()
    assert len(errors) == 1 and "RuntimeError ×1" in errors[0]
    unknown = tail(two_services, "--service", "nope")
    assert unknown.stdout == ""
    assert unknown.stderr == "obsdash: no service named 'nope' has been seen yet (known: alpha, beta)\n"


def test_reader_closing_the_pipe_early(two_services: Path) -> None:
    """`obsdash tail | head -1`: ~200 KB of output, the reader leaves after one line."""
    proc = subprocess.Popen(
        obsdash_cmd("tail", "--data-dir", str(two_services), "--window", "all"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert b"filler 051" in proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=30) == 0
    assert proc.stderr.read() == b""


class Follower:
    """`obsdash tail --follow ...` in the background, its stdout collected line by line."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            obsdash_cmd("tail", "--data-dir", str(data_dir), "--follow", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, done: Callable[[list[str]], bool], timeout: float = 20) -> list[str]:
        """Lines printed so far, once `done(lines)` holds; fails the test after `timeout` s."""
        deadline = time.monotonic() + timeout
        while not done(self.seen):
            left = deadline - time.monotonic()
            assert left > 0, f"timed out; printed so far: {self.seen}"
            try:
                self.seen.append(self.lines.get(timeout=min(left, 0.5)))
            except queue.Empty:
                pass
        return self.seen

    def interrupt(self) -> str:
        """Ctrl-C: exit status 0 and no traceback; returns stderr."""
        self.proc.send_signal(signal.SIGINT)
        status = self.proc.wait(timeout=15)
        assert self.proc.stderr is not None
        stderr = self.proc.stderr.read()
        assert status == 0, stderr
        assert "Traceback" not in stderr and "Exception" not in stderr, stderr
        return stderr


@contextmanager
def following(data_dir: Path, *args: str) -> Iterator[Follower]:
    follower = Follower(data_dir, *args)
    try:
        yield follower
    finally:
        if follower.proc.poll() is None:
            follower.proc.kill()
            follower.proc.wait()


def _total(lines: list[str]) -> int:
    """The running total of the last collapsed error line."""
    found = [COUNT.search(line) for line in lines]
    counts = [m for m in found if m]
    return int(counts[-1].group(2) or counts[-1].group(1)) if counts else 0


def test_follow_next_to_a_writer_and_other_readers(data_dir: Path) -> None:
    seed = {
        "exception.type": "SeedError",
        "exception.message": "seed",
        "obsdash.exception.location": "seed.py:f",
    }
    _write_segment(data_dir, [_log_record(time.time_ns(), "seeded", trace_id="ab" * 16, attributes=seed)])
    with following(data_dir, "--errors") as errors:
        errors.wait_for(lambda lines: len(lines) == 1)  # first print done: it hosts the hub
        with following(data_dir, "--service", "writer-svc") as logs:  # joins that hub
            assert logs.proc.stderr is not None
            note = logs.proc.stderr.readline()  # first print done (nothing) and following
            assert note == "obsdash: no service named 'writer-svc' has been seen yet (known: none)\n"
            writer = run(wrapped(data_dir, sys.executable, "-c", WRITER, service="writer-svc"))
            assert writer.returncode == 0, writer.stderr
            assert_no_internal_errors(writer.stderr)
            errors.wait_for(lambda lines: _total(lines) >= 7)
            logs.wait_for(lambda lines: len(lines) >= 7)
            assert query(data_dir, "SELECT count(*) AS n FROM errors") == [{"n": 8}]  # a third reader
            time.sleep(1)  # a repeat would show up here
            assert errors.interrupt() == ""  # the hub's host leaves; the other follower takes over
            time.sleep(0.5)
            assert logs.interrupt() == ""
    assert errors.seen[0].endswith(f'SeedError ×1  seed.py:f  "seed"  trace {"ab" * 16}')
    written = errors.seen[1:]
    assert all(TRACE.search(line) for line in written)
    assert all(" ValueError ×" in line and "<string>:fail" in line for line in written)
    counts = [COUNT.search(line) for line in written]
    assert sum(int(m.group(1)) for m in counts if m) == _total(written) == 7
    assert any(m and m.group(2) for m in counts), "the second burst must read as more of the same"
    assert len(logs.seen) == 7
    assert all("writer: request failed  ValueError: bad input" in line for line in logs.seen)


def _log_record(
    moment_ns: int, body: str, trace_id: str | None = None, attributes: dict[str, str] | None = None
) -> bytes:
    """A log record in the spool format, as the in-app side writes it."""
    return orjson.dumps(
        {
            "time_ns": moment_ns,
            "severity_text": "INFO",
            "severity_number": 9,
            "body": body,
            "trace_id": trace_id,
            "span_id": "cd" * 8 if trace_id else None,
            "attributes": attributes or {},
            "scope": "gen",
            "service_name": "gen",
            "run_id": "test-run",
            "pid": 1,
            "resource": {},
        }
    )


def _write_segment(data_dir: Path, records: list[bytes], kind: str = "logs") -> None:
    """A segment as the in-app writer makes it: a hidden temp file, then a rename into the spool."""
    spool = data_dir / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    name = f"{kind}-{time.time_ns():020d}-1-{time.time_ns() % 1_000_000:06d}.jsonl"
    (spool / f".{name}.tmp").write_bytes(b"\n".join(records) + b"\n")
    (spool / f".{name}.tmp").rename(spool / name)


def test_follow_prints_late_records_once(data_dir: Path) -> None:
    """Records land out of time order (one process flushes after another): each is printed exactly once."""
    now = time.time_ns()
    second = 1_000_000_000
    _write_segment(data_dir, [_log_record(now - 3 * second, "a"), _log_record(now - 2 * second, "b")])
    with following(data_dir) as logs:
        logs.wait_for(lambda lines: len(lines) >= 2)
        late = [
            _log_record(now - 5 * second // 2, "c-late"),
            _log_record(now - 2 * second, "e-same-time-as-b"),
        ]
        _write_segment(data_dir, [*late, _log_record(now, "d-new")])
        logs.wait_for(lambda lines: len(lines) >= 5)
        _write_segment(data_dir, [_log_record(now + second, "f-newest")])
        lines = logs.wait_for(lambda lines: len(lines) >= 6)
        time.sleep(1)  # a repeat would show up here
        assert logs.interrupt() == ""
    bodies = [line.split("gen: ")[1] for line in logs.seen]
    assert bodies[:2] == ["a", "b"] and bodies[-1] == "f-newest" and lines == logs.seen
    assert sorted(bodies[2:5]) == ["c-late", "d-new", "e-same-time-as-b"]


def _span_with_exception(trace_id: str, moment_ns: int, attributes: dict[str, str]) -> bytes:
    """A root span that recorded an exception event, in the spool format."""
    return orjson.dumps(
        {
            "trace_id": trace_id,
            "span_id": "ef" * 8,
            "parent_span_id": None,
            "name": "GET /x",
            "kind": "SERVER",
            "start_ns": moment_ns - 1_000_000,
            "end_ns": moment_ns + 1_000_000,
            "status_code": "ERROR",
            "status_message": None,
            "attributes": {"http.route": "/x"},
            "events": [{"name": "exception", "time_ns": moment_ns, "attributes": attributes}],
            "scope": "gen",
            "service_name": "gen",
            "run_id": "test-run",
            "pid": 1,
            "resource": {},
        }
    )


def test_follow_errors_one_exception_recorded_twice(data_dir: Path) -> None:
    """The log record of an exception lands first, its span's exception event later: still one error."""
    now, trace_id = time.time_ns(), "12" * 16
    raised = {
        "exception.type": "ValueError",
        "exception.message": "bad",
        "obsdash.exception.location": "app.py:f",
    }
    _write_segment(data_dir, [_log_record(now - 200_000_000, "failed", trace_id=trace_id, attributes=raised)])
    with following(data_dir, "--errors") as errors:
        errors.wait_for(lambda lines: len(lines) == 1)
        span_event = {**raised, "exception.type": "builtins.ValueError"}
        _write_segment(
            data_dir, [_span_with_exception(trace_id, now - 100_000_000, span_event)], kind="spans"
        )
        other = {
            "exception.type": "KeyError",
            "exception.message": "k",
            "obsdash.exception.location": "app.py:g",
        }
        _write_segment(data_dir, [_log_record(now, "other", trace_id="34" * 16, attributes=other)])
        errors.wait_for(lambda lines: len(lines) == 2)
        time.sleep(1)  # a repeat would show up here
        assert errors.interrupt() == ""
    assert len(errors.seen) == 2 and " ValueError ×1  app.py:f" in errors.seen[0], errors.seen
    assert " KeyError ×1  app.py:g" in errors.seen[1]


def write_llm_call(data_dir: Path, seq: int, model: str, input_tokens: int, output_tokens: int) -> None:
    """One OpenAI call, made just now, as the GenAI instrumentor records it, written as a spool segment."""
    start = time.time_ns() - 1_000_000_000
    attributes = genai.instrumentor("openai", model, genai.usage(input_tokens, output_tokens))
    span = {
        "trace_id": f"{seq:032x}",
        "span_id": f"{seq:016x}",
        "parent_span_id": None,
        "name": f"chat {model}",
        "kind": "CLIENT",
        "start_ns": start,
        "end_ns": start + 400_000_000,
        "status_code": "UNSET",
        "attributes": attributes,
        "events": [],
        "scope": genai.INSTRUMENTOR_SCOPES["openai"],
        "service_name": "bot",
        "run_id": "budget",
        "pid": 1,
        "resource": {},
    }
    spool = data_dir / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    name = f"spans-{time.time_ns():020d}-1-{seq:06d}.jsonl"
    (spool / f".{name}.tmp").write_bytes(orjson.dumps(span) + b"\n")
    (spool / f".{name}.tmp").rename(spool / name)


def test_budget_line_once_per_crossing(data_dir: Path) -> None:
    """--budget-per-day 1: a cheap call projects to cents a day (no line); a 100k-token gpt-4o call within the
    same minute to hundreds of dollars (one BUDGET line); another one keeps it over (no second line)."""
    write_llm_call(data_dir, 1, "gpt-4o-mini", 100, 10)
    first = tail(data_dir, "--budget-per-day", "1")
    assert "BUDGET" not in first.stdout

    follower = Follower(data_dir, "--window", "15m", "--budget-per-day", "1")
    try:
        time.sleep(1.0)  # its first print and first check are done
        write_llm_call(data_dir, 2, "gpt-4o", 100_000, 1000)
        lines = follower.wait_for(lambda seen: any("BUDGET" in line for line in seen))
        budget = [line for line in lines if "BUDGET" in line]
        assert len(budget) == 1
        assert "LLM spend heading for $" in budget[0] and "over the budget of $1.00/day" in budget[0]
        assert "in 2 calls over the last 1m" in budget[0]
        write_llm_call(data_dir, 3, "gpt-4o", 100_000, 1000)
        time.sleep(2.0)  # ingested, polled and checked again
        assert query(data_dir, "SELECT count(*) AS n FROM llm_calls")[0]["n"] == 3
        drained = follower.wait_for(lambda seen: follower.lines.empty())
        assert len([line for line in drained if "BUDGET" in line]) == 1
    finally:
        follower.interrupt()
    assert "BUDGET" in tail(data_dir, "--budget-per-day", "1").stdout
    refused = run(obsdash_cmd("tail", "--data-dir", str(data_dir), "--budget-per-day", "-3"))
    assert refused.returncode == 2 and "a budget must be more than $0" in refused.stderr


def test_budget_watch_rearms_after_falling_back_under() -> None:
    """Over, over, under, over: two lines."""
    from io import StringIO

    from rich.console import Console

    from obsdash.store.queries.llm import EMPTY, BurnRate
    from obsdash.tail import BudgetWatch

    per_day = iter([5.0, 6.0, 0.5, 4.0])
    out = StringIO()
    watch = BudgetWatch(
        1.0,
        lambda: (EMPTY, BurnRate(next(per_day) / 86_400 * 3600, 3600)),
        Console(file=out, width=300, color_system=None),
    )
    for _ in range(4):
        watch()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "$5.00/day" in lines[0] and "$4.00/day" in lines[1]
