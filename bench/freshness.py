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
    store = open_store(data_dir)
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


def main(argv: list[str] | None = None) -> int:
    """Measure obsdash and the 5 s peer, print a Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m bench.freshness", description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=60)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between spans")
    args = parser.parse_args(argv)
    rows = []
    for label, delay in (("obsdash (250 ms batches)", None), ("SDK default batch delay (5 s)", 5.0)):
        latencies = measure(delay, args.spans, args.interval)
        rows.append(
            [label, str(len(latencies)), ms(median(latencies)), ms(p95(latencies)), ms(max(latencies))]
        )
    print(markdown_table(["pipeline", "spans seen", "p50 ms", "p95 ms", "max ms"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
