"""An app that pushes every kind of secret (secrets_catalog.py) through every path obsdash records, for the S1 tests.

`python secrets_app.py STANDIN_URL|- [ARG...]`: the ARGs are not read, they put secrets in the run's argv.

Paths: a span's name, attributes, status and events (OpenTelemetry API), `record_exception`; a counter's
attributes; `logging` messages, %-arguments, `extra=` fields and `log.exception` with a traceback whose source
lines hold secret literals; the OpenTelemetry logs API; `requests` calls to a Flask server on 127.0.0.1, one with
`user:pass@` and signed query parameters in the URL, one with Authorization / X-Api-Key / Cookie headers (captured
on both sides when the OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_* variables ask); a sqlite3 statement; an
unhandled exception in a thread; an LLM prompt through the openai SDK when a stand-in URL is given; and at the end
an unhandled exception in the main thread (exit status 1). Prints only deterministic lines, so a bare run and a
wrapped run can be compared.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import threading

import requests
from flask import Flask
from opentelemetry import metrics, trace
from opentelemetry._logs import SeverityNumber, get_logger
from opentelemetry.trace import Status, StatusCode
from secrets_catalog import KEYED, SHAPES
from werkzeug.serving import WSGIRequestHandler, make_server

TEXTS = [text for text, _, _ in SHAPES]
ALL = "\n".join(TEXTS)
LLM_FILLER = "The catalogue lists mugs, kettles and teapots in many colours. " * 120  # > 4 KiB


class QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: object) -> None:
        """No access log: it carries the time and the port, and the bare run must print the same."""


def connect(password: str, key: str) -> None:
    raise ConnectionError(f"database refused the login with password={password}")


def http_calls() -> None:
    app = Flask("secrets_app")

    @app.get("/path/seen")
    def seen() -> str:
        return "seen"

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    base = f"127.0.0.1:{server.server_port}/path/seen"
    query = "api_key=UrlApiKeySeed91&X-Amz-Signature=UrlAmzSigSeed92&token=UrlTokenSeed93&page=2"
    reply = requests.get(f"http://urluser:UrlUserPassSeed90@{base}?{query}", timeout=10)
    print("url call:", reply.status_code, reply.text)
    headers = {
        "Authorization": "Bearer HdrBearerSeed94",
        "X-Api-Key": "HdrApiKeySeed95",
        "Cookie": "sid=HdrCookieSeed96",
    }
    reply = requests.get(f"http://{base}?page=3", headers=headers, timeout=10)
    print("header call:", reply.status_code, reply.text)
    server.shutdown()


def spans_and_metrics() -> None:
    tracer = trace.get_tracer("secrets_app")
    with tracer.start_as_current_span("checkout " + TEXTS[0]) as span:
        for i, text in enumerate(TEXTS):
            span.set_attribute(f"seed.shape.{i}", text)
        for name, value in KEYED:
            span.set_attribute(name, value)
        span.set_attribute("http.request.header.authorization", ["KeyedAuthzSeed66"])
        span.set_attribute("gen_ai.usage.input_tokens", 1234)
        span.set_attribute("llm.token_count.prompt", 56)
        span.set_attribute("seed.plain", "plain words survive")
        span.add_event("login attempt", {f"shape.{i}": text for i, text in enumerate(TEXTS)})
        try:
            raise ValueError("bad credentials:\n" + ALL)
        except ValueError as exc:
            span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, "checkout failed:\n" + ALL))
    counter = metrics.get_meter("secrets_app").create_counter("secrets_app.logins")
    counter.add(1, {"note": ALL, **dict(KEYED)})
    print("spans and metrics: done")


def logs() -> None:
    log = logging.getLogger("secrets_app")
    for text in TEXTS:
        log.warning("seen in a message: " + text)
        log.warning("seen in an argument: %s", text)
    log.warning("seen in extra", extra={"note": ALL, **dict(KEYED)})
    try:
        connect(password="SrcPwdSeed80", key="sk-proj-SrcLineSeed81aBcDeFgHiJkLmNoP")
    except ConnectionError:
        log.exception("connect failed")
    get_logger("secrets_app").emit(
        body="otel log:\n" + ALL, attributes={"note": ALL, **dict(KEYED)}, severity_number=SeverityNumber.WARN
    )
    print("logs: done")


def database() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE users (id INTEGER, password TEXT)")
    db.execute("UPDATE users SET password = 'SqlPwdSeed53' WHERE id = 7")
    print("database: done")


def worker() -> None:
    raise RuntimeError("worker failed:\n" + ALL)


def llm(url: str) -> None:
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="standin-dummy-key")
    prompt = f"PROMPT-HEAD-MARKER {ALL}\n{LLM_FILLER}\n{ALL} PROMPT-TAIL-MARKER"
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    print("llm:", reply.choices[0].finish_reason)


def main() -> None:
    http_calls()
    spans_and_metrics()
    logs()
    database()
    thread = threading.Thread(target=worker, name="worker")
    thread.start()
    thread.join()
    if sys.argv[1] != "-":
        llm(sys.argv[1])
    connect(password="SrcPwdSeed80", key="sk-proj-SrcLineSeed81aBcDeFgHiJkLmNoP")  # unhandled: exit status 1


if __name__ == "__main__":
    main()
