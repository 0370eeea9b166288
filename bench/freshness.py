"""P5 — freshness: how long from a span's end in the app until a dashboard query sees it.

`python -m bench.freshness [--spans 60] [--interval 0.1]` runs a wrapped app that ends one span every
`interval` seconds while this process hosts the hub and polls it exactly as the dashboard does (read the
watermark every 250 ms, query when it moved). Each span's latency is (first seen by a query) − (its end_time).
The peer is the same pipeline with the SDK's default batch delay (5 s, OBSDASH_BATCH_DELAY_S=5), in the same run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench._common import markdown_table, median, ms, p95
from bench.headline import Headline
from obsdash.datadir import DataDir
from obsdash.hub.client import open_store
from obsdash.tui.app import POLL_INTERVAL_S

APP = """
import time
from opentelemetry import trace
tracer = trace.get_tracer("bench.freshness")
for i in range({spans}):
    with tracer.start_as_current_span(f"tick-{{i}}"):
        pass
    time.sleep({interval})
"""
SEEN_SQL = "SELECT name, end_time FROM spans WHERE scope = 'bench.freshness'"


def measure(batch_delay_s: float | None, spans: int, interval: float) -> list[float]:
    """Latencies (s) of `spans` spans, with the app's batch delay set to `batch_delay_s` (None: obsdash's)."""
    root = Path(tempfile.mkdtemp(prefix="obsdash-fresh-"))
    data_dir = DataDir(root / ".obsdash")
    store = open_store(data_dir, dashboard=True)  # the hub as the dashboard hosts it
    seen: dict[str, float] = {}
    ends: dict[str, datetime] = {}
    done = threading.Event()

    def poll() -> None:
        mark = None
        while not done.is_set():
            stats = store.stats()
            if (stats["pid"], stats["watermark"]) != mark:
                mark = (stats["pid"], stats["watermark"])
                now = time.time()
                for name, end in store.query(SEEN_SQL, sync=False).rows:
                    if name not in seen:
                        seen[name], ends[name] = now, end
            time.sleep(POLL_INTERVAL_S)

    env = {**os.environ}
    if batch_delay_s is not None:
        env["OBSDASH_BATCH_DELAY_S"] = str(batch_delay_s)
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    app = APP.format(spans=spans, interval=interval)
    wrap = [sys.executable, "-m", "obsdash", "wrap", "--data-dir", str(data_dir.root), "--"]
    subprocess.run([*wrap, sys.executable, "-c", app], env=env, check=True)
    deadline = time.time() + 15
    while len(seen) < spans and time.time() < deadline:
        time.sleep(0.1)
    done.set()
    poller.join()
    store.close()
    return [seen[n] - ends[n].replace(tzinfo=UTC).timestamp() for n in seen]


PIPELINES = (("obsdash (250 ms batches)", None), ("SDK default batch delay (5 s)", 5.0))
P95_LIMIT_S = 1.0


def measure_both(spans: int = 60, interval: float = 0.1) -> dict[str, list[float]]:
    """Latencies of obsdash's pipeline and of the 5 s peer, one after the other, by pipeline label."""
    return {label: measure(delay, spans, interval) for label, delay in PIPELINES}


def table(results: dict[str, list[float]]) -> str:
    """Spans seen, p50, p95 and max latency per pipeline."""
    rows = [
        [label, str(len(lat)), ms(median(lat)), ms(p95(lat)), ms(max(lat))] for label, lat in results.items()
    ]
    return markdown_table(["pipeline", "spans seen", "p50 ms", "p95 ms", "max ms"], rows)


def headline(results: dict[str, list[float]], spans: int) -> list[Headline]:
    """The P5 row: obsdash's p95 against the 5 s batch delay's, and the 1 s limit."""
    ours, peer = (p95(lat) * 1000 for lat in results.values())
    seen = len(next(iter(results.values())))
    met = ours <= P95_LIMIT_S * 1000 and seen == spans
    note = f"p50 {median(next(iter(results.values()))) * 1000:.0f} ms; {seen} of {spans} spans seen"
    what = "freshness: span end → visible to a query, p95"
    return [Headline("P5", what, ours, peer, "ms", "SDK 5 s batch", ours / peer, "≤ 1,000 ms", met, note)]


def main(argv: list[str] | None = None) -> int:
    """Measure obsdash and the 5 s peer, print a Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m bench.freshness", description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=60)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between spans")
    args = parser.parse_args(argv)
    print(table(measure_both(args.spans, args.interval)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
