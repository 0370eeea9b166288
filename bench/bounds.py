"""R3 — what a stalled spool writer costs the app: per-span time and memory, stalled against a working writer.

`python -m bench.bounds [--spans 50k] [--rounds 5] [--max-queued 1000]` runs the same wrapped app in three set-ups,
interleaved round by round: the writer working (default settings), the writer stalled (fault point `spool_stall`,
a hung disk) with a queue of `--max-queued`, and stalled with the default queue (200,000 records). The app makes
2,000 warm-up spans, then `--spans` spans through the OpenTelemetry API (~1 kB each once encoded), timing them in
chunks of 1,000, and reads its VmRSS before and after. Reported: the median over rounds of each run's median
per-span cost (export included), its ratio to the working writer, RSS growth over the timed spans, and the drops
counted in the run's end record. The tests assert memory and counts (tests/reliability/test_bounds.py); this
measures speed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench._common import markdown_table, median, parse_count

APP = """
import json, os, time
from opentelemetry import trace

def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

tracer = trace.get_tracer("bench.bounds")
def burst(n):
    for i in range(n):
        with tracer.start_as_current_span("burst", attributes={{"i": i, "payload": "x" * 200}}):
            pass

burst(2000)
before = rss_kb()
costs = []
for _ in range({chunks}):
    started = time.perf_counter_ns()
    burst(1000)
    costs.append((time.perf_counter_ns() - started) / 1000 / 1000)
after = rss_kb()
os.close(os.open(os.path.join(os.environ["OBSDASH_DIR"], "spool", ".unstall"), os.O_CREAT | os.O_WRONLY, 0o600))
costs.sort()
print(json.dumps({{"per_span_us": costs[len(costs) // 2], "rss_growth_kb": after - before}}))
"""

SETUPS: tuple[tuple[str, dict[str, str]], ...] = (
    ("writer working (default queue)", {}),
    (
        "writer stalled, queue {max_queued}",
        {"OBSDASH_FAULTS": "spool_stall", "OBSDASH_MAX_QUEUED": "{max_queued}"},
    ),
    ("writer stalled, default queue (200k)", {"OBSDASH_FAULTS": "spool_stall"}),
)


def measure(setup_env: dict[str, str], spans: int) -> dict[str, float]:
    """One wrapped run: per-span µs (median of 1,000-span chunks), RSS growth, drops from the end record."""
    root = Path(tempfile.mkdtemp(prefix="obsdash-bounds-")) / ".obsdash"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSDASH_")}
    env.update(setup_env)
    app = APP.format(chunks=max(1, spans // 1000))
    wrap = [sys.executable, "-m", "obsdash", "wrap", "--data-dir", str(root), "--"]
    done = subprocess.run(
        [*wrap, sys.executable, "-c", app], env=env, check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(done.stdout)
    result["dropped"] = _dropped(root / "spool")
    return result


def _dropped(spool: Path) -> float:
    for segment in sorted(spool.glob("runs-*.jsonl")):
        for line in segment.read_text().splitlines():
            record = json.loads(line)
            if record.get("event") == "end":
                return float(sum(record.get("dropped", {}).values()))
    return float("nan")  # no end record: the exit flush did not finish


def run_rounds(spans: int, rounds: int, max_queued: int) -> dict[str, list[dict[str, float]]]:
    """Every set-up once per round, in the same order, `rounds` times."""
    results: dict[str, list[dict[str, float]]] = {}
    for _ in range(rounds):
        for label, env in SETUPS:
            name = label.format(max_queued=max_queued)
            values = {k: v.format(max_queued=max_queued) for k, v in env.items()}
            results.setdefault(name, []).append(measure(values, spans))
    return results


def table(results: dict[str, list[dict[str, float]]]) -> str:
    """Median per-span cost, ratio to the working writer, RSS growth and drops per set-up."""
    baseline = median([r["per_span_us"] for r in next(iter(results.values()))])
    rows = []
    for label, runs in results.items():
        cost = median([r["per_span_us"] for r in runs])
        rows.append(
            [
                label,
                f"{cost:.1f}",
                f"{cost / baseline:.2f}",
                f"{median([r['rss_growth_kb'] for r in runs]) / 1024:.1f}",
                f"{median([r['dropped'] for r in runs]):.0f}",
            ]
        )
    header = ["set-up", "µs per span (median)", "× working", "RSS growth MB", "dropped"]
    return markdown_table(header, rows)


def main(argv: list[str] | None = None) -> int:
    """Measure the three set-ups interleaved and print a Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m bench.bounds", description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=parse_count, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-queued", type=int, default=1000)
    args = parser.parse_args(argv)
    results = run_rounds(args.spans, args.rounds, args.max_queued)
    print(f"{args.spans} spans per run, {args.rounds} rounds, interleaved")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
