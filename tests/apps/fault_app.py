"""A small app that makes spans of every common kind and prints only deterministic output (for R2 fault tests).

`python fault_app.py ROUNDS [--pause S] [--payload N] [--at ROUND ACTION PATH]...`

Each round: one `round` span (attribute `seq`, and `payload`: N bytes when asked) around a sqlite3 query, a `requests` GET to a local HTTP server
and a log line; the round's result goes to stdout, the log line to stderr. `--at` does something to PATH before
that round, as a stand-in for a fault from outside that happens while the app runs:

- `rmtree`: delete the directory (the spool deleted mid-run),
- `fileify`: replace the directory with a regular file (the spool unwritable: ENOTDIR),
- `corrupt`: overwrite the file with random bytes (a corrupt store).

The bare run gets the same actions on a scratch path, so its output is the same as the wrapped run's.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from opentelemetry import trace


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the server's access log would carry the port and the time."""


def act(action: str, path: str) -> None:
    """Do one fault action to `path`."""
    if action == "rmtree":
        shutil.rmtree(path)
    elif action == "fileify":
        shutil.rmtree(path, ignore_errors=True)
        with open(path, "w") as handle:
            handle.write("not a directory\n")
    elif action == "corrupt":
        with open(path, "r+b") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(0)
            handle.write(os.urandom(max(size, 4096)))
    else:
        raise SystemExit(f"unknown action {action}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("rounds", type=int)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--payload", type=int, default=0)
    parser.add_argument("--at", nargs=3, action="append", default=[], metavar=("ROUND", "ACTION", "PATH"))
    args = parser.parse_args()
    actions = {int(r): (a, p) for r, a, p in args.at}

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("fault_app")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (n INTEGER)")
    tracer = trace.get_tracer("fault_app")
    session = requests.Session()

    for seq in range(args.rounds):
        if seq in actions:
            act(*actions[seq])
        with tracer.start_as_current_span("round", attributes={"seq": seq, "payload": "x" * args.payload}):
            db.execute("INSERT INTO t VALUES (?)", (seq,))
            total = db.execute("SELECT sum(n) FROM t").fetchone()[0]
            reply = session.get(f"{url}/r{seq}", timeout=10)
            log.info("round %d done", seq)
        print(f"round {seq}: sum={total} http={reply.status_code} {reply.text}", flush=True)
        if args.pause:
            time.sleep(args.pause)
    server.shutdown()
    print("done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
