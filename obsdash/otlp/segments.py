"""Spool segments from the intake: the same files an app's spool writer makes (docs/spool-format.md, "Files").

`DIR/spool/<kind>-<time_ns>-<pid>-<seq>.jsonl`, written to `.<name>.tmp` (O_CREAT|O_EXCL, 0600) and renamed into
place, so the hub never reads half a segment. Written synchronously, inside the request: the sender gets 200
only once its records are in a file the hub will ingest, so a crash of this process after the answer loses
nothing. A write that fails raises OSError (the intake answers 503: OTLP senders retry it).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

from obsdash_instrumenters.spool import KINDS, SEGMENT_SUFFIX


class SegmentWriter:
    """Writes lists of spool lines as segment files; safe to call from several threads."""

    def __init__(self, spool_dir: Path) -> None:
        self.spool_dir = spool_dir
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def write(self, kind: str, lines: list[bytes]) -> None:
        """One segment holding `lines` (JSON objects, each ending in a newline); nothing when there are none."""
        if kind not in KINDS:
            raise ValueError(f"not a spool kind: {kind}")
        if not lines:
            return
        data = b"".join(lines)
        with self._lock:
            seq = next(self._seq)
        name = f"{kind}-{time.time_ns():020d}-{os.getpid()}-{seq:06d}{SEGMENT_SUFFIX}"
        try:
            _write_atomically(self.spool_dir, name, data)
        except (
            FileNotFoundError
        ):  # the spool was deleted under us: recreate it once, as the app's writer does
            self.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_atomically(self.spool_dir, name, data)


def _write_atomically(spool_dir: Path, name: str, data: bytes) -> None:
    tmp = spool_dir / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.rename(tmp, spool_dir / name)
