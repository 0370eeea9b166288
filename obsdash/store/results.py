"""A query result as plain data: what the hub returns, locally or over its socket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class QueryResult:
    """Columns, their DuckDB type names, the rows, and whether the row cap cut the result."""

    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False

    def to_wire(self) -> dict[str, Any]:
        """A JSON-friendly form (timestamps become ISO strings)."""
        return {"columns": self.columns, "types": self.types, "rows": self.rows, "truncated": self.truncated}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> QueryResult:
        """Rebuild a result sent by `to_wire`, turning timestamp strings back into datetimes."""
        types = list(data["types"])
        is_time = [t.startswith("TIMESTAMP") for t in types]
        rows = [
            tuple(_parse_time(v) if is_time[i] and isinstance(v, str) else v for i, v in enumerate(row))
            for row in data["rows"]
        ]
        return cls(list(data["columns"]), types, rows, bool(data.get("truncated")))

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _parse_time(value: str) -> datetime | str:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return value
