"""obsdash: see inside a Python app that was never instrumented.

The dashboard side: the CLI, the hub that owns the DuckDB store, the store's schema and queries, and the TUI.
Nothing here is imported into the user's app; that is `obsdash_instrumenters` (folder `instrumenters/`).
"""

__version__ = "0.1.0"
