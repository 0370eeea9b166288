"""Where obsdash keeps its files: `--data-dir`, else $OBSDASH_DIR, else ./.obsdash.

Layout: `telemetry.duckdb` (owned by the hub), `spool/` (segments from apps), `spool/ingested/` (segments
already in the store, kept so a corrupt store can be rebuilt), `hub.sock` and `hub.lock`. The directory is 0700
and every file in it 0600 (S3).
"""

from __future__ import annotations

import os
from pathlib import Path

from obsdash.errors import ObsdashError

DEFAULT_DIR = ".obsdash"
# AF_UNIX paths are limited to 108 bytes; longer data dirs get their socket in a private runtime dir.
MAX_SOCKET_PATH = 100


class DataDir:
    """The paths of one data directory. (A plain class: `obsdash wrap` start-up is on the P1 budget, and
    dataclasses + tempfile + hashlib cost ~12 ms to import.)"""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"DataDir({str(self.root)!r})"

    @property
    def database(self) -> Path:
        return self.root / "telemetry.duckdb"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def ingested(self) -> Path:
        return self.spool / "ingested"

    @property
    def lock(self) -> Path:
        return self.root / "hub.lock"

    @property
    def socket(self) -> Path:
        path = self.root / "hub.sock"
        if len(str(path)) <= MAX_SOCKET_PATH:
            return path
        import hashlib
        import tempfile

        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:16]
        runtime = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"obsdash-{os.getuid()}"
        _make_private_dir(runtime)
        return runtime / f"{digest}.sock"


def resolve(data_dir: str | None) -> DataDir:
    """The data directory the user asked for, as an absolute path (not created)."""
    raw = data_dir or os.environ.get("OBSDASH_DIR") or DEFAULT_DIR
    return DataDir(Path(raw).expanduser().resolve())


def prepare(data_dir: DataDir) -> DataDir:
    """Create the directory and its spool, private; one clear error when that is impossible."""
    for path in (data_dir.root, data_dir.spool, data_dir.ingested):
        _make_private_dir(path)
    return data_dir


def _make_private_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():  # mkdir would only say "File exists"
        raise ObsdashError(
            f"{path} is a file, not a directory",
            hint="choose another data directory with --data-dir or OBSDASH_DIR",
        )
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError as exc:
        raise ObsdashError(
            f"cannot create the data directory {path}: {exc.strerror or exc}",
            hint="choose another with --data-dir or OBSDASH_DIR",
        ) from None
