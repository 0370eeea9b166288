"""Fork again and again while other threads are busy making spans, logging and recording metrics.

`python fork_storm.py FORKS THREADS`. Busy threads keep the spool writer's lock, the logging locks and the SDK's
locks taken most of the time, so some forks happen while another thread holds one of them: a lock copied held
into a child deadlocks that child the first time it takes it. Each child makes CHILD_SPANS spans and log lines,
records a metric, forks a grandchild of its own (which does the same, once), and leaves through sys.exit(0) so
its telemetry is flushed. The parent waits for each child with a deadline: a child that has not finished in time
is reported as `HUNG pid` and killed and the forking stops, so a deadlock fails the test instead of hanging it.

Prints one JSON line: spans made per process kind and the exit statuses, for the test to check against the store.
"""

import faulthandler
import json
import logging
import os
import sys
import threading
import time

from opentelemetry import metrics, trace

CHILD_SPANS = 5
METRIC_ADDS = 20
CHILD_DEADLINE_S = 20.0
tracer = trace.get_tracer("fork_storm")
counter = metrics.get_meter("fork_storm").create_counter("fork_storm.ticks")
log = logging.getLogger("fork_storm")
log.setLevel(logging.INFO)  # records reach obsdash's handler, not the last-resort printer (WARNING and up)
stop = threading.Event()


def busy(made: list[int]) -> None:
    """Make spans, log lines and metric points as fast as possible until told to stop."""
    while not stop.is_set():
        with tracer.start_as_current_span("storm.busy"):
            log.info("busy")
            for _ in range(METRIC_ADDS):  # most of the time spent in the SDK's metric locks
                counter.add(1)
        made[0] += 1


def child_work(kind: str) -> None:
    """What a forked process does before leaving: spans with a log line each, a metric point."""
    # A child stuck on a lock prints every thread's stack before the parent gives up on it.
    faulthandler.dump_traceback_later(CHILD_DEADLINE_S / 4, exit=False)
    for i in range(CHILD_SPANS):
        with tracer.start_as_current_span(f"storm.{kind}"):
            log.info("%s %d", kind, i)
    counter.add(1)


def wait_with_deadline(pid: int, seconds: float = CHILD_DEADLINE_S) -> int | str:
    """The child's exit status, or "HUNG" after killing a child that did not finish in time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.005)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "HUNG"


def in_child() -> None:
    """A forked child: work, fork one grandchild, wait for it, leave normally (atexit flushes)."""
    child_work("child")
    faulthandler.cancel_dump_traceback_later()  # its watchdog thread would not exist in the grandchild
    grandchild = os.fork()
    if grandchild == 0:
        child_work("grandchild")
        sys.exit(0)
    faulthandler.dump_traceback_later(CHILD_DEADLINE_S / 4, exit=False)
    status = wait_with_deadline(grandchild, CHILD_DEADLINE_S / 2)
    sys.exit(0 if status == 0 else 3)


def main() -> None:
    forks, threads = int(sys.argv[1]), int(sys.argv[2])
    counts = [[0] for _ in range(threads)]
    workers = [threading.Thread(target=busy, args=(c,), daemon=True) for c in counts]
    for worker in workers:
        worker.start()
    statuses: list[int | str] = []
    for _ in range(forks):
        time.sleep(0.002)  # let the busy threads run between two forks
        pid = os.fork()
        if pid == 0:
            in_child()
        status = wait_with_deadline(pid)
        statuses.append(status)
        if status == "HUNG":
            print(f"HUNG {pid}", file=sys.stderr)
            break  # one is enough to fail, and each costs CHILD_DEADLINE_S
    stop.set()
    for worker in workers:
        worker.join()
    busy_spans = sum(c[0] for c in counts)
    print(json.dumps({"busy": busy_spans, "forks": forks, "statuses": statuses}), flush=True)


if __name__ == "__main__":
    main()
