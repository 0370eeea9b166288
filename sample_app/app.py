"""A small Flask "shop" API backed by SQLite, written like any ordinary un-instrumented app.

It has the usual shapes obsdash should make visible: plain CRUD over SQLite (``/items``), a deliberate
N+1 query pattern (``/orders``), an outgoing HTTP call to a flaky third-party API with no retry
(``/weather``), an endpoint that crashes on bad input (``/checkout?qty=abc``), LLM features on the OpenAI and
Anthropic APIs (``/assistant``, ``/suggest``, ``/items/<id>/summary``, ...; see ``sample_app.assistant``), one
INFO log line per request and a background thread that sweeps stale rows every two seconds. Run it with
``python -m sample_app.app --port 5050 --db PATH --upstream URL [--llm-url URL]`` or serve
``sample_app.app:app`` with gunicorn, in which case configuration comes from ``SAMPLE_DB_PATH``,
``SAMPLE_UPSTREAM_URL`` and ``SAMPLE_LLM_URL`` (plus ``SAMPLE_LLM_API_KEY`` and ``SAMPLE_<ROLE>_MODEL``, e.g.
``SAMPLE_ASSISTANT_MODEL``) and the schema and background thread are set up lazily on the first request.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from typing import Any

import requests
from flask import Flask, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from sample_app import assistant

log = logging.getLogger("sample_app")

DEFAULT_UPSTREAM = "http://127.0.0.1:5051"
SWEEP_INTERVAL_S = 2.0
STALE_ITEM_AGE_S = 60.0

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS items ("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL, created_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS orders ("
    " id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES items(id), qty INTEGER NOT NULL,"
    " created_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS weather_lookups (id INTEGER PRIMARY KEY, city TEXT NOT NULL, at REAL NOT NULL)",
)
SEED_ITEMS = [(1, "pot", 24.5), (2, "mug", 8.0), (3, "kettle", 39.9), (4, "saucer", 4.25), (5, "spoon", 2.1)]
SEED_ORDERS = [(1, 1, 1), (2, 2, 4), (3, 3, 1), (4, 4, 2), (5, 5, 6)]

app = Flask(__name__)
app.config.update(
    DB_PATH=os.environ.get("SAMPLE_DB_PATH") or os.path.join(tempfile.gettempdir(), "sample_app.db"),
    UPSTREAM_URL=(os.environ.get("SAMPLE_UPSTREAM_URL") or DEFAULT_UPSTREAM).rstrip("/"),
)
# The LLM APIs: the stand-in's by default (the same server as the weather API), with a dummy key.
app.config["LLM_URL"] = (os.environ.get("SAMPLE_LLM_URL") or app.config["UPSTREAM_URL"]).rstrip("/")
app.config.update(
    {name: os.environ.get(f"SAMPLE_{name}") or value for name, value in assistant.DEFAULTS.items()}
)
app.register_blueprint(assistant.bp)

_ready_lock = threading.Lock()
_ready_for: str | None = None  # DB path the schema was created for and the sweeper runs against


# --- database ---------------------------------------------------------------------------------------


def init_db(path: str) -> None:
    """Create the schema and seed rows; idempotent and safe when several processes race to do it."""
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        for statement in SCHEMA:
            cur.execute(statement)
        now = time.time()
        cur.executemany(
            "INSERT OR IGNORE INTO items (id, name, price, created_at) VALUES (?, ?, ?, ?)",
            [(*row, now) for row in SEED_ITEMS],
        )
        cur.executemany(
            "INSERT OR IGNORE INTO orders (id, item_id, qty, created_at) VALUES (?, ?, ?, ?)",
            [(*row, now) for row in SEED_ORDERS],
        )
        cur.execute("COMMIT")
    finally:
        conn.close()


def get_db() -> sqlite3.Connection:
    """Return this request's SQLite connection, opening it on first use."""
    if "db" not in g:
        g.db = sqlite3.connect(app.config["DB_PATH"], timeout=10)
        g.db.row_factory = sqlite3.Row
    return g.db


@app.teardown_appcontext
def close_db(_exc: BaseException | None) -> None:
    """Close the request's SQLite connection, if one was opened."""
    db = g.pop("db", None)
    if db is not None:
        db.close()


def query(sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    """Run one SELECT on the request's connection and return all rows."""
    cur = get_db().cursor()
    cur.execute(sql, params)
    return cur.fetchall()


# --- background sweep -------------------------------------------------------------------------------


def sweep_once(path: str) -> int:
    """Delete items that are older than STALE_ITEM_AGE_S and not referenced by any order."""
    conn = sqlite3.connect(path, timeout=10)
    try:
        cur = conn.cursor()
        cur.execute(
            "DELETE FROM items WHERE created_at < ? AND id NOT IN (SELECT item_id FROM orders)",
            (time.time() - STALE_ITEM_AGE_S,),
        )
        conn.commit()
        return cur.rowcount
    finally:
        conn.close()


def _sweep_forever() -> None:
    """Body of the background thread: sweep, log, sleep, forever."""
    while True:
        time.sleep(SWEEP_INTERVAL_S)
        try:
            removed = sweep_once(app.config["DB_PATH"])
            log.info("background sweep removed %d stale item(s)", removed)
        except Exception:
            log.exception("background sweep failed")


def ensure_ready() -> None:
    """Create the schema and start the background sweeper once per process (no-op afterwards)."""
    global _ready_for
    if _ready_for == app.config["DB_PATH"]:
        return
    with _ready_lock:
        if _ready_for == app.config["DB_PATH"]:
            return
        init_db(app.config["DB_PATH"])
        if _ready_for is None:
            threading.Thread(target=_sweep_forever, name="background-sweep", daemon=True).start()
        _ready_for = app.config["DB_PATH"]


# --- request hooks ----------------------------------------------------------------------------------


@app.before_request
def _before_request() -> None:
    ensure_ready()
    g.started = time.perf_counter()


@app.after_request
def _log_request(response: Response) -> Response:
    elapsed_ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    path = request.full_path.rstrip("?")
    log.info("%s %s -> %d (%.1f ms)", request.method, path, response.status_code, elapsed_ms)
    return response


# --- routes -----------------------------------------------------------------------------------------


@app.get("/health")
def health() -> ResponseReturnValue:
    """Liveness probe."""
    return {"ok": True}


@app.get("/items")
def list_items() -> ResponseReturnValue:
    """List every item."""
    rows = query("SELECT id, name, price FROM items ORDER BY id")
    return jsonify([dict(row) for row in rows])


@app.post("/items")
def create_item() -> ResponseReturnValue:
    """Insert an item from a JSON body ``{"name": str, "price": number}``."""
    data = request.get_json(silent=True) or {}
    name, price = data.get("name"), data.get("price")
    if not isinstance(name, str) or not name or not isinstance(price, (int, float)):
        return {"error": 'expected a JSON body like {"name": "mug", "price": 8.0}'}, 400
    db = get_db()
    cur = db.cursor()
    cur.execute(
        "INSERT INTO items (name, price, created_at) VALUES (?, ?, ?)", (name, float(price), time.time())
    )
    db.commit()
    return {"id": cur.lastrowid, "name": name, "price": float(price)}, 201


@app.get("/orders")
def list_orders() -> ResponseReturnValue:
    """List orders with their item; deliberately N+1 (one extra SELECT per order)."""
    result = []
    for order in query("SELECT id, item_id, qty FROM orders ORDER BY id"):
        item = query("SELECT name, price FROM items WHERE id = ?", (order["item_id"],))
        result.append({**dict(order), "item": dict(item[0]) if item else None})
    return jsonify(result)


@app.get("/weather")
def weather() -> ResponseReturnValue:
    """Record the lookup, then proxy a forecast from the third-party weather API; no retry, 502 when it misbehaves."""
    city = request.args.get("city")
    if not city:
        return {"error": "missing ?city="}, 400
    db = get_db()
    db.execute("INSERT INTO weather_lookups (city, at) VALUES (?, ?)", (city, time.time()))  # usage audit
    db.commit()
    try:
        resp = requests.get(f"{app.config['UPSTREAM_URL']}/v1/forecast", params={"city": city}, timeout=2)
    except requests.RequestException as exc:
        log.warning("weather API unreachable: %s", exc)
        return {"error": "weather service unreachable"}, 502
    if not resp.ok:
        log.warning("weather API answered %d for city=%s", resp.status_code, city)
        return {"error": f"weather service answered {resp.status_code}"}, 502
    return resp.json()


@app.get("/checkout")
def checkout() -> ResponseReturnValue:
    """Price ``qty`` units of an item; ``qty`` is not validated, so ``?qty=abc`` crashes with a 500."""
    qty = int(request.args.get("qty", "1"))  # bug on purpose: ValueError on bad input is never caught
    item_id = request.args.get("item", 1, type=int)
    rows = query("SELECT name, price FROM items WHERE id = ?", (item_id,))
    if not rows:
        return {"error": f"no item {item_id}"}, 404
    return {"item": rows[0]["name"], "qty": qty, "total": round(rows[0]["price"] * qty, 2)}


# --- command line -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``--port``, ``--db``, ``--upstream`` and ``--llm-url``."""
    parser = argparse.ArgumentParser(prog="python -m sample_app.app", description="Run the sample shop API.")
    parser.add_argument("--port", type=int, default=5050, help="port on 127.0.0.1 (default 5050)")
    parser.add_argument("--db", default=app.config["DB_PATH"], help="SQLite file (default: in the temp dir)")
    parser.add_argument("--upstream", default=app.config["UPSTREAM_URL"], help="weather API base URL")
    parser.add_argument(
        "--llm-url",
        default=None,
        help="base URL of the OpenAI- and Anthropic-compatible APIs (default: --upstream)",
    )
    return parser.parse_args(argv)


def _exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into a normal interpreter exit, so atexit hooks run and the exit status is 0."""
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))


def main(argv: list[str] | None = None) -> None:
    """Configure logging, prepare the database, start the sweeper and serve with Werkzeug."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # our own one-line-per-request log is enough
    app.config.update(DB_PATH=args.db, UPSTREAM_URL=args.upstream.rstrip("/"))
    app.config["LLM_URL"] = (args.llm_url or os.environ.get("SAMPLE_LLM_URL") or args.upstream).rstrip("/")
    _exit_cleanly_on_sigterm()
    ensure_ready()
    log.info(
        "shop listening on http://127.0.0.1:%d (db=%s, upstream=%s, llm=%s)",
        args.port,
        args.db,
        args.upstream,
        app.config["LLM_URL"],
    )
    app.run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
