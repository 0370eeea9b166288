"""The store: the DuckDB schema, ingest of spool segments, and every query obsdash runs.

Only the hub opens the database (DuckDB allows one read-write process, and while it holds the file no other
process can open it at all); everything else asks the hub.
"""
