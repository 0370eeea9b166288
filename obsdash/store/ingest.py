"""Bring the store up to date with the spool: each segment ingested exactly once.

A batch of segments of one kind is read by DuckDB's `read_json` with an explicit schema (measured ~700k spans/s;
`executemany` manages 1,340/s) into a temporary table, copied into the tables with hot attributes extracted, and
the segment names are recorded in `ingested_segments` in the same transaction. Only after the commit are the files
moved to `spool/ingested/`; a crash between the two is repaired on the next pass by the recorded names. So a
killed hub loses nothing and ingests nothing twice.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obsdash.store import exceptions, rollup
from obsdash.store.segments import COLUMNS, Segment, list_segments, salvage

log = logging.getLogger(__name__)

BATCH_BYTES = 128 << 20
"""Segment bytes per transaction. A batch past one row group (122,880 rows, ~90 MB of spans) is written straight
to the database file as it is inserted; smaller ones go through the WAL and a checkpoint rewrites the table's last
row group at nearly every commit: 100 files (50k spans) per batch ingested 400k spans in 5.8 s, 300 files in
3.8 s (docs/benchmarks.md, P4). The batch's temporary table takes ~0.87 bytes per segment byte (111 MB here),
inside the hub's 320 MB cap."""
TAIL_SHARE = 4
"""A backlog's last part under BATCH_BYTES / TAIL_SHARE goes with the batch before it (up to 160 MB), instead of
a small batch of its own: its rows, short of a row group, went through the WAL, and at 400k spans its commit
crossed the WAL threshold and the checkpoint rewrote the partial row groups (0.8-0.9 s). Interleaved, same
process: 400k spans 2.62 -> 1.85 s, 200k 0.96 -> 0.89 s (the tail batch's fixed cost); 100k and 300k unchanged;
under the dashboard's 160 MB cap 3.50 -> 2.55 s and 1.32 -> 1.27 s."""
MAX_FILES_PER_BATCH = 5000
"""A backlog of tiny segments still commits now and then."""
FAST_MAX_OBJECT = 16 << 20
"""read_json's `maximum_object_size` in a batch (DuckDB's default and floor). Its buffers (two objects' worth: lines
up to ~32 MB pass) grow with it, and under the hub's memory cap 64 MB read 100k spans in 0.41 s against 0.27 s at
16 MB. A batch holding a larger line fails and each of its segments is read again alone with `MAX_OBJECT`."""
MAX_OBJECT = 64 << 20
"""What a segment read alone (or its salvaged lines) gets. Under the hub's 320 MB cap its 256 MB of buffers do
not fit, so a line past ~32 MB is counted as a bad line (as it was when every batch read with 64 MB)."""

# read_json's explicit schema per kind, built from segments.COLUMNS (add a new field there): the salvage path
# checks damaged segments' lines against the same table, so it passes exactly what this load accepts
READ_COLUMNS = {
    kind: "{" + ", ".join(f"{name}: '{type_}'" for name, type_ in columns.items()) + "}"
    for kind, columns in COLUMNS.items()
}
# Rows the fast path loaded but that lack what a record of the kind needs: counted as bad lines.
INVALID_ROW = {
    "spans": "trace_id IS NULL OR span_id IS NULL OR name IS NULL OR start_ns IS NULL OR end_ns IS NULL",
    "logs": "time_ns IS NULL",
    "metrics": "time_ns IS NULL OR name IS NULL",
    "runs": "event IS NULL OR time_ns IS NULL OR run_id IS NULL",
}


class _HotAttributes:
    """Hot attributes read with one JSON parse per row: `json_extract_string(attributes, [paths])` yields a list,
    and each column picks from it. Extracting the ~28 paths one by one parsed the JSON 28 times: 0.65 s per 100k
    spans against 0.09 s (bench/ingest.py).

    The paths, not the parse, are most of what is left: 30 paths took 0.08-0.10 s per 200k spans, 2 paths 0.02 s.
    So paths only some spans carry (GenAI's) go in a list of their own, read only from rows whose text holds
    `guard` (`contains` over the text: 0.01 s per 200k). A false positive only costs the read; the app side
    and the OTLP intake write keys unescaped, so a row holding such a key always holds its text."""

    def __init__(self, column: str, name: str = "_hot", guard: tuple[str, ...] = ()) -> None:
        self.column = column
        self.name = name
        self.guard = guard
        self.names: list[str] = []

    def attr(self, name: str) -> str:
        """SQL for one attribute's value as text (NULL when absent)."""
        if name not in self.names:
            self.names.append(name)
        return f"{self.name}[{self.names.index(name) + 1}]"

    def first(self, *names: str) -> str:
        """SQL for the first of `names` that is present."""
        return "coalesce(" + ", ".join(self.attr(n) for n in names) + ")"

    def column_sql(self) -> str:
        """The SELECT item adding this list (call after every attr())."""
        paths = ", ".join(f"'$.\"{name}\"'" for name in self.names)
        extract = f"json_extract_string({self.column}, [{paths}])"
        if self.guard:
            text = f"CAST({self.column} AS VARCHAR)"
            test = " OR ".join(f"contains({text}, '{needle}')" for needle in self.guard)
            extract = f"CASE WHEN {test} THEN {extract} END"
        return f"{extract} AS {self.name}"

    def source(self, rows: str, *more: _HotAttributes) -> str:
        """`rows` (a table or subquery) with this list (and `more` lists) added; call after every attr()."""
        items = ", ".join(hot.column_sql() for hot in (self, *more))
        return f"(SELECT *, {items} FROM {rows})"


def _ts(column: str) -> str:
    return f"make_timestamp({column} // 1000)"


EXCEPTION_KEYS = ("exception.type", "exception.message", "exception.stacktrace", "obsdash.exception.location")


def _spans_insert() -> str:
    hot = _HotAttributes("attributes")
    genai = _HotAttributes("attributes", "_genai", guard=("gen_ai.", "llm.token_count."))
    tokens = {
        "input": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"),
        "output": (
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
            "llm.token_count.completion",
        ),
        "cache_read": (
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",
            "llm.token_count.prompt_details.cache_read",
        ),
        "cache_write": (
            "gen_ai.usage.cache_write.input_tokens",  # what the GenAI instrumentors and the anthropic SDK write
            "gen_ai.usage.cache_creation.input_tokens",
            "gen_ai.usage.cache_creation_input_tokens",
            "llm.token_count.prompt_details.cache_write",
        ),
    }
    # Token counts as UINTEGER: a count below 0 or past 2^32 is not a real one (the largest context windows hold
    # ~10M tokens) and is stored as NULL, so the per-call sums in llm_calls cannot overflow BIGINT (R7 fuzzing:
    # 2^63-1 tokens on one span failed every LLM query).
    columns = f"""trace_id, span_id, parent_span_id, name, kind, service_name,
            {_ts("start_ns")}, {_ts("end_ns")}, (end_ns - start_ns) / 1e6, status_code, status_message,
            coalesce(attributes, '{{}}'), resource, scope, run_id, pid,
            parent_span_id IS NULL OR coalesce(parent_remote, false),
            {hot.attr("http.route")}, {hot.first("http.request.method", "http.method")},
            TRY_CAST({hot.first("http.response.status_code", "http.status_code")} AS INTEGER),
            {hot.first("db.system.name", "db.system")}, {hot.first("db.query.text", "db.statement")},
            {hot.first("server.address", "net.peer.name")},
            {genai.first("gen_ai.provider.name", "gen_ai.system")},
            {genai.first("gen_ai.response.model", "gen_ai.request.model")}, {genai.attr("gen_ai.operation.name")},
            """ + ", ".join(f"TRY_CAST({genai.first(*names)} AS UINTEGER)" for names in tokens.values())
    return f"INSERT INTO spans SELECT {columns} FROM {hot.source('_batch', genai)}"


def _with_exception_columns(insert: str, leading: str, rows: str, attributes: str) -> str:
    hot = _HotAttributes(attributes)
    exception = ", ".join(hot.attr(key) for key in EXCEPTION_KEYS)
    return f"{insert} SELECT {leading}, {exception} FROM {hot.source(rows)}"


def _exceptions_insert(source_rank: int, leading: str, rows: str, attributes: str) -> str:
    """The `exceptions` rows (store/exceptions.py) of the records in `rows` that carry an `exception.type`:
    the same values the span_events / logs insert extracts, read from the batch again (one more JSON parse of
    the batch's attributes) because nothing tells the batch's rows apart once they are in the table. For logs:
    31 ms per 100k lines against 327 ms for the logs insert itself (1.9 % of them with an exception)."""
    select = _with_exception_columns("", f"{leading}, {source_rank}", rows, attributes)
    return (
        f"INSERT INTO exceptions ({exceptions.COLUMNS}) SELECT * FROM ({select}) "
        "AS x(time, trace_id, span_id, service_name, run_id, source_rank, exception_type, exception_message, "
        "exception_stacktrace, exception_location) WHERE exception_type IS NOT NULL"
    )


_EVENT_ROWS = (
    "(SELECT trace_id, span_id, service_name, run_id, unnest(events) AS ev FROM _batch WHERE len(events) > 0)"
)


INSERTS = {
    "spans": [
        _spans_insert(),
        _with_exception_columns(
            "INSERT INTO span_events",
            f"{_ts('ev.time_ns')}, trace_id, span_id, ev.name, coalesce(ev.attributes, '{{}}'), service_name, "
            "run_id",
            _EVENT_ROWS,
            "ev.attributes",
        ),
        _exceptions_insert(
            exceptions.SPAN_EVENT,
            f"{_ts('ev.time_ns')}, trace_id, span_id, service_name, run_id",
            _EVENT_ROWS,
            "ev.attributes",
        ),
        rollup.MERGE_BATCH,  # the per-minute rollup the overview reads for long windows (store/rollup.py)
    ],
    "logs": [
        _with_exception_columns(
            "INSERT INTO logs",
            f"{_ts('time_ns')}, severity_text, severity_number, body, trace_id, span_id, service_name, "
            "coalesce(attributes, '{}'), resource, scope, run_id, pid",
            "_batch",
            "attributes",
        ),
        _exceptions_insert(
            exceptions.LOG,
            f"{_ts('time_ns')}, trace_id, span_id, service_name, run_id",
            "_batch",
            "attributes",
        ),
    ],
    "metrics": [
        f"""INSERT INTO metric_points SELECT {_ts("time_ns")}, {_ts("start_ns")}, name, unit, kind, value,
            count, sum, min, max, bucket_counts, explicit_bounds, coalesce(attributes, '{{}}'),
            service_name, run_id, pid
        FROM _batch"""
    ],
    "runs": [
        f"""INSERT INTO run_events SELECT {_ts("time_ns")}, event, run_id, pid, service_name, host, root,
            parent_pid, command, exit_code,
            json_object('argv', argv, 'startup_ms', startup_ms, 'duration_ms', duration_ms,
                        'instrumentation', instrumentation, 'instrumentation_ms', instrumentation_ms,
                        'dropped', dropped, 'written', written, 'internal_errors', internal_errors,
                        'redactions', redactions, 'otlp', otlp)
        FROM _batch"""
    ],
}


def _batches(segments: list[Segment]) -> Iterator[list[Segment]]:
    """`segments` in order, cut into batches of up to `BATCH_BYTES` (at least one segment each); a last part
    under `BATCH_BYTES / TAIL_SHARE` goes with the batch before it."""
    sized = []
    for segment in segments:
        try:
            length = segment.path.stat().st_size
        except OSError:
            length = 0  # gone or unreadable: the load fails and the segment is dealt with alone
        sized.append((segment, length))
    left = sum(length for _, length in sized)
    tail = BATCH_BYTES // TAIL_SHARE
    batch: list[Segment] = []
    size = 0
    for segment, length in sized:
        full = size + length > BATCH_BYTES and left - size > tail
        if batch and (full or len(batch) >= MAX_FILES_PER_BATCH):
            yield batch
            left -= size
            batch, size = [], 0
        batch.append(segment)
        size += length
    if batch:
        yield batch


@dataclass
class IngestReport:
    """What one pass of ingest did."""

    segments: int = 0
    records: dict[str, int] = field(default_factory=dict)
    bad_lines: int = 0

    def add(self, kind: str, records: int, bad: int) -> None:
        self.records[kind] = self.records.get(kind, 0) + records
        self.bad_lines += bad


class Ingester:
    """Moves spool segments into the store; used only by the hub, under its write lock."""

    def __init__(self, conn: Any, spool: Path, ingested: Path) -> None:
        self.conn = conn
        self.spool = spool
        self.ingested_dir = ingested
        self.archived_bytes = 0
        """Bytes moved into `spool/ingested/` so far: retention keeps its size without listing it each pass."""

    def run(self) -> IngestReport:
        """Ingest every segment now in the spool."""
        report = IngestReport()
        pending: dict[str, list[Segment]] = {}
        segments = list_segments(self.spool)
        known = self._already_ingested([s.name for s in segments])
        for segment in segments:
            if segment.name in known:
                self._archive([segment])  # committed before a crash, not yet moved
            else:
                pending.setdefault(segment.kind, []).append(segment)
        for kind, segments in pending.items():
            for batch in _batches(segments):
                self._ingest_batch(kind, batch, report)
        return report

    def _ingest_batch(self, kind: str, segments: list[Segment], report: IngestReport) -> None:
        try:
            counts = self._load(kind, [str(s.path) for s in segments], {s.name: s.name for s in segments})
        except Exception as exc:
            log.debug("fast ingest of %d %s segments failed (%s); one by one", len(segments), kind, exc)
            for segment in segments:
                # each on its own first, so that what is stored of a segment does not depend on the segments
                # that shared its batch (the salvage path is stricter than read_json: a float where a BIGINT
                # goes, a value nested deeper than orjson writes)
                if len(segments) == 1 or not self._ingest_alone(segment, report):
                    self._ingest_damaged(segment, report)
            return
        self._finish(segments, counts, report)

    def _ingest_alone(self, segment: Segment, report: IngestReport) -> bool:
        try:
            counts = self._load(
                segment.kind, [str(segment.path)], {segment.name: segment.name}, max_object=MAX_OBJECT
            )
        except Exception:
            return False
        self._finish([segment], counts, report)
        return True

    def _ingest_damaged(self, segment: Segment, report: IngestReport) -> None:
        try:
            good, bad = salvage(segment)
        except FileNotFoundError:
            return
        except OSError as exc:  # unreadable: leave it in the spool for a later pass, ingest the rest now
            log.warning("cannot read %s: %s", segment.path, exc)
            return
        counts: dict[str, tuple[int, int]] = {segment.name: (0, bad)}
        if good:
            fd, tmp = tempfile.mkstemp(prefix=".salvaged-", suffix=".jsonl", dir=self.spool)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(b"\n".join(good) + b"\n")
                loaded = self._load(
                    segment.kind, [tmp], {Path(tmp).name: segment.name}, extra_bad=bad, max_object=MAX_OBJECT
                )
                counts = loaded or counts
            except Exception as exc:
                log.debug("salvaged lines of %s still failed: %s", segment.name, exc)
                counts = {segment.name: (0, bad + len(good))}
                self._record_only(segment, kind=segment.kind, bad=bad + len(good))
            finally:
                Path(tmp).unlink(missing_ok=True)
        else:
            self._record_only(segment, kind=segment.kind, bad=bad)
        self._finish([segment], counts, report)

    def _record_only(self, segment: Segment, kind: str, bad: int) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO ingested_segments VALUES (?, ?, now(), 0, ?)", [segment.name, kind, bad]
        )

    def _load(
        self,
        kind: str,
        files: list[str],
        names: dict[str, str],
        extra_bad: int = 0,
        max_object: int = FAST_MAX_OBJECT,
    ) -> dict[str, tuple[int, int]]:
        """One transaction: read the files, insert their rows, record their names. Returns name → (rows, bad)."""
        conn = self.conn
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(
                f"CREATE OR REPLACE TEMP TABLE _batch AS SELECT * FROM read_json(?, format='newline_delimited', "
                f"columns={READ_COLUMNS[kind]}, filename=true, maximum_object_size={max_object})",
                [files],
            )
            # good and bad rows per file in one scan
            per_file = conn.execute(
                f"SELECT filename, count(*) FILTER (WHERE NOT ({INVALID_ROW[kind]})), "
                f"count(*) FILTER (WHERE {INVALID_ROW[kind]}) FROM _batch GROUP BY 1"
            ).fetchall()
            good_rows = {file: good for file, good, _ in per_file}
            bad_rows = {file: bad for file, _, bad in per_file if bad}
            if bad_rows:
                conn.execute(f"DELETE FROM _batch WHERE {INVALID_ROW[kind]}")
            for statement in INSERTS[kind]:
                conn.execute(statement)
            counts = {}
            for file in files:
                base = Path(file).name
                counts[names[base]] = (good_rows.get(file, 0), bad_rows.get(file, 0) + extra_bad)
            # one statement for the batch: executemany cost 0.1 s per 200 segments
            conn.execute(
                "INSERT INTO ingested_segments SELECT unnest(?::VARCHAR[]), ?, now(), unnest(?::BIGINT[]), "
                "unnest(?::BIGINT[])",
                [
                    list(counts),
                    kind,
                    [rows for rows, _ in counts.values()],
                    [bad for _, bad in counts.values()],
                ],
            )
            conn.execute("DROP TABLE _batch")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return counts

    def _finish(
        self, segments: Iterable[Segment], counts: dict[str, tuple[int, int]], report: IngestReport
    ) -> None:
        done = list(segments)
        for segment in done:
            rows, bad = counts.get(segment.name, (0, 0))
            report.segments += 1
            report.add(segment.kind, rows, bad)
        self._archive(done)

    def _already_ingested(self, names: list[str]) -> set[str]:
        """Which of `names` the store has recorded. Asked per pass, for the spool's names only: holding every
        name ever ingested cost 1.15 GB and 3.65 s at hub start after 6M segments (docs/benchmarks.md)."""
        if not names:
            return set()
        rows = self.conn.execute(
            "SELECT name FROM ingested_segments WHERE name IN (SELECT unnest(?::VARCHAR[]))", [names]
        ).fetchall()
        return {row[0] for row in rows}

    def _archive(self, segments: Iterable[Segment]) -> None:
        """Move ingested segments out of the way; they stay on disk so a corrupt store can be rebuilt."""
        for segment in segments:
            try:
                size = segment.path.stat().st_size
                os.replace(segment.path, self.ingested_dir / segment.name)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("cannot move %s to %s: %s", segment.path, self.ingested_dir, exc)
            else:
                self.archived_bytes += size
