"""`obsdash export`: the stored telemetry as files (Parquet, OTLP/JSON) or replayed to an OTLP endpoint.

- `command.py`: the CLI (flags, scope, dispatch).
- `parquet.py`: one Parquet file per table, written by the hub (`COPY ... TO`), files 0600.
- `records.py`: stored rows → SDK spans, log records and MetricsData (for both OTLP formats).
- `otlp_json.py`: OTLP/JSON files in the OpenTelemetry file-exporter layout (one request per line).
- `replay.py`: the same records sent through the official OTLP/HTTP exporter, with a progress bar on a TTY.

The store is already scrubbed (S1), and nothing is added that the store does not hold.
"""
