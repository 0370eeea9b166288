"""Everything obsdash runs inside the user's process.

This package is imported by the `sitecustomize` that `obsdash wrap` puts on PYTHONPATH. It must stay light and
harmless: it imports the standard library, OpenTelemetry and orjson only (never duckdb, textual, rich or
watchfiles — an import-linter contract and a subprocess test enforce this), it never raises into the app, and it
defers the OpenTelemetry SDK until the app imports something worth instrumenting.
"""
