"""R7: bad input never crashes a reader — property tests and a mutation fuzzer over the spool parser and ingest.

Segments are ingested by the real `Ingester` into a real DuckDB file. For every segment, whatever it holds:
ingest does not raise, the segment leaves the spool (no poison segment retried forever), and
`records stored + bad lines counted = non-empty lines in the file`. Lines that are valid records are stored, and
a few of their fields read back intact. Then the readers (`obsdash query`, `obsdash tail`, every TUI view) run
over a store holding the odd records that ingest accepts, and must neither crash nor report a failed query.

Runs derandomized by default so CI sees the same inputs each time; OBSDASH_FUZZ_EXAMPLES=N (property examples per
test, random) and OBSDASH_FUZZ_MUTATIONS=N / OBSDASH_FUZZ_SEED=S search further.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from obsdash.datadir import DataDir, prepare
from obsdash.store.database import open_database
from obsdash.store.ingest import Ingester
from obsdash.store.segments import COLUMNS, REQUIRED, Segment, is_valid_record, salvage
from tests.conftest import obsdash_cmd, run, wrapped
from tests.spoolgen import span_line

EXAMPLES = int(os.environ.get("OBSDASH_FUZZ_EXAMPLES", "0"))
MUTATIONS = int(os.environ.get("OBSDASH_FUZZ_MUTATIONS", "500"))
SEED = int(os.environ.get("OBSDASH_FUZZ_SEED", "7"))
FUZZ = settings(
    max_examples=EXAMPLES or 75,
    derandomize=not EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],  # no slow "explain"
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
INT64 = 1 << 63
INT32 = 1 << 31
MB_TEXT = "\u20ac" * 350_000  # 1.05 MB of UTF-8
FUZZED: dict[str, int] = {"hypothesis examples": 0, "wrong-type lines": 0, "mutated segments": 0}
"""How many inputs each test fed to ingest (printed at the end of each test: run with -s to see)."""


# -- the store under test --------------------------------------------------------------------------------------
class IngestBench:
    """A real data dir and DuckDB file, and the real Ingester over its spool."""

    def __init__(self, root: Path) -> None:
        self.data_dir = prepare(DataDir(root))
        self.conn = open_database(self.data_dir)
        self.ingester = Ingester(self.conn, self.data_dir.spool, self.data_dir.ingested)
        self._names = itertools.count(1)

    def write(self, kind: str, data: bytes) -> str:
        """Put one segment in the spool; returns its name."""
        n = next(self._names)
        name = f"{kind}-{n:020d}-1-{n:06d}.jsonl"
        (self.data_dir.spool / name).write_bytes(data)
        return name

    def ingest(self) -> None:
        """One ingest pass, which must not raise and must empty the spool."""
        try:
            self.ingester.run()
        finally:
            left = list(self.data_dir.spool.glob("*.jsonl"))
            for path in left:  # a segment that broke ingest would break every later example too
                path.unlink()
        assert not left, f"segments left in the spool after ingest: {[p.name for p in left]}"

    def counts(self, name: str) -> tuple[int, int]:
        """(records stored, bad lines) that ingest recorded for segment `name`."""
        row = self.conn.execute(
            "SELECT records, bad_lines FROM ingested_segments WHERE name = ?", [name]
        ).fetchone()
        assert row is not None, f"{name} was not recorded as ingested"
        return int(row[0]), int(row[1])

    def one(self, sql: str, marker: str) -> tuple[Any, ...]:
        rows = self.conn.execute(sql, [marker]).fetchall()
        assert len(rows) == 1, (sql, marker, rows)
        return tuple(rows[0])


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestBench]:
    """On tmpfs when there is one: each salvaged segment is a commit, and a commit's fsync on this box's disk
    made the fuzzer 4x slower."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        root = Path(tempfile.mkdtemp(prefix="obsdash-fuzz-", dir=shm))
    else:
        root = tmp_path_factory.mktemp("fuzz")
    made = IngestBench(root / "data")
    yield made
    made.conn.close()
    shutil.rmtree(root, ignore_errors=True)


def lines_in(data: bytes) -> int:
    """Non-empty lines, as both the fast path and the salvage path count them."""
    return sum(1 for line in data.split(b"\n") if line.strip())


# -- valid records ---------------------------------------------------------------------------------------------
small_text = st.text(
    st.characters(codec="utf-8"), max_size=24
)  # NUL, controls, any plane; no lone surrogates
text = st.one_of(small_text, small_text, small_text, st.just(MB_TEXT))
int64 = st.integers(-INT64, INT64 - 1)
int32 = st.integers(-INT32, INT32 - 1)
finite = st.floats(allow_nan=False, allow_infinity=False)
json_leaf = st.one_of(st.none(), st.booleans(), int64, finite, small_text)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(small_text, inner, max_size=3),
    max_leaves=12,
)
attributes = st.dictionaries(small_text, json_value, max_size=4)
maybe = st.none().__or__


def times() -> st.SearchStrategy[tuple[int, int]]:
    """(start, end): anything in int64, negative included, end before start included, as long as end - start
    fits int64 (the stored duration)."""
    return st.tuples(int64, int64).filter(lambda t: -INT64 <= t[1] - t[0] < INT64)


@st.composite
def valid_record(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A record of `kind` that must be stored (the test sets its marker field)."""
    common = {
        "service_name": draw(maybe(text)),
        "run_id": draw(maybe(small_text)),
        "pid": draw(maybe(int32)),
        "resource": draw(maybe(attributes)),
    }
    if kind == "spans":
        start, end = draw(times())
        event = st.fixed_dictionaries(
            {"name": maybe(small_text), "time_ns": maybe(int64), "attributes": attributes}
        )
        return common | {
            "trace_id": draw(small_text),
            "parent_span_id": draw(maybe(small_text)),
            "parent_remote": draw(maybe(st.booleans())),
            "name": draw(text),
            "kind": draw(maybe(small_text)),
            "start_ns": start,
            "end_ns": end,
            "status_code": draw(maybe(small_text)),
            "status_message": draw(maybe(text)),
            "attributes": draw(attributes),
            "events": draw(st.lists(event, max_size=2)),
            "scope": draw(maybe(small_text)),
        }
    if kind == "logs":
        return common | {
            "time_ns": draw(int64),
            "severity_text": draw(maybe(small_text)),
            "severity_number": draw(maybe(int32)),
            "body": draw(maybe(text)),
            "span_id": draw(maybe(small_text)),
            "attributes": draw(maybe(attributes)),
            "scope": draw(maybe(small_text)),
        }
    if kind == "metrics":
        return common | {
            "time_ns": draw(int64),
            "start_ns": draw(maybe(int64)),
            "name": draw(text),
            "kind": draw(maybe(small_text)),
            "value": draw(maybe(finite | int64)),
            "count": draw(maybe(int64)),
            "sum": draw(maybe(finite)),
            "min": draw(maybe(finite)),
            "max": draw(maybe(finite)),
            "bucket_counts": draw(maybe(st.lists(int64, max_size=4))),
            "explicit_bounds": draw(maybe(st.lists(finite, max_size=4))),
            "attributes": draw(attributes),
        }
    return {
        "event": draw(small_text),
        "time_ns": draw(int64),
        "pid": draw(maybe(int32)),
        "service_name": draw(maybe(text)),
        "host": draw(maybe(small_text)),
        "root": draw(maybe(st.booleans())),
        "parent_pid": draw(maybe(int32)),
        "command": draw(maybe(text)),
        "exit_code": draw(maybe(int32)),
        "argv": draw(st.lists(small_text, max_size=3)),
        "startup_ms": draw(maybe(finite)),
        "duration_ms": draw(maybe(finite)),
        "dropped": draw(maybe(st.dictionaries(small_text, int64, max_size=2))),
        "internal_errors": draw(maybe(json_value)),
    }


MARKER_FIELD = {"spans": "span_id", "logs": "trace_id", "metrics": "unit", "runs": "run_id"}
"""Each kind's field that carries a unique marker, to find a record again."""
MARKER_COLUMN = MARKER_FIELD
STORED_IN = {"spans": "spans", "logs": "logs", "metrics": "metric_points", "runs": "run_events"}


# -- odd lines: each a function of a (marked) valid record to the bytes of one line ------------------------------
PLACEHOLDER = "\ue000obsdash-fuzz\ue000"
WRONG_VALUES: list[bytes] = [
    b"5",
    b"-7",
    b"0",
    b'"abc"',
    b'"12"',
    b'""',
    b"true",
    b"false",
    b"null",
    b"[]",
    b"[1,2]",
    b"{}",
    b'{"a":1}',
    b"1.5",
    b"-0.0",
    b"1e300",
    b"1e999",
    b"18446744073709551616",  # 2^64
    b"-18446744073709551617",
    b"123456789012345678901234567890",
    b"9223372036854775808",  # 2^63: one past BIGINT
    b"-9223372036854775808",  # BIGINT's least: a span's end - start overflows
    b"2147483648",  # 2^31: one past INTEGER
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b'"\\u0000"',
    b'"\\ud800"',  # a lone surrogate escape
    b'[{"name": 5, "time_ns": "x"}]',
    b"[null, 1]",
]
RAW_BYTES: list[bytes] = [
    b"\x00",  # raw NUL inside a string
    b"a\x00b",
    b"\xff\xfe",  # invalid UTF-8
    b"\xc3",  # truncated sequence
    b"\x80",  # lone continuation byte
    b"\xc0\xaf",  # overlong encoding
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\x01\x1b[2J",  # raw control characters
    b"\r",
    b'"',
    b"\\",
]


def encode(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


def _with_field(record: dict[str, Any], field: str, value: bytes) -> bytes:
    """The record with `field` set to the raw JSON `value`."""
    return encode(record | {field: PLACEHOLDER}).replace(orjson.dumps(PLACEHOLDER), value)


def wrong_type(field: str, value: bytes, record: dict[str, Any]) -> bytes:
    return _with_field(record, field, value)


def missing(field: str, record: dict[str, Any]) -> bytes:
    return encode({k: v for k, v in record.items() if k != field})


def raw_in_string(field: str, raw: bytes, record: dict[str, Any]) -> bytes:
    return _with_field(record, field, b'"x' + raw + b'y"')


def deep(levels: int, record: dict[str, Any]) -> bytes:
    nested = b"[" * levels + b"]" * levels
    return _with_field(record, "attributes", b'{"deep":' + nested + b"}")


def duplicate_key(field: str, value: bytes, last: bool, record: dict[str, Any]) -> bytes:
    line = encode(record)
    extra = orjson.dumps(field) + b":" + value
    return line[:-1] + b"," + extra + b"}" if last else b"{" + extra + b"," + line[1:]


def truncated(at: int, record: dict[str, Any]) -> bytes:
    line = encode(record)
    return line[: at % max(len(line), 1)]


def garbage(data: bytes, _record: dict[str, Any]) -> bytes:
    return data


def non_object(value: Any, _record: dict[str, Any]) -> bytes:
    return orjson.dumps(value)


def fields_of(kind: str) -> st.SearchStrategy[str]:
    return st.sampled_from(sorted(COLUMNS[kind]))


def odd_line(kind: str) -> st.SearchStrategy[Callable[[dict[str, Any]], bytes]]:
    """Lines that may be stored or counted bad, but never crash ingest."""
    wrong = st.sampled_from(WRONG_VALUES)
    return st.one_of(
        st.builds(partial, st.just(wrong_type), fields_of(kind), wrong),
        st.builds(partial, st.just(missing), st.sampled_from(REQUIRED[kind])),
        st.builds(partial, st.just(raw_in_string), fields_of(kind), st.sampled_from(RAW_BYTES)),
        st.builds(partial, st.just(deep), st.sampled_from([5000, 1100, 300, 64])),
        st.builds(partial, st.just(duplicate_key), fields_of(kind), wrong, st.booleans()),
        st.builds(partial, st.just(truncated), st.integers(0, 400)),
        st.builds(partial, st.just(garbage), st.binary(max_size=64)),
        st.builds(partial, st.just(non_object), json_value.filter(lambda v: not isinstance(v, dict))),
    )


@dataclass
class Plan:
    """One segment to write: valid records and odd lines in order, and how the lines are laid out."""

    kind: str
    items: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bytes] | None]]
    """(record, None) stays valid; (record, odd) writes odd(record) instead."""
    crlf: bool
    blank_lines: int
    final_newline: bool


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    kind = draw(st.sampled_from(list(COLUMNS)))
    item = st.tuples(valid_record(kind), st.none() | odd_line(kind))
    return Plan(
        kind,
        draw(st.lists(item, min_size=1, max_size=6)),
        draw(st.booleans()),
        draw(st.integers(0, 2)),
        draw(st.booleans()),
    )


_markers = itertools.count()


def lay_out(plan: Plan) -> tuple[bytes, dict[str, dict[str, Any]]]:
    """The segment's bytes, and its valid records by marker."""
    valid: dict[str, dict[str, Any]] = {}
    lines = []
    for unmarked, odd in plan.items:
        marker = f"m{next(_markers)}-{os.getpid()}"
        record = unmarked | {MARKER_FIELD[plan.kind]: marker}
        if odd is None:
            valid[marker] = record
            lines.append(encode(record))
        else:
            lines.append(odd(record))
    lines[1:1] = [b" \t"] * plan.blank_lines + [b""] * plan.blank_lines
    separator = b"\r\n" if plan.crlf else b"\n"
    return separator.join(lines) + (separator if plan.final_newline else b""), valid


# -- checks on what was stored ----------------------------------------------------------------------------------
def trunc_us(ns: int) -> int:
    """ns → µs as DuckDB's `//` does it (towards zero)."""
    return -(-ns // 1000) if ns < 0 else ns // 1000


def same_json(stored: Any, expected: Any) -> bool:
    if stored is None:
        return expected is None
    return bool(
        orjson.loads(stored) == ({} if expected is None else expected)
    )  # NULL attributes are kept as {}


def check_stored(bench: IngestBench, kind: str, marker: str, record: dict[str, Any]) -> None:
    """A few fields of a valid record, read back from the store, equal what was written."""
    if kind == "spans":
        name, start, duration, attrs, pid, events = bench.one(
            "SELECT name, epoch_us(start_time), duration_ms, attributes, pid, "
            "(SELECT count(*) FROM span_events e WHERE e.span_id = s.span_id) FROM spans s WHERE span_id = ?",
            marker,
        )
        assert (name, start, pid, events) == (
            record["name"],
            trunc_us(record["start_ns"]),
            record["pid"],
            len(record["events"]),
        )
        assert math.isclose(duration, (record["end_ns"] - record["start_ns"]) / 1e6)
        assert same_json(attrs, record["attributes"])
    elif kind == "logs":
        body, when, severity, attrs = bench.one(
            "SELECT body, epoch_us(time), severity_number, attributes FROM logs WHERE trace_id = ?", marker
        )
        assert (body, when, severity) == (
            record["body"],
            trunc_us(record["time_ns"]),
            record["severity_number"],
        )
        assert same_json(attrs, record["attributes"])
    elif kind == "metrics":
        name, value, count, bounds = bench.one(
            "SELECT name, value, count, explicit_bounds FROM metric_points WHERE unit = ?", marker
        )
        expected = record["value"]
        assert (name, count) == (record["name"], record["count"])
        assert value == (None if expected is None else float(expected))
        assert same_json(bounds, record["explicit_bounds"])
    else:
        event, command, exit_code, argv = bench.one(
            "SELECT event, command, exit_code, details->'$.argv' FROM run_events WHERE run_id = ?", marker
        )
        assert (event, command, exit_code) == (record["event"], record["command"], record["exit_code"])
        assert same_json(argv, record["argv"])


# -- the property tests ----------------------------------------------------------------------------------------
@FUZZ
@given(plan=plans())
def test_any_segment_is_stored_or_counted_never_raises(bench: IngestBench, plan: Plan) -> None:
    data, valid = lay_out(plan)
    name = bench.write(plan.kind, data)
    bench.ingest()
    FUZZED["hypothesis examples"] += 1
    stored, bad = bench.counts(name)
    assert stored + bad == lines_in(data), (stored, bad, data[:2000])
    assert stored >= len(valid)
    for marker, record in valid.items():
        check_stored(bench, plan.kind, marker, record)


@FUZZ
@given(plan=plans())
def test_salvage_agrees_with_the_store(bench: IngestBench, plan: Plan, tmp_path_factory: Any) -> None:
    """The slow path alone: every valid line kept, and what it keeps loads (no segment lost to one line)."""
    data, valid = lay_out(plan)
    folder = tmp_path_factory.getbasetemp() / "salvage"
    folder.mkdir(exist_ok=True)
    path = folder / f"{plan.kind}-1-1-1.jsonl"
    path.write_bytes(data)
    good, bad = salvage(Segment(path, plan.kind))
    FUZZED["hypothesis examples"] += 1
    assert len(good) + bad == lines_in(data)
    assert len(good) >= len(valid)
    assert all(is_valid_record(plan.kind, orjson.loads(line)) for line in good)
    # the kept lines load in one go: DuckDB accepts everything salvage passes
    name = bench.write(plan.kind, b"\n".join(good))
    bench.ingest()
    assert bench.counts(name) == (len(good), 0)


def test_a_wrong_type_in_any_field_costs_only_its_line(bench: IngestBench) -> None:
    """Each field of each kind given each wrong value, the odd lines between two good ones: the good ones are
    stored. (Before the salvage path checked every field's type and range, 148 of these 1,856 lines, alone in
    a segment, cost their segment's good lines too: a pid over 2^31, a string where DuckDB wants a BOOLEAN...)"""
    now = time.time_ns()
    bases = {
        "spans": json.loads(span_line(0, trace=1)),
        "logs": {"time_ns": now, "body": "ok"},
        "metrics": {"time_ns": now, "name": "m", "value": 1.0},
        "runs": {"event": "start", "time_ns": now, "run_id": "r"},
    }
    written = {}
    for kind, base in bases.items():
        for field in COLUMNS[kind]:
            good = [base | {MARKER_FIELD[kind]: f"good-{kind}-{field}-{i}"} for i in range(2)]
            odd = [wrong_type(field, value, base) for value in WRONG_VALUES]
            segment = [encode(good[0]), *odd, encode(good[1])]
            written[bench.write(kind, b"\n".join(segment))] = (kind, good, len(segment))
            FUZZED["wrong-type lines"] += len(odd)
    bench.ingest()
    for name, (kind, good, lines) in written.items():
        stored, bad = bench.counts(name)
        assert stored + bad == lines and stored >= 2, (name, stored, bad)
        for record in good:
            marker = record[MARKER_FIELD[kind]]
            bench.one(f"SELECT 1 FROM {STORED_IN[kind]} WHERE {MARKER_COLUMN[kind]} = ?", marker)


# -- the mutation fuzzer ----------------------------------------------------------------------------------------
WRAPPED_PROGRAM = """
import logging, sqlite3
logging.basicConfig(level=logging.INFO)
db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE t (x)")
db.execute("INSERT INTO t VALUES (1)")
db.execute("SELECT * FROM t").fetchall()
for i in range(5):
    logging.info("hello %s", i)
try:
    1 / 0
except ZeroDivisionError:
    logging.exception("boom")
"""
INTERESTING: list[bytes] = [
    *RAW_BYTES,
    b"\n",
    b"\r\n",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"-",
    b"\\u0000",
    b"\\ud800",
    b"NaN",
    b"null",
    b"true",
    b"99999999999999999999",
    b"-9223372036854775808",
    b"1e999",
    b"[" * 300,
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    """Valid segments by kind: a real wrapped run's, and the dashboard tests' fixture records in chunks of 8."""
    from tests.tui.store import fixture_records

    data_dir = tmp_path_factory.mktemp("wrapped") / "data"
    result = run(wrapped(data_dir, sys.executable, "-c", WRAPPED_PROGRAM))
    assert result.returncode == 0, result.stderr
    segments: dict[str, list[bytes]] = {kind: [] for kind in COLUMNS}
    for path in sorted((data_dir / "spool").glob("*.jsonl")):
        segments[path.name.split("-", 1)[0]].append(path.read_bytes())
    assert segments["spans"] and segments["logs"] and segments["runs"], segments
    for kind, records in fixture_records().items():
        for start in range(0, len(records), 8):
            segments[kind].append(b"".join(encode(r) + b"\n" for r in records[start : start + 8]))
    return segments


def _flip_bits(rng: random.Random, data: bytes, _other: bytes) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if buffer:
            buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)
    return bytes(buffer)


def _truncate(rng: random.Random, data: bytes, _other: bytes) -> bytes:
    return data[: rng.randint(0, len(data))]


def _splice(rng: random.Random, data: bytes, other: bytes) -> bytes:
    return data[: rng.randint(0, len(data))] + other[rng.randint(0, len(other)) :]


def _insert(rng: random.Random, data: bytes, _other: bytes) -> bytes:
    at = rng.randint(0, len(data))
    piece = rng.choice(INTERESTING) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 8))
    return data[:at] + piece + data[at:]


def _delete(rng: random.Random, data: bytes, _other: bytes) -> bytes:
    at = rng.randint(0, len(data))
    return data[:at] + data[at + rng.randint(1, 16) :]


def _duplicate(rng: random.Random, data: bytes, _other: bytes) -> bytes:
    at = rng.randint(0, len(data))
    end = min(len(data), at + rng.randint(1, 200))
    return data[:end] + data[at:end] + data[end:]


MUTATORS = [_flip_bits, _truncate, _splice, _insert, _delete, _duplicate]


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """One to four mutations of `data` (`pool`: segments to splice from)."""
    for _ in range(rng.randint(1, 4)):
        data = rng.choice(MUTATORS)(rng, data, rng.choice(pool))
    return data


def test_the_corpus_is_valid(bench: IngestBench, corpus: dict[str, list[bytes]]) -> None:
    """The fuzzer's seeds ingest without a bad line (else 'unchanged lines are stored' proves nothing)."""
    names = [(bench.write(kind, data), data) for kind, segments in corpus.items() for data in segments]
    bench.ingest()
    for name, data in names:
        assert bench.counts(name) == (lines_in(data), 0), name


def test_mutated_segments_cost_only_their_bad_lines(
    bench: IngestBench, corpus: dict[str, list[bytes]]
) -> None:
    """Bit flips, truncation, splicing, insertion, deletion, duplication over valid segments, MUTATIONS of them:
    ingest never raises, every line is stored or counted, and every line left intact is stored."""
    rng = random.Random(SEED)
    pool = [data for segments in corpus.values() for data in segments]
    intact_lines = {
        kind: {line.strip() for data in segments for line in data.split(b"\n")}
        for kind, segments in corpus.items()
    }
    done = 0
    while done < MUTATIONS:
        batch = []
        for _ in range(
            min(10, MUTATIONS - done)
        ):  # ten at a time: one pass, one failed fast load, ten salvages
            kind = rng.choice(list(corpus))
            data = mutate(rng, rng.choice(corpus[kind]), pool)
            batch.append((bench.write(kind, data), kind, data))
        bench.ingest()
        for name, kind, data in batch:
            stored, bad = bench.counts(name)
            assert stored + bad == lines_in(data), (name, stored, bad, data)
            intact = sum(
                1 for line in data.split(b"\n") if line.strip() and line.strip() in intact_lines[kind]
            )
            assert stored >= intact, (name, stored, intact, data)
        done += len(batch)
    FUZZED["mutated segments"] += done
    print(f"\nR7 fuzzing: {FUZZED}")


# -- readers over a store holding odd records -------------------------------------------------------------------
DEEP = b"[" * 5000 + b"]" * 5000
MARKUP = [
    "[/]",
    "[bold]unclosed",
    "[@click=app.quit]quit[/]",
    "[link=https://example.com]x[/link]",
    "[[",
    "]",
]
"""Text that Rich/Textual would read as markup if a cell took it for markup."""
SHOUTY = "nul\x00 \x1b[2J\x1b[H\x1b[31mred\x1b[0m bell\x07 back\x08 cr\r tab\t lf\n end"
"""Control characters that would clear or recolour the reader's terminal if printed raw."""


def _raw(record: dict[str, Any], **fields: bytes) -> bytes:
    """`record` as a line with `fields` set to raw JSON text (NaN, 1e999, deep nesting...)."""
    line = encode(record | {k: PLACEHOLDER + k for k in fields})
    for k, v in fields.items():
        line = line.replace(orjson.dumps(PLACEHOLDER + k), v)
    return line


def odd_records(now_ns: int) -> dict[str, list[bytes]]:
    """Odd lines that ingest stores as they are (one segment each), at times the default windows show."""
    s = 1_000_000_000
    exception = {
        "exception.type": "Boom\x00Error[/]",
        "exception.message": MB_TEXT,
        "exception.stacktrace": "Traceback (most recent call last):\x1b[2J\n" + MB_TEXT,
        "obsdash.exception.location": "[bold]x.py:f",
    }

    def span(n: int, **fields: Any) -> dict[str, Any]:
        return {
            "trace_id": f"{n:032x}",
            "span_id": f"{n:016x}",
            "name": "GET /odd",
            "kind": "SERVER",
            "start_ns": now_ns - 60 * s,
            "end_ns": now_ns - 59 * s,
            "status_code": "ERROR",
            "attributes": {"http.route": "/odd", "http.response.status_code": 500},
            "events": [],
            "service_name": "odd",
            "run_id": "odd-run",
            "pid": 7,
        } | fields

    genai = {"gen_ai.system": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
    spans = [
        encode(span(1, name=MB_TEXT)),
        encode(span(2, name=SHOUTY, attributes={"http.route": SHOUTY, "k\x00": "v\x00"})),
        _raw(span(3), attributes=b'{"http.route":"/deep","deep":' + DEEP + b"}"),
        encode(span(4, end_ns=now_ns - 61 * s)),  # ends before it starts
        encode(span(5, start_ns=now_ns - 30 * s, end_ns=INT64 - 1)),  # ends in 2262
        encode(span(6, start_ns=-INT64, end_ns=-INT64 + 1)),  # 1677
        _raw(span(7), name=b"5", kind=b"7", status_code=b'{"a":1}', start_ns=b"1.7e18"),
        encode(
            span(
                8,
                attributes={
                    "http.route": MB_TEXT,
                    "http.response.status_code": "abc",
                    "db.statement": MB_TEXT,
                },
            )
        ),
        encode(
            span(
                9,
                attributes=genai
                | {"gen_ai.usage.input_tokens": INT64 - 1, "gen_ai.usage.output_tokens": INT64 - 1},
            )
        ),
        encode(
            span(
                10,
                attributes=genai
                | {"gen_ai.usage.input_tokens": INT64 - 1, "gen_ai.request.model": "m\x00[/]"},
            )
        ),
        _raw(
            span(11),
            attributes=b'{"gen_ai.system":"openai","gen_ai.request.model":"gpt-4o","gen_ai.usage.input_tokens":'
            b'123456789012345678901234567890,"gen_ai.usage.output_tokens":-5,"x":NaN,"y":Infinity}',
        ),
        encode(span(12, events=[{"name": "exception", "time_ns": now_ns - 60 * s, "attributes": exception}])),
        encode(
            span(
                13,
                events=[
                    {"name": "exception", "time_ns": INT64 - 1, "attributes": {"exception.type": 5}},
                    None,
                ],
            )
        ),
        encode(span(14, trace_id=f"{1:032x}", parent_span_id=f"{1:016x}", name="child\x00")),
        encode(span(15, trace_id=f"{1:032x}", parent_span_id="ffffffffffffffff", start_ns=now_ns - 70 * s)),
        encode(span(16, trace_id="", span_id="", name="")),
        encode(
            span(
                17, resource={"service.name": MB_TEXT, "deep": [[[[]]]]}, scope=MB_TEXT, service_name=MB_TEXT
            )
        ),
        *(
            encode(span(20 + i, name=m, service_name=m, attributes={"http.route": m}))
            for i, m in enumerate(MARKUP)
        ),
    ]

    def log(**fields: Any) -> dict[str, Any]:
        return {
            "time_ns": now_ns - 40 * s,
            "severity_text": "ERROR",
            "severity_number": 17,
            "body": "x",
            "trace_id": f"{1:032x}",
            "span_id": f"{1:016x}",
            "attributes": {},
            "scope": "odd",
            "service_name": "odd",
            "run_id": "odd-run",
            "pid": 7,
        } | fields

    logs = [
        encode(log(body=MB_TEXT)),
        encode(log(body=SHOUTY, severity_text="\x1b[31mERR", scope=SHOUTY, service_name="\x1b[2J")),
        encode(log(severity_number=INT32 - 1, severity_text=None)),
        encode(log(severity_number=-INT32, severity_text="")),
        encode(log(time_ns=-INT64)),
        encode(log(time_ns=INT64 - 1)),
        encode(log(attributes=exception)),
        _raw(log(), attributes=b'{"deep":' + DEEP + b"}", body=b"12345", trace_id=b"1"),
        _raw(log(), attributes=b'{"exception.type":' + DEEP + b',"exception.message":{"a":1}}'),
        encode(log(trace_id=None, span_id=None, body=None, service_name=None, scope=None)),
        *(encode(log(body=m, severity_text=m, service_name=m, scope=m)) for m in MARKUP),
    ]

    def metric(**fields: Any) -> dict[str, Any]:
        return {
            "time_ns": now_ns - 20 * s,
            "start_ns": now_ns - 80 * s,
            "name": "odd.metric",
            "unit": "ms",
            "kind": "histogram",
            "value": 1.0,
            "count": 1,
            "sum": 1.0,
            "min": 1.0,
            "max": 1.0,
            "bucket_counts": [1],
            "explicit_bounds": [],
            "attributes": {},
            "service_name": "odd",
            "run_id": "odd-run",
            "pid": 7,
        } | fields

    metrics = [
        _raw(metric(), value=b"1e999", sum=b"-1e999", max=b"NaN", min=b"-Infinity"),
        encode(metric(count=INT64 - 1, sum=1.7e308)),
        encode(metric(count=INT64 - 1, sum=1.7e308, time_ns=now_ns - 10 * s)),
        encode(metric(name=MB_TEXT, kind="sum", value=-1e308)),
        encode(metric(name="nul\x00[/]metric", kind=None, bucket_counts="abc", explicit_bounds={"a": 1})),
        _raw(metric(kind="gauge"), bucket_counts=DEEP, attributes=b'{"deep":' + DEEP + b"}"),
        encode(metric(time_ns=-5, start_ns=INT64 - 1)),
    ]

    def run_record(**fields: Any) -> dict[str, Any]:
        return {
            "event": "start",
            "time_ns": now_ns - 90 * s,
            "run_id": "odd-run",
            "pid": 7,
            "service_name": "odd",
            "host": "h",
            "root": True,
            "parent_pid": 1,
            "command": "python odd.py",
            "argv": ["odd.py"],
            "startup_ms": 1.0,
        } | fields

    runs = [
        encode(run_record(command=MB_TEXT, argv=[MB_TEXT])),
        _raw(
            run_record(event="end", exit_code=0),
            dropped=b'"lots"',
            written=b"[1,2]",
            internal_errors=DEEP,
            instrumentation=b"5",
            duration_ms=b"1e999",
            redactions=b'{"x":NaN}',
        ),
        encode(run_record(event="end", pid=INT32 - 1, exit_code=-INT32, dropped={"queue_full": INT64 - 1})),
        encode(
            run_record(
                event="stats", run_id="other\x00run", dropped={"queue_full": "abc"}, written={"spans": -1}
            )
        ),
        encode(run_record(event="\x1b[2J", run_id="", time_ns=INT64 - 1)),
    ]
    return {"spans": spans, "logs": logs, "metrics": metrics, "runs": runs}


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory: pytest.TempPathFactory, corpus: dict[str, list[bytes]]) -> Iterator[Any]:
    """A store holding the odd records and 60 mutated segments, behind a hub this process hosts (so the CLI
    runs below reach it over the socket, as a second reader does)."""
    from obsdash.hub.client import open_store

    data_dir = DataDir(tmp_path_factory.mktemp("odd") / "data")
    spool = prepare(data_dir).spool
    n = itertools.count(1)
    for kind, lines in odd_records(time.time_ns()).items():
        for line in lines:
            i = next(n)
            (spool / f"{kind}-{i:020d}-7-{i:06d}.jsonl").write_bytes(line + b"\n")
    rng = random.Random(SEED + 1)
    pool = [data for segments in corpus.values() for data in segments]
    for _ in range(60):
        i, kind = next(n), rng.choice(list(corpus))
        (spool / f"{kind}-{i:020d}-7-{i:06d}.jsonl").write_bytes(mutate(rng, rng.choice(corpus[kind]), pool))
    store = open_store(data_dir)
    store.sync()
    # the hub's watcher may ingest before this sync does (the sync then finds nothing new): count the store
    totals = store.query(
        "SELECT sum(bad_lines) AS bad, sum(records) AS records FROM ingested_segments"
    ).records()[0]
    assert totals["bad"] and totals["records"] > 60, totals
    yield store
    store.close()


def _no_traceback(result: Any) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]


QUERIES = [
    ("spans", "table json csv"),
    ("span_events", "table"),
    ("logs", "table json csv"),
    ("metric_points", "table json"),
    ("run_events", "table json"),
    ("runs", "table"),
    ("errors", "table json"),
    ("llm_calls", "table json"),
]


def test_query_reads_odd_records(odd_store: Any) -> None:
    """`obsdash query` over every table and view in every format: status 0, and the table format shows no raw
    control character (a value with ESC [2J would clear the reader's terminal)."""
    data_dir = str(odd_store.data_dir.root)
    sums = "SELECT sum(count) * 10 AS over_64_bits, [1::HUGEINT << 100] AS l, map([1], [2]) AS m FROM metric_points"
    for sql, formats in [(f"SELECT * FROM {table}", formats) for table, formats in QUERIES] + [
        (sums, "table json csv")
    ]:
        for fmt in formats.split():
            result = run(obsdash_cmd("query", "--data-dir", data_dir, "--format", fmt, sql))
            _no_traceback(result)
            if fmt == "table":
                assert not set(result.stdout) & {"\x00", "\x1b", "\x07", "\x08", "\r"}, sql


def test_tail_reads_odd_records(odd_store: Any) -> None:
    """`obsdash tail` (one shot) over logs and errors, the window reaching back to 1970: status 0, no raw
    control character reaches the terminal."""
    data_dir = str(odd_store.data_dir.root)
    for extra in ([], ["--errors"]):
        result = run(obsdash_cmd("tail", "--data-dir", data_dir, "--window", "all", *extra))
        _no_traceback(result)
        assert result.stdout.strip(), extra
        assert not set(result.stdout) & {"\x00", "\x1b", "\x07", "\x08", "\r"}, extra


def test_every_view_opens_on_odd_records(odd_store: Any) -> None:
    """The dashboard over the odd store: every view loads without a failed query, each odd trace opens, and SQL
    over the odd columns shows. (Before: a span or metric named `[/]` and an infinite metric value crashed the
    app; a 1 MB span name kept the Traces view from ever finishing.)"""
    from textual.widgets import DataTable, Input

    from obsdash.store.queries.window import utc_now
    from obsdash.tui.screens.sql import SqlScreen
    from obsdash.tui.screens.trace import TraceScreen
    from obsdash.tui.widgets.table import LiveTable
    from tests.tui.conftest import dashboard, view, wait_loaded, wait_until
    from tests.tui.conftest import run as run_scenario

    app = dashboard(odd_store, "1h", clock=utc_now)

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_loaded(pilot, app.screen)
            for key in "345712":
                await view(pilot, key)
            traces = app.screen
            table = traces.query_one("#traces", LiveTable)
            assert table.row_count >= 20
            # the odd traces: 1 MB name, control characters, deep attributes, ends before it starts, ends in
            # 2262, 1 MB exception, two exception events, 1 MB service, a name `[/]`
            for n in (1, 2, 3, 4, 5, 12, 13, 17, 20):
                key = f"{n:032x}/{n:016x}"
                table.focus()
                table.move_cursor(row=table.get_row_index(key))
                await pilot.press("enter")
                await wait_until(pilot, lambda: isinstance(app.screen, TraceScreen))
                await wait_loaded(pilot, app.screen)
                await pilot.press("escape")
                await wait_until(pilot, lambda: app.screen is traces)
            await pilot.press("6")
            await wait_until(pilot, lambda: isinstance(app.screen, SqlScreen))
            sql = app.screen
            prompt = sql.query_one("#sql-input", Input)
            prompt.value = 'SELECT name AS "[/]", service_name, attributes, duration_ms FROM spans'
            await pilot.press("enter")
            await wait_loaded(pilot, sql, 1)
            assert sql.query_one("#sql-results", DataTable).row_count > 20
            failed = [n.message for n in app._notifications if n.severity == "error"]
            assert not failed, failed

    run_scenario(scenario)
