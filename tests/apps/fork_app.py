"""A small Flask app for the fork and reload tests, served by gunicorn or `flask run`.

`GET /work/<n>`: the Flask instrumentor's SERVER span, one span of the app's own (`fork_app.work`) and one log
line; answers with the serving pid and GENERATION (the reload test edits that line to tell the two apps apart).
"""

import logging
import os
import time

from flask import Flask
from opentelemetry import trace

GENERATION = 1

app = Flask(__name__)
log = logging.getLogger("fork_app")
log.setLevel(logging.INFO)  # INFO reaches obsdash's handler; below WARNING nothing is printed
tracer = trace.get_tracer("fork_app")


@app.get("/work/<int:n>")
def work(n: int) -> dict[str, int]:
    with tracer.start_as_current_span("fork_app.work"):
        log.info("work %d", n)
        time.sleep(0.005)  # a busy worker leaves the next connection to another: every worker serves
    return {"pid": os.getpid(), "n": n, "generation": GENERATION}
