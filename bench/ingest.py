"""P4 — ingest: spool segments into the store, against `read_json` of the same files straight into a table.

`python -m bench.ingest [--spans 200k] [--per-segment 500] [--repeat 5]` writes span segments shaped like the
app side's (docs/spool-format.md: 8 attributes, a resource, one event in 30), then, interleaved, times
(a) obsdash's ingest — `Hub.sync()` on a fresh store: read_json with the explicit schema into a temporary table,
hot-column extraction, span events, segment bookkeeping, one transaction per batch — and (b) the limit: one
`CREATE TABLE AS SELECT * FROM read_json(...)` with the same explicit schema into a fresh database, at DuckDB's
defaults. Target: (a) ≥ 0.6 × (b) in spans per second. A third row, (c), gives the limit the one setting the
hub changes for speed (`preserve_insertion_order = false`, store/database.py), so the table shows what that
setting is worth on both sides.

After the timed rounds, one more round of each runs with every statement of obsdash's ingest timed (wall and
process CPU, which counts every DuckDB thread): where obsdash's time goes, and on how many of the cores, against
the limit's one statement. The P4 row quotes it.

`--stored 3M` starts (a) on a store already holding that many spans (built once, copied for each round), which
shows what a fresh store hides (maintaining the `spans_trace` index grew with the store: 0.36x into 3M spans
against 0.48x without it, which is why it was dropped).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson

from bench._common import markdown_table, median, parse_count
from bench.headline import Headline
from obsdash.datadir import DataDir, prepare
from obsdash.hub.client import open_store
from obsdash.store.database import open_database
from obsdash.store.ingest import READ_COLUMNS, Ingester

ROUTES = ["/items", "/items/<int:item_id>", "/orders", "/checkout", "/weather"]


def _span(rng: random.Random, i: int, t0: int) -> bytes:
    start = t0 + i * 1_000_000
    record = {
        "trace_id": f"{rng.getrandbits(128):032x}",
        "span_id": f"{rng.getrandbits(64):016x}",
        "parent_span_id": None if i % 3 == 0 else f"{rng.getrandbits(64):016x}",
        "parent_remote": None,
        "name": "GET /items" if i % 3 == 0 else "SELECT",
        "kind": "SERVER" if i % 3 == 0 else "CLIENT",
        "start_ns": start,
        "end_ns": start + rng.randint(100_000, 30_000_000),
        "status_code": "ERROR" if i % 40 == 0 else "UNSET",
        "status_message": None,
        "attributes": {
            "http.method": "GET",
            "http.route": rng.choice(ROUTES),
            "http.status_code": 200,
            "http.target": "/items?page=2",
            "net.peer.ip": "127.0.0.1",
            "http.user_agent": "python-requests/2.32",
            "db.system": "sqlite",
            "db.statement": "SELECT id, name, price FROM items WHERE id = ?",
        },
        "events": (
            [{"name": "exception", "time_ns": start, "attributes": {"exception.type": "ValueError"}}]
            if i % 30 == 0
            else []
        ),
        "scope": "opentelemetry.instrumentation.flask",
        "service_name": "shop",
        "run_id": "20261124-120000-abcd",
        "pid": 4242,
        "resource": {"service.name": "shop", "process.pid": 4242, "host.name": "bench"},
    }
    return orjson.dumps(record)


def write_segments(folder: Path, spans: int, per_segment: int) -> list[Path]:
    """`spans` spans in segments of `per_segment` lines, named as the app names them."""
    rng = random.Random(7)
    t0 = time.time_ns() - spans * 1_000_000
    paths = []
    for seq, first in enumerate(range(0, spans, per_segment)):
        lines = [_span(rng, i, t0) for i in range(first, min(first + per_segment, spans))]
        path = folder / f"spans-{t0 + first:019d}-4242-{seq:06d}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        paths.append(path)
    return paths


def prefilled_store(folder: Path, spans: int) -> Path:
    """A data dir whose store holds `spans` synthetic spans (random trace ids, one in three a root)."""
    data_dir = prepare(DataDir(folder))
    conn = open_database(data_dir)
    for low in range(0, spans, 1_000_000):
        conn.execute(
            """INSERT INTO spans (trace_id, span_id, name, kind, service_name, start_time, end_time, duration_ms,
                   status_code, attributes, resource, run_id, pid, is_root, http_route, http_method)
               SELECT md5(i::VARCHAR), substr(md5((-i)::VARCHAR), 1, 16), 'GET /items', 'SERVER', 'shop',
                   TIMESTAMP '2026-01-01' + INTERVAL (i) MILLISECOND,
                   TIMESTAMP '2026-01-01' + INTERVAL (i + 5) MILLISECOND, 5.0, 'UNSET',
                   '{"http.route": "/items", "http.method": "GET"}', '{"service.name": "shop"}', 'bench', 1,
                   i % 3 = 0, '/items', 'GET'
               FROM range(?, ?) t(i)""",
            [low, min(spans, low + 1_000_000)],
        )
    conn.close()
    return data_dir.root


def time_obsdash(source: Path, work: Path, stored: Path | None = None) -> float:
    """Seconds for the hub to ingest every segment of `source` into a fresh store (a copy of `stored`) and close
    it, so the rows are in the database file as the limit's are."""
    if stored is not None:
        shutil.copytree(stored, work / "obsdash")
    data_dir = prepare(DataDir(work / "obsdash"))
    for path in source.iterdir():
        shutil.copy(path, data_dir.spool / path.name)
    store = open_store(data_dir)
    started = time.perf_counter()
    store.sync()
    store.close()  # the checkpoint: rows a batch leaves short of a row group wait in the WAL until then
    return time.perf_counter() - started


def time_limit(source: Path, work: Path, ordered: bool = True) -> float:
    """Seconds for one read_json of the same files into a table of a fresh database (DuckDB's defaults, or
    with `preserve_insertion_order = false` when not `ordered`)."""
    conn = duckdb.connect(str(work / "limit.duckdb"))
    if not ordered:
        conn.execute("SET preserve_insertion_order = false")
    files = sorted(str(p) for p in source.iterdir())
    started = time.perf_counter()
    conn.execute(
        "CREATE TABLE spans AS SELECT * FROM read_json(?, format='newline_delimited', "
        f"columns={READ_COLUMNS['spans']})",
        [files],
    )
    conn.close()  # as above (CREATE TABLE AS writes its rows to the file itself, so this costs little)
    return time.perf_counter() - started


RATIO_LIMIT = 0.6
READ_PHASE = "read_json into the batch table"
INSERT_PHASE = "insert into spans, typed columns"
REST_PHASE = "span events, exceptions, rollup, bookkeeping, commit"
CHECKPOINT_PHASE = "checkpoint (the close)"
LIMIT_PHASE = "the limit: read_json → table"
PHASES = (READ_PHASE, INSERT_PHASE, REST_PHASE, CHECKPOINT_PHASE, LIMIT_PHASE)


@dataclass
class IngestResult:
    """spans/s medians of the three paths, and one round's time per phase (wall s, CPU s)."""

    ours: float
    limit: float
    unordered: float
    phases: dict[str, tuple[float, float]]


class _TimedConnection:
    """The hub's connection with each statement the ingester runs timed: wall time, and the process's CPU time,
    which counts every DuckDB thread (CPU ÷ wall = cores in use)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.phases: dict[str, tuple[float, float]] = {}

    def execute(self, sql: str, params: Any = None) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return self.conn.execute(sql) if params is None else self.conn.execute(sql, params)
        finally:
            phase = _phase(sql)
            spent = self.phases.get(phase, (0.0, 0.0))
            self.phases[phase] = (
                spent[0] + time.perf_counter() - wall,
                spent[1] + time.process_time() - cpu,
            )


def _phase(sql: str) -> str:
    if "TEMP TABLE _batch" in sql:
        return READ_PHASE
    if sql.lstrip().startswith("INSERT INTO spans "):
        return INSERT_PHASE
    if sql.startswith("CHECKPOINT"):
        return CHECKPOINT_PHASE
    return REST_PHASE


def phases(source: Path, work: Path) -> dict[str, tuple[float, float]]:
    """One round of obsdash's ingest (the hub's connection and Ingester, as Hub.sync runs them) with each
    statement timed, then the limit's one statement; phase -> (wall s, CPU s)."""
    data_dir = prepare(DataDir(work / "obsdash"))
    for path in source.iterdir():
        shutil.copy(path, data_dir.spool / path.name)
    timed = _TimedConnection(open_database(data_dir))
    Ingester(timed, data_dir.spool, data_dir.ingested).run()
    timed.execute("CHECKPOINT")
    timed.conn.close()
    cpu = time.process_time()
    wall = time_limit(source, work)
    timed.phases[LIMIT_PHASE] = (wall, time.process_time() - cpu)
    return {name: timed.phases[name] for name in PHASES if name in timed.phases}


def measure(spans: int = 200_000, per_segment: int = 500, repeat: int = 5, stored: int = 0) -> IngestResult:
    """Medians of `repeat` interleaved rounds of the three paths (obsdash's store holds `stored` spans before
    each round), then one round timed phase by phase."""
    root = Path(tempfile.mkdtemp(prefix="obsdash-bench-ingest-"))
    try:
        source = root / "segments"
        source.mkdir()
        write_segments(source, spans, per_segment)
        base = prefilled_store(root / "stored", stored) if stored else None
        ours: list[float] = []
        limit: list[float] = []
        unordered: list[float] = []
        for round_no in range(repeat):
            for name, rates, timed in (
                ("obsdash", ours, lambda work: time_obsdash(source, work, base)),
                ("limit", limit, lambda work: time_limit(source, work)),
                ("unordered", unordered, lambda work: time_limit(source, work, ordered=False)),
            ):
                work = root / f"run-{round_no}-{name}"
                work.mkdir()
                rates.append(spans / timed(work))
                shutil.rmtree(work)
        work = root / "phases"
        work.mkdir()
        by_phase = phases(source, work)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return IngestResult(median(ours), median(limit), median(unordered), by_phase)


def table(result: IngestResult) -> str:
    """spans/s of the three paths and each one's ratio to the limit, then the phases of one round."""
    rows = [
        ["obsdash ingest (Hub.sync)", f"{result.ours:,.0f}", f"{result.ours / result.limit:.2f}"],
        ["read_json → table (the limit, DuckDB's defaults)", f"{result.limit:,.0f}", "1.00"],
        [
            "read_json → table, preserve_insertion_order = false",
            f"{result.unordered:,.0f}",
            f"{result.unordered / result.limit:.2f}",
        ],
    ]
    rates = markdown_table(["path", "spans/s", "× limit"], rows)
    phase_rows = [
        [name, f"{wall:.3f}", f"{cpu:.3f}", f"{cpu / wall:.1f}" if wall > 0 else "–"]
        for name, (wall, cpu) in result.phases.items()
    ]
    cores = os.cpu_count() or 1
    return (
        f"{rates}\n\nOne more round, statement by statement ({cores} cores; CPU counts every DuckDB thread):\n\n"
        + markdown_table(["phase", "wall s", "CPU s", "cores in use"], phase_rows)
    )


def _phases_note(result: IngestResult) -> str:
    """Where obsdash's time went, in the words of the P4 row."""
    labels = {
        READ_PHASE: "batch read",
        INSERT_PHASE: "insert",
        REST_PHASE: "commit & rest",
        LIMIT_PHASE: "limit",
    }
    parts = []
    for name, label in labels.items():
        wall, cpu = result.phases.get(name, (0.0, 0.0))
        parts.append(f"{label} {wall:.2f} s on {cpu / wall:.1f} cores" if wall > 0 else f"{label} 0 s")
    return "; ".join(parts)


def headline(result: IngestResult, spans: int) -> list[Headline]:
    """The P4 row: obsdash's ingest rate against read_json's at DuckDB's defaults."""
    ratio = result.ours / result.limit
    what = f"ingest into DuckDB, {spans:,} spans, to the file"
    met = ratio >= RATIO_LIMIT
    note = _phases_note(result)
    return [
        Headline(
            "P4", what, result.ours, result.limit, "spans/s", "read_json", ratio, "≥ 0.6× limit", met, note
        )
    ]


def main(argv: list[str] | None = None) -> int:
    """Interleave the three, print spans/s medians and the ratios."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=parse_count, default=200_000)
    parser.add_argument("--per-segment", type=int, default=500, help="lines per segment (one 250 ms batch)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--stored",
        type=parse_count,
        default=0,
        help="spans already in obsdash's store (default: a fresh one)",
    )
    args = parser.parse_args(argv)
    result = measure(args.spans, args.per_segment, args.repeat, args.stored)
    into = f"into a store of {args.stored:,} spans" if args.stored else "into a fresh store"
    print(
        f"{args.spans:,} spans in segments of {args.per_segment} {into}, median of {args.repeat}, "
        f"pid {os.getpid()}"
    )
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
