"""A small Flask app of the kind obsdash meets: SQLite, an upstream call, a crashing route, logging.

Run as `python flask_shop.py PORT UPSTREAM_URL`; serves with Flask's dev server (threaded).
"""

import logging
import sqlite3
import sys
import time

import requests
from flask import Flask, jsonify, request

app = Flask(__name__)
log = logging.getLogger("shop")
UPSTREAM = sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:9"


@app.get("/items")
def items():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE items (id INTEGER, name TEXT)")
    db.execute("INSERT INTO items VALUES (1, 'tea')")
    rows = db.execute("SELECT id, name FROM items").fetchall()
    log.warning("listed %d items", len(rows))
    return jsonify(rows)


@app.get("/checkout")
def checkout():
    log.warning("checkout qty=%s", request.args.get("qty"))
    qty = int(request.args.get("qty", "x"))  # crashes on bad input, as such apps do
    return jsonify(total=qty * 3)


@app.get("/weather")
def weather():
    answer = requests.get(f"{UPSTREAM}/forecast", timeout=5)
    log.warning("upstream said %s", answer.status_code)
    return jsonify(upstream=answer.status_code), 502 if answer.status_code >= 400 else 200


@app.get("/slow")
def slow():
    time.sleep(0.05)
    return jsonify(ok=True)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
