"""The hub: the one process that owns `telemetry.duckdb`, ingests the spool and answers everyone else.

It runs inside whichever obsdash command needs the store first; later commands reach it through a Unix socket in
the data directory and become its clients. When its host exits, the next client to need it takes over.
"""
