"""Planted production problems, each next to its clean counterpart, for `obsdash report`.

Run as `python report_app.py planted|clean STANDIN_URL`. Requests go through Flask's test client (the Flask
instrumentor makes a SERVER span per request, as it does under a real server). `planted` hits every route;
`clean` only the counterparts: the report must flag each planted route and none of the clean ones.
"""

import logging
import sqlite3
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import openai
import requests
from flask import Flask

app = Flask(__name__)
log = logging.getLogger("report-app")
db = sqlite3.connect(":memory:", check_same_thread=False)
db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
db.executemany("INSERT INTO items VALUES (?, ?)", [(i, f"item {i}") for i in range(10)])
STANDIN = sys.argv[2]
llm = openai.OpenAI(base_url=f"{STANDIN}/v1", api_key="test", max_retries=0)


class _RateLimited(BaseHTTPRequestHandler):
    """Answers 429 always, or (`recovers`) every other time: a retry then succeeds."""

    recovers = False
    calls = 0

    def do_GET(self) -> None:
        type(self).calls += 1
        self.send_response(200 if self.recovers and self.calls % 2 == 0 else 429)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _Recovering(_RateLimited):
    recovers = True


def _upstream(handler: type[BaseHTTPRequestHandler]) -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


NO_RETRY_UPSTREAM, RETRYING_UPSTREAM = _upstream(_RateLimited), _upstream(_Recovering)


@app.get("/crash")
def crash() -> str:
    return str(int("abc"))


@app.get("/fine")
def fine() -> str:
    return "ok"


@app.get("/rates")
def rates() -> tuple[str, int]:
    status = requests.get(f"{NO_RETRY_UPSTREAM}/rates", timeout=5).status_code
    return "upstream busy", 502 if status != 200 else 200


@app.get("/rates-retried")
def rates_retried() -> tuple[str, int]:
    for _attempt in range(3):
        status = requests.get(f"{RETRYING_UPSTREAM}/rates", timeout=5).status_code
        if status == 200:
            break
    return "rates", 502 if status != 200 else 200


@app.get("/orders")
def orders() -> str:
    ids = [row[0] for row in db.execute("SELECT id FROM items").fetchall()]
    names = [db.execute("SELECT name FROM items WHERE id = ?", (i,)).fetchone()[0] for i in ids]
    return ",".join(names)


@app.get("/orders-joined")
def orders_joined() -> str:
    return ",".join(row[0] for row in db.execute("SELECT name FROM items ORDER BY id").fetchall())


@app.get("/slow")
def slow() -> str:
    time.sleep(0.3)
    return "slow"


@app.get("/ask")
def ask() -> str:
    reply = llm.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    return reply.choices[0].message.content or ""


@app.get("/ask-bounded")
def ask_bounded() -> str:
    reply = llm.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=50, timeout=20
    )
    return reply.choices[0].message.content or ""


PLANTED = ["/crash", "/rates", "/orders", "/slow", "/ask"]
CLEAN = ["/fine", "/rates-retried", "/orders-joined", "/ask-bounded"]


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    routes = PLANTED + CLEAN if sys.argv[1] == "planted" else CLEAN
    client = app.test_client()
    for _round in range(6):
        for route in routes:
            print(route, client.get(route).status_code)
    log.info("done: %d routes", len(routes))


if __name__ == "__main__":
    main()
