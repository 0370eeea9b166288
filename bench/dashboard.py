"""P6: how long a dashboard refresh takes at 1M and 10M spans, as the hub's host and as a client of the hub.

    python -m bench.dashboard --spans 1M --spans 10M [--repeat 15] [--json out.json]
    python -m bench.dashboard --spans 10M@240    # 10M spans over 240 h: the same traffic rate as 1M over 24 h

For each size a synthetic store (`bench.synth`) is built once and cached under `--cache-dir`
(`/tmp/obsdash-bench/<N>-<H>h/`). This process opens it with `open_store(dashboard=True)` and so hosts the hub as
the dashboard does (with its DuckDB cap); a second process (spawned, as a dashboard started after another obsdash
command would be) opens it too and becomes a `RemoteBackend` client over the hub's socket. Each round runs every
screen's refresh — the same query functions the TUI's screens call in their `load()` — once in each process, in a
shuffled order, host and client alternating, so the machine's noise spreads over all of them; we report the
median and p95 of `--repeat` rounds. `now` is pinned to the end of the synthetic data, so "5m" is the last five
minutes of traffic.

Measured only here, never asserted in tests (see /work/shared/brief/quality.md, P6: an overview refresh ≤ 100 ms
at 1M spans, ≤ 500 ms at 10M, growing with the window shown rather than with the store).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench._common import markdown_table, median, ms, p95, parse_count, rss_mb, short_count, size_mb
from bench.headline import Headline

WINDOWS = ("5m", "1h", "all")
SCREENS = ("overview", "traces", "errors", "logs", "metrics")
P6_TARGETS_MS = ((1_000_000, 100.0), (10_000_000, 500.0))
"""(store size, overview refresh target): a store up to 1M spans must refresh in 100 ms, up to 10M in 500 ms."""
DEFAULT_CACHE = Path("/tmp/obsdash-bench")


@dataclass(frozen=True)
class Case:
    """One screen's refresh for one window; `trace` has two instead: its first open (by id alone, a scan of the
    spans table) and a live refresh (near the time the open found, as the screen does)."""

    screen: str
    window: str | None

    @property
    def name(self) -> str:
        return f"{self.screen} {self.window}" if self.window else self.screen


CASES = [Case(s, w) for s in SCREENS for w in WINDOWS] + [Case("trace", "open"), Case("trace", "refresh")]


# -- what each screen runs --------------------------------------------------------------------------------


class TimingReader:
    """A Reader that times every query and files it under the query function that sent it (route_stats, ...)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.parts: dict[str, float] = defaultdict(float)

    def query(
        self,
        sql: str,
        params: list[Any] | None = None,
        max_rows: int = 10_000,
        timeout_s: float = 60.0,
        sync: bool = True,
    ) -> Any:
        frame = sys._getframe(1)
        while frame.f_back and (
            frame.f_code.co_name == "fetch" or not frame.f_globals.get("__name__", "").startswith("obsdash.")
        ):
            frame = frame.f_back
        started = time.perf_counter()
        result = self.store.query(sql, params, max_rows=max_rows, timeout_s=timeout_s, sync=sync)
        self.parts[frame.f_code.co_name] += time.perf_counter() - started
        return result


def refresh(reader: Any, case: Case, now: datetime, trace_id: str, near: Any = None) -> int:
    """Run what the TUI screen of `case` runs in its `load()`; return how many rows it would show. `near`: the
    trace's time range as its first load found it (`Trace.time_range`), which the screen's refreshes pass."""
    from obsdash.store.queries import errors, logs, metrics, overview, traces
    from obsdash.store.queries.window import Buckets, window_named

    if case.screen == "trace":
        trace = traces.get_trace(reader, trace_id, near if case.window == "refresh" else None)
        return len(trace.spans) + len(trace.events) + len(trace.logs) if trace else 0
    window = window_named(case.window or "1h")
    since = window.start(now)
    if case.screen == "overview":
        seen = overview.overview(reader, window, now)
        return len(seen.routes) + len(seen.services) + len(seen.errors)
    if case.screen == "traces":
        return len(traces.list_traces(reader, since))
    if case.screen == "errors":
        return len(errors.error_groups(reader, since))
    if case.screen == "logs":
        return len(logs.recent_logs(reader, since)) + len(logs.log_services(reader, since))
    infos = metrics.list_metrics(reader, since)
    chosen = next((m for m in infos if m.name == "http.server.duration"), infos[0] if infos else None)
    if chosen is None:
        return 0
    start = since if window.seconds is not None else metrics.first_point_time(reader) or since
    series = metrics.metric_series(reader, chosen, Buckets.covering(start, now))
    return len(infos) + sum(v is not None for v in series.values)


def timed(run: Callable[..., int], *args: Any) -> tuple[float, int]:
    """(seconds, rows) of one refresh."""
    started = time.perf_counter()
    rows = run(*args)
    return time.perf_counter() - started, rows


# -- the client process -----------------------------------------------------------------------------------


def _client_main(conn: Connection, data_dir: str, now_iso: str) -> None:
    """Open the store after the host (so: over the hub socket) and run the cases the host sends."""
    opened, store = timed_open(Path(data_dir))
    conn.send({"open_s": opened, "is_host": store.is_host, "pid": os.getpid()})
    now = datetime.fromisoformat(now_iso)
    while True:
        message = conn.recv()
        if message is None:
            break
        if message == "rss":
            conn.send(rss_mb())
            continue
        case = Case(message["screen"], message["window"])
        conn.send(timed(refresh, store, case, now, message["trace_id"], message["near"]))
    store.close()


def timed_open(data_dir: Path) -> tuple[float, Any]:
    from obsdash.datadir import DataDir
    from obsdash.hub.client import open_store

    started = time.perf_counter()
    store = open_store(DataDir(data_dir), dashboard=True)  # hosting as the dashboard does: its DuckDB cap
    return time.perf_counter() - started, store


# -- one store size ---------------------------------------------------------------------------------------


@dataclass
class SizeResult:
    """Everything measured on one store."""

    size: int  # spans asked for: the store holds up to one trace fewer
    spans: int
    hours: float
    store_mb: float
    generated_s: float | None
    host_open_s: float
    client_open_s: float
    first_overview_s: float
    host_rss_mb: tuple[float, float]
    client_rss_mb: tuple[float, float]
    window_spans: dict[str, int]
    host: dict[str, list[float]] = field(default_factory=dict)
    remote: dict[str, list[float]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    parts: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{short_count(self.size)} spans / {self.hours:g} h"


def ensure_store(
    cache_dir: Path, spans: int, hours: float, rebuild: bool
) -> tuple[Path, datetime, float | None]:
    """The cached store for (spans, hours), built by `bench.synth` in a child process when missing."""
    home = cache_dir / f"{short_count(spans)}-{hours:g}h"
    meta_path = home / "synth.json"
    if not rebuild and meta_path.exists() and (home / "data" / "telemetry.duckdb").exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("spans_requested") == spans and meta.get("hours") == hours:
            print(f"reusing {home} (built in {meta['seconds']:.0f} s)", file=sys.stderr)
            return home / "data", datetime.fromisoformat(meta["end"]), None
    home.mkdir(parents=True, exist_ok=True)
    end = _utc_now_s()
    command = [sys.executable, "-m", "bench.synth", "--data-dir", str(home / "data"), "--spans", str(spans)]
    command += ["--hours", str(hours), "--end", end.isoformat(), "--force"]
    print("building:", " ".join(command), file=sys.stderr)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=sys.stderr)
    seconds = time.perf_counter() - started
    meta_path.write_text(
        json.dumps({"spans_requested": spans, "hours": hours, "end": end.isoformat(), "seconds": seconds})
    )
    return home / "data", end, seconds


def _utc_now_s() -> datetime:
    from obsdash.store.queries.window import utc_now

    return utc_now().replace(microsecond=0)


def measure_size(data_dir: Path, now: datetime, spans: int, hours: float, repeat: int) -> SizeResult:
    """Host the store here, join it from a spawned client, and time every case `repeat` times in each."""
    from obsdash.store.queries.traces import get_trace
    from obsdash.store.queries.window import window_named

    host_open, store = timed_open(data_dir)
    if not store.is_host:
        raise SystemExit(f"another process already hosts {data_dir}: stop it first")
    first = timed(refresh, store, Case("overview", "1h"), now, "")[0]
    window_spans = {
        w: int(
            store.query(
                "SELECT count(*) FROM spans WHERE start_time >= ?", [window_named(w).start(now)]
            ).rows[0][0]
        )
        for w in WINDOWS
    }
    trace_ids = [
        str(r[0])
        for r in store.query(
            "SELECT trace_id FROM (SELECT trace_id FROM spans WHERE is_root) USING SAMPLE reservoir(32 ROWS) "
            "REPEATABLE (7)",
            max_rows=32,
        ).rows
    ] or [""]
    nears = {t: found.time_range() if (found := get_trace(store, t)) else None for t in trace_ids}
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    client = context.Process(target=_client_main, args=(theirs, str(data_dir), now.isoformat()), daemon=True)
    client.start()
    hello = ours.recv()
    if hello["is_host"]:
        raise SystemExit("the client process became the host: the hub did not answer it")
    result = SizeResult(
        size=spans,
        spans=int(store.query("SELECT count(*) FROM spans").rows[0][0]),
        hours=hours,
        store_mb=size_mb(data_dir / "telemetry.duckdb", data_dir / "telemetry.duckdb.wal"),
        generated_s=None,
        host_open_s=host_open,
        client_open_s=hello["open_s"],
        first_overview_s=first,
        host_rss_mb=(0.0, 0.0),
        client_rss_mb=(0.0, 0.0),
        window_spans=window_spans,
    )
    timing = TimingReader(store)
    for round_no in range(-1, repeat):  # round -1 warms both processes up and is not recorded
        order = list(CASES)
        random.Random(round_no).shuffle(order)
        for n, case in enumerate(order):
            trace_id = trace_ids[(round_no + n) % len(trace_ids)]
            timing.parts.clear()
            for side in ("host", "remote") if (round_no + n) % 2 else ("remote", "host"):
                if side == "host":
                    seconds, rows = timed(refresh, timing, case, now, trace_id, nears[trace_id])
                else:
                    message = {"trace_id": trace_id, "near": nears[trace_id]}
                    ours.send({"screen": case.screen, "window": case.window, **message})
                    seconds, rows = ours.recv()
                if round_no >= 0:
                    getattr(result, side).setdefault(case.name, []).append(seconds)
                    result.rows[case.name] = rows
            if round_no >= 0 and case.screen == "overview":
                parts = result.parts.setdefault(case.name, {})
                for part, seconds in timing.parts.items():
                    parts.setdefault(part, []).append(seconds)
    ours.send("rss")
    result.client_rss_mb = ours.recv()
    result.host_rss_mb = rss_mb()
    ours.send(None)
    client.join(timeout=30)
    store.close()
    return result


# -- reporting --------------------------------------------------------------------------------------------


def size_report(result: SizeResult) -> str:
    """One store: header figures and a table of every case."""
    lines = [
        f"### {result.label} ({result.spans:,}) — store {result.store_mb:,.0f} MiB",
        "",
        f"spans in window: {', '.join(f'{w} {n:,}' for w, n in result.window_spans.items())}; "
        f"open: host {ms(result.host_open_s)} ms, client {ms(result.client_open_s)} ms; first overview 1h "
        f"after open {ms(result.first_overview_s)} ms; RSS host {result.host_rss_mb[0]:,.0f} MiB "
        f"(peak {result.host_rss_mb[1]:,.0f}), client {result.client_rss_mb[0]:,.0f} MiB"
        + (f"; generated in {result.generated_s:.0f} s" if result.generated_s else ""),
        "",
    ]
    header = ["refresh", "rows", "host median ms", "host p95", "client median ms", "client p95"]
    rows = [
        [
            case.name,
            str(result.rows.get(case.name, "")),
            ms(median(result.host[case.name])),
            ms(p95(result.host[case.name])),
            ms(median(result.remote[case.name])),
            ms(p95(result.remote[case.name])),
        ]
        for case in CASES
    ]
    lines.append(markdown_table(header, rows))
    return "\n".join(lines)


def screens_table(results: list[SizeResult]) -> str:
    """Every screen's refresh, median ms as host / client, one column per store."""
    header = ["refresh (median ms, host / client)", *(r.label for r in results)]
    rows = [
        [
            case.name,
            *(f"{ms(median(r.host[case.name]))} / {ms(median(r.remote[case.name]))}" for r in results),
        ]
        for case in CASES
    ]
    return markdown_table(header, rows)


def parts_table(results: list[SizeResult]) -> str:
    """The overview's time per query function (host, median ms): which query dominates."""
    parts = sorted({part for r in results for per_case in r.parts.values() for part in per_case})
    rows = []
    for r in results:
        for window in WINDOWS:
            name = f"overview {window}"
            per_part = r.parts.get(name, {})
            cells = (ms(median(per_part[part])) if part in per_part else "–" for part in parts)
            rows.append([f"{r.label}, {window}", *cells, ms(median(r.host[name]))])
    return markdown_table(["overview: host median ms", *parts, "whole refresh"], rows)


def p6_target_ms(spans: int) -> float:
    """P6's limit for a store of `spans` (the 10M limit beyond 10M too)."""
    return next((limit for size, limit in P6_TARGETS_MS if spans <= size), P6_TARGETS_MS[-1][1])


def p6_summary(results: list[SizeResult]) -> str:
    """The P6 verdict: overview refresh per window and size, against the target."""
    header = ["overview refresh (median / p95 ms)"]
    for r in results:
        header.append(f"{r.label} (≤ {p6_target_ms(r.size):g})")
    rows = []
    for window in WINDOWS:
        name = f"overview {window}"
        for side in ("host", "remote"):
            cells = [f"{window}, {'host' if side == 'host' else 'client'}"]
            for r in results:
                samples = getattr(r, side)[name]
                verdict = "" if median(samples) * 1000 <= p6_target_ms(r.size) else " ✗"
                cells.append(f"{ms(median(samples))} / {ms(p95(samples))}{verdict}")
            rows.append(cells)
    return markdown_table(header, rows)


def measure_sizes(
    sizes: list[tuple[int, float]], repeat: int = 15, cache_dir: Path = DEFAULT_CACHE, rebuild: bool = False
) -> list[SizeResult]:
    """Build (or reuse) a store per (spans, hours) and time every refresh on it."""
    results = []
    for spans, hours in sizes:
        data_dir, end, generated = ensure_store(cache_dir, spans, hours, rebuild)
        print(f"measuring {short_count(spans)} spans / {hours:g} h, {repeat} rounds ...", file=sys.stderr)
        result = measure_size(data_dir, end, spans, hours, repeat)
        result.generated_s = generated
        results.append(result)
    return results


def headline(results: list[SizeResult]) -> list[Headline]:
    """P6 rows: the overview refresh (hosting process, median) for the 1h window the dashboard opens on, and
    for `all`, against the target of each store's size."""
    rows = []
    for r in results:
        for window in ("1h", "all"):
            samples = r.host[f"overview {window}"]
            value, limit = median(samples) * 1000, p6_target_ms(r.size)
            what = f"overview refresh, {window} window, {r.label}"
            note = f"p95 {p95(samples) * 1000:.0f} ms; client {median(r.remote[f'overview {window}']) * 1000:.0f} ms"
            rows.append(
                Headline(
                    "P6",
                    what,
                    value,
                    limit,
                    "ms",
                    "limit",
                    value / limit,
                    f"≤ {limit:g} ms",
                    value <= limit,
                    note,
                )
            )
    return rows


def machine() -> dict[str, Any]:
    """What the figures were measured on (bench.headline's description, plus the DuckDB version)."""
    import duckdb

    from bench.headline import machine as described

    about: dict[str, Any] = dict(described())
    about.update(nproc=os.cpu_count(), duckdb=duckdb.__version__, platform=about["os"])
    return about


def parse_size(text: str, hours: float) -> tuple[int, float]:
    """`1M` or `10M@240` (spans, optionally @ hours) → (spans, hours)."""
    count, _, span_hours = text.partition("@")
    return parse_count(count), float(span_hours) if span_hours else hours


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--spans", action="append", metavar="N[@HOURS]", help="store size, repeatable (1M, 10M, 10M@240)"
    )
    parser.add_argument("--hours", type=float, default=24.0, help="default time span of a store (24)")
    parser.add_argument("--repeat", type=int, default=15, help="rounds per case (15)")
    parser.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"stores live here ({DEFAULT_CACHE})"
    )
    parser.add_argument("--rebuild", action="store_true", help="build the stores again even when cached")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    args = parser.parse_args(argv)
    sizes = [parse_size(s, args.hours) for s in args.spans or ["1M"]]
    results = measure_sizes(sizes, args.repeat, args.cache_dir, args.rebuild)
    for result in results:
        print(size_report(result) + "\n", flush=True)
    about = machine()
    print(f"## P6 — {about['nproc']} cores, Python {about['python']}, duckdb {about['duckdb']}\n")
    print(p6_summary(results), screens_table(results), parts_table(results), sep="\n\n")
    if args.json:
        payload = {
            "machine": about,
            "repeat": args.repeat,
            "results": [r.__dict__ for r in results],
            "when": datetime.now().isoformat(timespec="seconds"),
        }
        args.json.write_text(json.dumps(payload, indent=1, default=str))


if __name__ == "__main__":
    main()
