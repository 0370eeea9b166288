"""A small app for OTLP out: Flask requests (test client), sqlite, `logging` and a metric of its own.

`python otlp_out_app.py [REQUESTS]`. Prints one line a bare run prints too, and exits 3, so a wrapped run can be
compared with a bare one. One request logs a secret, which must reach the collector scrubbed, as in the store.
"""

import logging
import sqlite3
import sys

from flask import Flask
from opentelemetry import metrics

app = Flask(__name__)
log = logging.getLogger("otlp-out-app")
db = sqlite3.connect(":memory:", check_same_thread=False)
db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
db.executemany("INSERT INTO items VALUES (?, ?)", [(i, f"item {i}") for i in range(5)])
orders = metrics.get_meter("otlp-out-app").create_counter("app.orders", unit="1")


@app.get("/items/<int:item>")
def item(item: int) -> str:
    row = db.execute("SELECT name FROM items WHERE id = ?", (item,)).fetchone()
    orders.add(1, {"item": str(item)})
    log.warning("served item %s", item)
    return row[0] if row else "none"


@app.get("/login")
def login() -> str:
    log.error("login failed for password=hunter2-very-secret")
    return "no"


def main() -> int:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    client = app.test_client()
    for n in range(requests):
        client.get(f"/items/{n % 5}")
    client.get("/login")
    print(f"done {requests + 1} requests")
    return 3


if __name__ == "__main__":
    sys.exit(main())
