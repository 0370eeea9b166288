"""Spool segments from the intake: the same files an app's spool writer makes (docs/spool-format.md, "Files").

`DIR/spool/<kind>-<time_ns>-<pid>-<seq>.jsonl`, written to `.<name>.tmp` (O_CREAT|O_EXCL, 0600) and renamed into
place, so the hub never reads half a segment. Written synchronously, inside the request: the sender gets 200
only once its records are in a file the hub will ingest, so a crash of this process after the answer loses
nothing. Lines go to the file as they are converted rather than piling up first: a 64 MiB request of 200k spans
makes 128 MiB of lines. A write that fails raises OSError (the intake answers 503: OTLP senders retry it).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from obsdash_instrumenters.spool import KINDS, SEGMENT_SUFFIX

BUFFER = 1024 * 1024


class SegmentWriter:
    """Makes segment files in the spool; safe to call from several threads."""

    def __init__(self, spool_dir: Path) -> None:
        self.spool_dir = spool_dir
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def open(self, kind: str) -> PendingSegment:
        """A new segment of `kind`, in its hidden temporary file until committed."""
        if kind not in KINDS:
            raise ValueError(f"not a spool kind: {kind}")
        with self._lock:
            seq = next(self._seq)
        name = f"{kind}-{time.time_ns():020d}-{os.getpid()}-{seq:06d}{SEGMENT_SUFFIX}"
        tmp = self.spool_dir / f".{name}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except (
            FileNotFoundError
        ):  # the spool was deleted under us: recreate it once, as the app's writer does
            self.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return PendingSegment(tmp, self.spool_dir / name, os.fdopen(fd, "wb", buffering=BUFFER))

    def write(self, kind: str, lines: list[bytes]) -> None:
        """One segment holding `lines` (JSON objects, each ending in a newline); nothing when there are none."""
        if not lines:
            return
        with self.open(kind) as segment:
            for line in lines:
                segment.append(line)
            segment.commit()


class PendingSegment:
    """A segment being written. `append` lines, then `commit` (rename into place; nothing when it holds no line).
    Leaving the `with` block without committing removes the temporary file."""

    def __init__(self, tmp: Path, final: Path, file: BinaryIO) -> None:
        self.tmp = tmp
        self.final = final
        self.count = 0
        self._file = file
        self._done = False

    def append(self, line: bytes) -> None:
        """Add one line (a JSON object ending in a newline)."""
        self._file.write(line)
        self.count += 1

    def __len__(self) -> int:
        return self.count

    def commit(self) -> None:
        """Close the file and rename it into the spool, where the hub will find it."""
        self._file.close()
        self._done = True
        if self.count:
            os.rename(self.tmp, self.final)
        else:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> PendingSegment:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._done:
            try:
                self._file.close()
            except OSError:
                pass
            self.tmp.unlink(missing_ok=True)
