"""Parquet export: each table of the selection as `<table>.parquet`, written by the hub with DuckDB's COPY.

The hub owns the DuckDB file, so the copy runs there (`Hub.export_parquet`, asked over the socket like a query),
on its own cursor inside one transaction that is rolled back: every table comes from the same snapshot. The hub's
connection may only touch files inside the data directory (S5: external access is off, the configuration locked),
so DuckDB writes into a private staging directory there (mkdtemp, 0700, inside the 0700 data dir); each file is
then made 0600 and moved to `--out` (renamed, or copied into a file created 0600 when `--out` is on another
filesystem). No other user can read a file at any moment.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from obsdash.store.queries.export import TABLES, Selection, copy_statement


def copy_tables(cursor: Any, data_root: Path, out_dir: Path, selection: Selection) -> dict[str, int]:
    """Write every telemetry table's selected rows to `out_dir/<table>.parquet`; rows written per table."""
    staging = Path(tempfile.mkdtemp(prefix="export-", dir=data_root))
    written: dict[str, int] = {}
    cursor.execute("BEGIN TRANSACTION")
    try:
        for table in TABLES:
            staged = staging / f"{table}.parquet"
            sql, params = copy_statement(table, selection, str(staged))
            row = cursor.execute(sql, params).fetchone()
            written[table] = int(row[0]) if row else 0
            os.chmod(staged, 0o600)
        for table in TABLES:
            _move(staging / f"{table}.parquet", out_dir / f"{table}.parquet")
    finally:
        cursor.execute("ROLLBACK")
        shutil.rmtree(staging, ignore_errors=True)
    return written


def _move(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError:  # another filesystem: copy into a file that is private from its creation
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temporary.unlink(missing_ok=True)
        with (
            source.open("rb") as reader,
            os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as writer,
        ):
            shutil.copyfileobj(reader, writer, 1 << 20)
        os.replace(temporary, target)
