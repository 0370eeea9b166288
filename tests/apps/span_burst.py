"""An app that makes a burst of spans through the OpenTelemetry API and measures its own memory (R3).

`python span_burst.py N`: WARMUP spans first (the SDK loads, and a stalled spool's bounded queue fills), then
VmRSS, then N spans, then VmRSS again. It ends a `spool_stall` fault by creating `<spool>/.unstall`, prints one
JSON line (spans created, RSS before and after in kB), and waits for a line on stdin before it exits, so a test can
look at a live process.
"""

from __future__ import annotations

import json
import os
import sys

from opentelemetry import trace

WARMUP = 2000


def rss_kb() -> int:
    """Resident memory of this process (VmRSS)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def burst(tracer: trace.Tracer, n: int) -> None:
    for i in range(n):
        with tracer.start_as_current_span("burst", attributes={"i": i, "payload": "x" * 200}):
            pass


def main() -> None:
    n = int(sys.argv[1])
    tracer = trace.get_tracer("tests.span_burst")
    burst(tracer, WARMUP)
    before = rss_kb()
    burst(tracer, n)
    after = rss_kb()
    spool = os.path.join(os.environ["OBSDASH_DIR"], "spool")
    os.close(
        os.open(os.path.join(spool, ".unstall"), os.O_CREAT | os.O_WRONLY, 0o600)
    )  # private, like the rest
    print(json.dumps({"created": WARMUP + n, "rss_before_kb": before, "rss_after_kb": after}), flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main()
