"""The spool writer: encoded records in, segment files out.

Records wait in memory (bounded) and a daemon thread writes them every `delay_s` as one segment per kind:
`DIR/spool/<kind>-<time_ns>-<pid>-<seq>.jsonl`, written to a hidden temporary file and renamed into place, so a
reader never sees half a segment. JSON lines were measured at 16 µs/span against 49–51 µs for OTLP encoding, and
kept up with bursts where the OTLP path dropped half (docs/architecture.md).

Never raises into the app: a write that fails (spool deleted, unwritable, disk full) drops the batch and counts it
by reason; a full buffer drops the new record and counts it. Run records (start, stats, end) are never refused for
a full buffer: they are a handful per process and carry the drop counts, which must not be dropped themselves.

Live counts (R3): every STATS_INTERVAL_S the thread asks `stats_record` (set by lifecycle.py) for a `stats` run
record and queues it when a counter changed since the last one, so a long-running server shows its drops without
waiting for its end record.

Fault point `spool_stall` (OBSDASH_FAULTS): every segment write blocks until `<spool>/.unstall` exists, as a hung
disk would; the reliability suite uses it to fill the buffer (R3) and to time the exit (R4). Fault point
`spool_write.<kind>` makes that kind's segment writes raise (not an OSError): the batch is dropped and counted as
`write_error`, and the other kinds are still written (tests/reliability/test_faults.py).
"""

from __future__ import annotations

import os
import threading
import time

from obsdash_instrumenters.safety import InjectedFault, fault, internal_error

TYPE_CHECKING = False  # `typing` costs ~10 ms at start-up; mypy still reads the block below
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

KINDS = ("spans", "logs", "metrics", "runs")
SEGMENT_SUFFIX = ".jsonl"
STATS_INTERVAL_S = 5.0
"""How often a busy process reports its counters (only when one changed): 12 small records a minute at most."""
UNSTALL_FILE = ".unstall"


class SpoolWriter:
    """Buffers encoded JSON lines per kind and writes them as segment files."""

    def __init__(self, spool_dir: str, delay_s: float, max_queued: int) -> None:
        self.spool_dir = spool_dir
        self.delay_s = delay_s
        self.max_queued = max_queued
        self.dropped: dict[str, int] = {}
        self.written: dict[str, int] = {}
        self.stats_record: Callable[[], dict[str, Any]] | None = None
        """Makes a `stats` run record; None until lifecycle.py sets it."""
        self._reset_state()

    def _reset_state(self) -> None:
        self._lock = threading.Lock()
        self._buffers, self._objects, self._counts = _empty_batches()
        self._queued = 0
        self._seq = 0
        self._pid = os.getpid()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        self._stats_due = time.monotonic() + STATS_INTERVAL_S
        self._last_counts: Any = None

    # -- called from the app's threads -------------------------------------------------------------
    def put(self, kind: str, line: bytes | dict[str, Any]) -> None:
        """Queue one encoded record (a JSON object without trailing newline), or a dict to encode later."""
        if self._closed:
            self.count_dropped("after_close")
            return
        with self._lock:
            if self._queued >= self.max_queued and kind != "runs":
                self.count_dropped("queue_full")
                return
            # Appended to the kind's one buffer, which is the segment's bytes: the encoder's line is freed at
            # once (orjson's bytes keep a 4–8 kB buffer behind a 1 kB span: 50k spans queued one object each held
            # 389 MB), no object per line makes the heap shrink and regrow at every flush (0.1–0.3 page faults
            # per span, ~2.2 µs each here), and the writer has nothing to join (P3, docs/benchmarks.md).
            if type(line) is bytes:
                buffer = self._buffers[kind]
                buffer += line
                buffer += b"\n"
            else:
                self._objects[kind].append(line)
            self._counts[kind] += 1
            self._queued += 1
        if self._thread is None:
            self._start_thread()

    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="obsdash-spool", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.delay_s):
            self.flush()
            if time.monotonic() >= self._stats_due:
                self._queue_stats()

    def _queue_stats(self) -> None:
        """Queue a `stats` run record if a counter moved since the last one (the record's own write aside)."""
        self._stats_due = time.monotonic() + STATS_INTERVAL_S
        try:
            make = self.stats_record
            if make is None or self._stop.is_set():
                return
            record = make()
            counts = {key: record.get(key) for key in ("dropped", "internal_errors", "instrumentation")}
            counts["redactions"] = record.get("redactions")
            counts["written"] = {k: n for k, n in record.get("written", {}).items() if k != "runs"}
            if counts != self._last_counts:
                self._last_counts = counts
                self.put("runs", record)
        except BaseException as exc:
            internal_error("spool.stats", exc)

    # -- writing -------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write everything queued so far, one segment per kind."""
        try:
            with self._lock:
                buffers, objects, counts = self._buffers, self._objects, self._counts
                self._buffers, self._objects, self._counts = _empty_batches()
                self._queued = 0
            for kind, count in counts.items():
                if not count:
                    continue
                try:
                    self._write_segment(kind, buffers[kind], objects[kind], count)
                except BaseException as exc:  # not an OSError (those are counted inside): this batch only
                    self.count_dropped("write_error", count)
                    internal_error("spool.write", exc)
        except BaseException as exc:
            internal_error("spool.flush", exc)

    def _next_name(self, kind: str) -> str:
        self._seq += 1
        return f"{kind}-{time.time_ns():020d}-{self._pid}-{self._seq:06d}{SEGMENT_SUFFIX}"

    def _write_segment(self, kind: str, data: bytearray, objects: list[Any], count: int) -> None:
        _stall_if_injected(self.spool_dir)
        fault("spool_write." + kind)
        name = self._next_name(kind)
        if objects:
            # Run records made before the encoder loaded: stdlib json, because orjson's import (~14 ms, it pulls
            # in dataclasses) would be most of what `obsdash wrap python -c pass` adds.
            import json

            for record in objects:
                data += json.dumps(record, default=str, separators=(",", ":")).encode() + b"\n"
        for attempt in range(2):
            try:
                _write_atomically(self.spool_dir, name, data)
                self._count(self.written, kind, count)
                return
            except OSError as exc:
                if attempt == 0 and _recreate_dir(self.spool_dir):
                    continue
                reason = "disk_full" if getattr(exc, "errno", None) == 28 else "spool_write_error"
                self.count_dropped(reason, count)
                return

    def count_dropped(self, reason: str, n: int = 1) -> None:
        """Count `n` records lost for `reason`, wherever on their way to disk they were lost (here, in the
        encoder, in the span processor)."""
        self._count(self.dropped, reason, n)

    @staticmethod
    def _count(counter: dict[str, int], key: str, n: int) -> None:
        counter[key] = counter.get(key, 0) + n

    # -- lifecycle -----------------------------------------------------------------------------------
    def close(self, timeout_s: float, last_record: Callable[[], dict[str, Any]] | None = None) -> None:
        """Stop the thread and write what is left, then the run record `last_record()` makes, giving up after
        `timeout_s` (R4). The record is made after the final write, so the counts it carries include it (made
        before, the end record of a busy process undercounted `written` by its last batch). The calling thread
        takes no lock: a SIGTERM handler may run on a thread interrupted inside put(), holding it."""
        if self._closed:
            return
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s / 2)

        def final() -> None:
            self.flush()
            if last_record is not None:
                try:
                    self.put("runs", last_record())
                except BaseException as exc:
                    internal_error("spool.last_record", exc)
                self.flush()

        worker = threading.Thread(target=final, name="obsdash-final-flush", daemon=True)
        worker.start()
        worker.join(timeout_s / 2)
        self._closed = True

    def after_fork_in_child(self) -> None:
        """A forked child starts empty: the parent's queued records are the parent's to write."""
        self._reset_state()
        self.dropped = {}
        self.written = {}


def _empty_batches() -> tuple[dict[str, bytearray], dict[str, list[Any]], dict[str, int]]:
    """Per kind: the encoded lines (each ending in b"\\n"), the dict records to encode at the write (the rare
    record made before the encoder is loaded), and how many records both hold."""
    return {kind: bytearray() for kind in KINDS}, {kind: [] for kind in KINDS}, dict.fromkeys(KINDS, 0)


def _write_atomically(spool_dir: str, name: str, data: bytes | bytearray) -> None:
    tmp = os.path.join(spool_dir, f".{name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except BaseException:
        os.close(fd)
        _remove_quietly(tmp)
        raise
    os.close(fd)
    os.rename(tmp, os.path.join(spool_dir, name))


def _stall_if_injected(spool_dir: str) -> None:
    """Fault point `spool_stall`: block like a hung disk until the test creates `<spool>/.unstall`."""
    try:
        fault("spool_stall")
    except InjectedFault:
        release = os.path.join(spool_dir, UNSTALL_FILE)
        while not os.path.exists(release):
            time.sleep(0.05)


def _recreate_dir(path: str) -> bool:
    """Recreate the spool if someone deleted it; True when it now exists."""
    try:
        # the data dir first, 0700 too: makedirs gives the parents it creates 0777 minus the umask (S3: a data
        # dir deleted under an app running with umask 0 came back world-writable)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        os.makedirs(path, mode=0o700, exist_ok=True)
        return True
    except OSError:
        return False


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
