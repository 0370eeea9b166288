"""Retention at scale (store/retention.py, store/prune.py): how long pruning takes and holds the hub's write lock,
whether DuckDB's file shrinks after DELETE + CHECKPOINT, and the file's size under a cap when the real retention
passes run between appends.

    python -m bench.retention --store DIR [--cap 64MB] [--steps 1500]

DIR is a synthetic store (`python -m bench.synth --data-dir DIR --spans 1M --hours 24`); it is copied, never
changed. Three measurements, each on a fresh copy:

1. **age prune**: `Retention` with `--max-age 1h` on the 24 h store (all but the newest hour goes: ~96 % of the
   rows), as the hub runs it: slices under the write lock, then the leftovers, then CHECKPOINT;
2. **shrink or reuse**: the file's size and free blocks after that prune, and after appending the deleted hours
   again (copied from the original, 24 h later);
3. **steady state**: an empty store of the same schema, 30 s of the original's rows appended per step (as ingest
   appends them) followed by one retention pass under `--max-size CAP`; the file + WAL size after every step.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench._common import markdown_table

TABLES = {"spans": "start_time", "span_events": "time", "logs": "time", "metric_points": "time"}


def _copy(store: Path, into: Path) -> Any:
    from obsdash.datadir import DataDir, prepare

    data_dir = prepare(DataDir(into))
    shutil.copy(store / "telemetry.duckdb", data_dir.database)
    return data_dir


def _retention(data_dir: Any, changes: dict[str, Any]) -> Any:
    from obsdash.store.retention import Retention
    from obsdash.store.retention_policy import request

    request(changes)
    retention = Retention(data_dir, threading.Lock(), threading.Event())
    retention.open()
    return retention


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f}"


def age_prune(store: Path, work: Path) -> list[list[str]]:
    """Measurements 1 and 2."""
    data_dir = _copy(store, work / "age")
    retention = _retention(data_dir, {"max_age_s": None, "max_size": None})
    conn = retention.conn
    before = retention._measure()
    (newest,) = conn.execute("SELECT max(start_time) FROM spans").fetchone()
    rows_before = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    # the store ends in the past (bench.synth --end): age it as if now were its end
    retention.policy = retention.policy.changed({"max_age_s": 3600.0})
    import obsdash.store.retention as module

    real_now = module.utc_now
    module.utc_now = lambda: newest  # type: ignore[assignment]
    started = time.perf_counter()
    try:
        retention.after_ingest(0)
    finally:
        module.utc_now = real_now  # type: ignore[assignment]
    took = time.perf_counter() - started
    last = retention.status()["last_prune"] or {}
    after = retention._measure()
    deleted = sum(n for table, n in last.get("rows", {}).items() if table in TABLES)
    others = ", ".join(f"{n:,} {table}" for table, n in last.get("rows", {}).items() if table not in TABLES)
    rows = [
        [
            "age prune, 1h of a 24h store: rows deleted",
            f"{deleted:,} ({deleted / sum(rows_before.values()):.0%})",
        ],
        ["  and bookkeeping rows", others or "none"],
        ["  time (slices + leftovers + checkpoint)", f"{took:.1f} s"],
        ["  delete transactions (slices)", str(last.get("slices"))],
        ["  longest hold of the write lock", f"{last.get('lock_seconds', 0) * 1000:.0f} ms"],
        ["file before / after prune + CHECKPOINT (MB)", f"{_mb(before.store)} / {_mb(after.store)}"],
        ["live data before / after (MB)", f"{_mb(before.live)} / {_mb(after.live)}"],
    ]
    # reuse: append the deleted 23 hours again, one day later
    shutil.copy(store / "telemetry.duckdb", data_dir.root / "original.duckdb")
    conn.execute(f"ATTACH '{data_dir.root / 'original.duckdb'}' AS original (READ_ONLY)")
    cut = newest - timedelta(hours=1)
    started = time.perf_counter()
    for table, column in TABLES.items():
        shifted = f"{column} + INTERVAL 24 HOUR AS {column}"
        if table == "spans":
            shifted += ", end_time + INTERVAL 24 HOUR AS end_time"
        if table == "metric_points":
            shifted += ", start_time + INTERVAL 24 HOUR AS start_time"
        conn.execute(
            f"INSERT INTO {table} SELECT * REPLACE ({shifted}) FROM original.{table} WHERE {column} < ?",
            [cut],
        )
    conn.execute("DETACH original")
    conn.execute("CHECKPOINT")
    again = retention._measure()
    rows.append(
        [
            "file after appending the 23 deleted hours again (MB)",
            f"{_mb(again.store)} (live {_mb(again.live)}; {time.perf_counter() - started:.1f} s)",
        ]
    )
    conn.close()
    return rows


def steady(store: Path, work: Path, cap: int, steps: int) -> list[list[str]]:
    """Measurement 3."""
    from obsdash.datadir import DataDir, prepare

    data_dir = prepare(DataDir(work / "steady"))
    shutil.copy(store / "telemetry.duckdb", data_dir.root / "source.duckdb")
    retention = _retention(data_dir, {"max_age_s": None, "max_size": cap})
    conn = retention.conn
    conn.execute(f"ATTACH '{data_dir.root / 'source.duckdb'}' AS source (READ_ONLY)")
    (first,) = conn.execute("SELECT min(start_time) FROM source.spans").fetchone()
    peak = 0
    passes: list[float] = []
    prunes = 0
    lock = 0.0
    step = timedelta(seconds=30)
    wal = data_dir.database.with_name(data_dir.database.name + ".wal")
    for i in range(steps):
        start = first + i * step
        conn.execute("BEGIN TRANSACTION")
        for table, column in TABLES.items():
            conn.execute(
                f"INSERT INTO {table} SELECT * FROM source.{table} WHERE {column} >= ? AND {column} < ?",
                [start, start + step],
            )
        conn.execute("COMMIT")
        peak = max(peak, data_dir.database.stat().st_size + (wal.stat().st_size if wal.exists() else 0))
        began = time.perf_counter()
        if retention.after_ingest(0):
            prunes += 1
            lock = max(lock, (retention.status()["last_prune"] or {}).get("lock_seconds", 0.0))
        passes.append(time.perf_counter() - began)
        peak = max(peak, data_dir.database.stat().st_size + (wal.stat().st_size if wal.exists() else 0))
    usage = retention._measure()
    (spans,) = conn.execute("SELECT count(*) FROM spans").fetchone()
    conn.close()
    passes.sort()
    return [
        [
            f"steady state, cap {_mb(cap)} MB, {steps} x 30 s appended",
            f"{steps * 30 / 3600:.1f} h of the store",
        ],
        ["  peak file + WAL (MB)", f"{_mb(peak)} ({peak / cap:.2f} x the cap)"],
        ["  at the end: file / live (MB), spans kept", f"{_mb(usage.store)} / {_mb(usage.live)}, {spans:,}"],
        ["  overhead ratio learned (file / live)", f"{retention.overhead:.2f}"],
        ["  passes that deleted rows", str(prunes)],
        [
            "  pass time median / max",
            f"{passes[len(passes) // 2] * 1000:.1f} ms / {passes[-1] * 1000:.0f} ms",
        ],
        ["  longest hold of the write lock", f"{lock * 1000:.0f} ms"],
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print a Markdown table."""
    from obsdash.store.retention_policy import parse_size

    parser = argparse.ArgumentParser(prog="python -m bench.retention", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--store", type=Path, required=True, help="a bench.synth data dir (copied, not changed)"
    )
    parser.add_argument("--cap", type=parse_size, default=64_000_000, help="steady-state size cap (64MB)")
    parser.add_argument("--steps", type=int, default=1500, help="30 s appends in the steady state (1500)")
    args = parser.parse_args(argv)
    import duckdb

    with tempfile.TemporaryDirectory(prefix="obsdash-bench-retention-") as tmp:
        rows = age_prune(args.store, Path(tmp))
        rows += steady(args.store, Path(tmp), args.cap, args.steps)
    print(f"DuckDB {duckdb.__version__}, store {args.store}")
    print(markdown_table(["retention", "figure"], rows, align_right_from=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
