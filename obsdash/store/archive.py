"""`spool/ingested/`: the segments already in the store, kept so a corrupt store can be rebuilt (database.py).

Retention needs the archive's size after every ingest pass, and a busy app adds ~9 segments a second (31k an hour,
`python -m sample_app.demo`), so it is not listed each time: one scan when the hub starts, then the bytes ingest
moved in (`Ingester.archived_bytes`) are added and the bytes deleted here subtracted, with a full scan again every
10 minutes to correct any drift. Files are aged by the write time in their names (`<kind>-<ns>-<pid>-<seq>.jsonl`),
so finding the old ones takes a directory listing, not a stat per file.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from obsdash.store.segments import kind_of

log = logging.getLogger(__name__)

RESCAN_S = 600.0


def written_ns(name: str) -> int | None:
    """The write time in a segment's name (ns since the epoch), or None for a file that is not a segment."""
    if kind_of(name) is None:
        return None
    try:
        return int(name.split("-", 2)[1])
    except (IndexError, ValueError):
        return None


class Archive:
    """The size and age of `spool/ingested/`, and deleting from it oldest first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bytes = 0
        self.oldest_ns: int | None = None
        """Write time of the oldest segment at the last scan (newer ones only arrive later)."""
        self._scanned_at = 0.0
        self.scan()

    def scan(self) -> None:
        """Count every segment's bytes (a stat per file: ~1 s per 100k files on a loaded 2-core box)."""
        total = 0
        oldest: int | None = None
        for name, ns in self._listing():
            try:
                total += (self.path / name).stat().st_size
            except FileNotFoundError:
                continue
            oldest = ns if oldest is None else min(oldest, ns)
        self.bytes, self.oldest_ns = total, oldest
        self._scanned_at = time.monotonic()

    def added(self, nbytes: int) -> None:
        """Ingest moved `nbytes` more into the archive; rescan now and then to correct drift."""
        if nbytes > 0:
            self.bytes += nbytes
            if self.oldest_ns is None:
                self.oldest_ns = 0  # not known until the next listing (a backlog's names can be old)
        if time.monotonic() - self._scanned_at > RESCAN_S:
            self.scan()

    def delete_older(self, cutoff_ns: int) -> tuple[int, int]:
        """Delete segments written before `cutoff_ns`; (files, bytes) deleted."""
        if self.oldest_ns is None or self.oldest_ns >= cutoff_ns:
            return 0, 0
        listing = self._listing()
        deleted = self._delete(name for name, ns in listing if ns < cutoff_ns)
        self.oldest_ns = min((ns for _, ns in listing if ns >= cutoff_ns), default=None)
        return deleted

    def trim_to(self, limit: int) -> tuple[int, int]:
        """Delete the oldest segments until the archive holds at most `limit` bytes; (files, bytes) deleted."""
        if self.bytes <= limit:
            return 0, 0
        listing = sorted(self._listing(), key=lambda item: item[1])
        files = freed = first_kept = 0
        while first_kept < len(listing) and self.bytes > limit:
            n, size = self._delete([listing[first_kept][0]])
            files, freed, first_kept = files + n, freed + size, first_kept + 1
        self.oldest_ns = listing[first_kept][1] if first_kept < len(listing) else None
        return files, freed

    def _delete(self, names: Iterable[str]) -> tuple[int, int]:
        files = freed = 0
        for name in names:
            path = self.path / name
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.debug("cannot delete %s: %s", path, exc)
                continue
            files, freed = files + 1, freed + size
        self.bytes = max(0, self.bytes - freed)
        return files, freed

    def _listing(self) -> list[tuple[str, int]]:
        try:
            names = [entry.name for entry in os.scandir(self.path) if entry.is_file()]
        except FileNotFoundError:
            return []
        return [(name, ns) for name in names if (ns := written_ns(name)) is not None]
