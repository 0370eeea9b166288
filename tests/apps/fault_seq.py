"""Numbered spans until killed (R6): `python fault_seq.py TAG [PAUSE_S]`.

Each span carries `seq` (0, 1, 2, ...) and `tag`; after the span has ended, the app prints `seq monotonic_time`
with a flush, so whoever kills it knows which spans were finished and when. Prints `ready` on stderr once the SDK
is up and the first span is done.
"""

from __future__ import annotations

import sys
import time

from opentelemetry import trace


def main() -> None:
    tag = sys.argv[1]
    pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0.001
    tracer = trace.get_tracer("fault_seq")
    seq = 0
    while True:
        with tracer.start_as_current_span("numbered", attributes={"seq": seq, "tag": tag}):
            pass
        print(seq, time.monotonic(), flush=True)
        if seq == 0:
            print("ready", file=sys.stderr, flush=True)
        seq += 1
        time.sleep(pause)


if __name__ == "__main__":
    main()
