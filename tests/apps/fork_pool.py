"""multiprocessing pools under wrap: `python fork_pool.py CONTEXT ITEMS [ROUNDS]` (fork, spawn or forkserver).

Two pools of two workers map `work` over ITEMS items each: the first ends the usual way of a `with` block
(`terminate()`: the workers get SIGTERM), the second by `close()` and `join()` (the workers leave through
os._exit after multiprocessing's finalizers). With ROUNDS, the `with` pool is made ROUNDS times (each terminate is
a new chance for a SIGTERM to be missed: see obsdash_instrumenters/sigwatch.py). `work` makes one span and answers
with its pid. Prints one JSON line: the pids that answered, per way of ending.
"""

import json
import multiprocessing
import os
import sys

from opentelemetry import trace


def work(item: int) -> int:
    with trace.get_tracer("fork_pool").start_as_current_span("pool.work") as span:
        span.set_attribute("item", item)
    return os.getpid()


def main() -> None:
    context = multiprocessing.get_context(sys.argv[1])
    items = range(int(sys.argv[2]))
    terminated: list[int] = []
    for _ in range(int(sys.argv[3]) if len(sys.argv) > 3 else 1):
        with context.Pool(2) as pool:
            terminated += pool.map(work, items, chunksize=1)
    pool = context.Pool(2)
    joined = pool.map(work, items, chunksize=1)
    pool.close()
    pool.join()
    print(json.dumps({"terminated": terminated, "joined": joined}))


if __name__ == "__main__":
    main()
