"""OTLP in: an opt-in OTLP/HTTP receiver on 127.0.0.1 that turns requests into spool segments.

Apps in other languages, or apps already configured with the official OTLP exporter, land in the same store as
wrapped apps without a second DuckDB writer: each request becomes spool lines (docs/spool-format.md) written as
segment files, and the hub ingests them like any other.

- `decode.py`: request body (protobuf or OTLP/JSON) → the generated `opentelemetry-proto` message.
- `records.py`: that message → spool records, the fields `obsdash_instrumenters.encode` writes.
- `delta.py`: cumulative monotonic sums and histograms → delta points, as the store expects.
- `segments.py`: spool lines → one segment file per kind (temp file + rename, 0600).
- `intake.py`: the HTTP server (caps on body and decompressed size, OTLP/HTTP answers).
- `command.py`: `obsdash serve` and the `--otlp` flags.

Needs the `otlp` extra (`pip install 'obsdash[otlp]'`): only `command.py` may be imported without it.
"""
