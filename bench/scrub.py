"""What the secret scrubber (S1) adds to encoding a span and a log line, measured against encoding without it.

`python -m bench.scrub [--records 2000] [--rounds 9]` builds real spans first: a Flask app under the contrib Flask
instrumentor, called through its test client at `/items/<n>?page=2` with a browser-like User-Agent, so each span
has the instrumentor's ~12 attributes and a target that differs per request (as in a real server, where the
target and URL miss the scrubber's cache of clean values and the rest hit it). Then, interleaved in one process:
`encode_span` with the scrubber replaced by a no-op (A) and with it (B), on fresh spans each pass; the same for
a `logging`-style log line with a formatted message. Medians over rounds; the difference is the scrubber's cost.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench._common import markdown_table, median


def _flask_spans(count: int) -> list[Any]:
    from flask import Flask
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    spans: list[Any] = []

    class Keep(SpanProcessor):
        def on_end(self, span: Any) -> None:
            spans.append(span)

    provider = TracerProvider()
    provider.add_span_processor(Keep())
    app = Flask("shop")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> str:
        return str(item_id)

    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)
    client = app.test_client()
    agent = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
    )
    for n in range(count):
        client.get(f"/items/{n}?page=2", headers={"User-Agent": agent})
    return spans


def _time_per_call(encode: Callable[[Any], Any], records: list[Any]) -> float:
    began = time.thread_time()  # CPU time of this thread: less noise than wall time on a loaded machine
    for record in records:
        encode(record)
    return (time.thread_time() - began) / len(records) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000, help="records per pass")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    from obsdash_instrumenters import encode, scrub
    from obsdash_instrumenters.context import RecordContext

    ctx = RecordContext("bench", "run")
    spans = _flask_spans(args.records * args.rounds * 2 + args.records)
    real = {"span": scrub.span, "log": scrub.log}

    def span_pass(i: int) -> list[Any]:
        return spans[i * args.records : (i + 1) * args.records]

    attributes = {
        "code.file.path": "/srv/shop/orders.py",
        "code.function.name": "ship",
        "code.line.number": 41,
    }

    def log_line(n: int) -> Any:
        body = f"order {n} shipped to customer 42 in 12.5 ms (carrier dhl, 3 parcels)"
        return encode.encode_plain_log(
            "INFO", 9, body, dict(attributes, **{"thread.name": "MainThread"}), ctx
        )

    _time_per_call(lambda span: encode.encode_span(span, ctx), span_pass(0))  # warm-up: imports, caches
    results: dict[str, list[float]] = {"span A": [], "span B": [], "log A": [], "log B": []}
    for r in range(args.rounds):
        for variant in ("A", "B"):
            scrub.span = real["span"] if variant == "B" else (lambda record: None)
            scrub.log = real["log"] if variant == "B" else (lambda record: None)
            batch = span_pass(1 + 2 * r + (variant == "B"))
            results[f"span {variant}"].append(
                _time_per_call(lambda span: encode.encode_span(span, ctx), batch)
            )
            base = (2 * r + (variant == "B")) * args.records
            logs = list(range(base, base + args.records))
            results[f"log {variant}"].append(_time_per_call(log_line, logs))
    scrub.span, scrub.log = real["span"], real["log"]

    rows = []
    for kind in ("span", "log"):
        a, b = median(results[f"{kind} A"]), median(results[f"{kind} B"])
        rows.append([kind, f"{a:.2f}", f"{b:.2f}", f"{b - a:+.2f}", f"{b / a:.2f}×"])
    attrs = len(spans[0].attributes)
    print(
        f"encode per record, µs (median of {args.rounds} interleaved rounds of {args.records}; span: {attrs} attrs)"
    )
    print(markdown_table(["record", "no scrub", "scrub", "added", "ratio"], rows))


if __name__ == "__main__":
    main()
