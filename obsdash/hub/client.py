"""Reaching the store: join the running hub over its socket, or become the hub.

Election uses an exclusive `flock` on `DIR/hub.lock`: the kernel releases it when the host dies, even by kill -9,
so a dead hub never blocks the next one. A client whose hub went away runs the election again and carries on
(the spool keeps everything meanwhile).
"""

from __future__ import annotations

import atexit
import fcntl
import os
import socket
import threading
import time
from typing import Any, Protocol

from obsdash.datadir import DataDir, prepare
from obsdash.errors import ObsdashError, StoreError
from obsdash.hub import protocol
from obsdash.hub.server import DEFAULT_MAX_ROWS, DEFAULT_QUERY_TIMEOUT_S, Hub
from obsdash.store.database import DASHBOARD_MEMORY_LIMIT, MEMORY_LIMIT
from obsdash.store.results import QueryResult
from obsdash.store.retention_policy import take_request

CONNECT_TIMEOUT_S = 15.0


class StoreBackend(Protocol):
    """What readers need from the store, wherever the hub is."""

    def query(
        self, sql: str, params: list[Any] | None, max_rows: int, timeout_s: float, sync: bool
    ) -> QueryResult: ...

    def sync(self) -> dict[str, Any]: ...

    def stats(self) -> dict[str, Any]: ...

    def set_retention(self, changes: dict[str, Any]) -> dict[str, Any]: ...

    def export_parquet(self, out_dir: str, run_id: str | None, since: str | None) -> dict[str, int]: ...

    def close(self) -> None: ...


class LocalBackend:
    """This process hosts the hub."""

    is_host = True

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def query(
        self, sql: str, params: list[Any] | None, max_rows: int, timeout_s: float, sync: bool
    ) -> QueryResult:
        return self.hub.query(sql, params, max_rows, timeout_s, sync)

    def sync(self) -> dict[str, Any]:
        report = self.hub.sync()
        return {"segments": report.segments, "records": report.records, "bad": report.bad_lines}

    def stats(self) -> dict[str, Any]:
        return self.hub.stats()

    def set_retention(self, changes: dict[str, Any]) -> dict[str, Any]:
        return self.hub.set_retention(changes)

    def export_parquet(self, out_dir: str, run_id: str | None, since: str | None) -> dict[str, int]:
        return self.hub.export_parquet(out_dir, run_id, since)

    def close(self) -> None:
        self.hub.close()


class RemoteBackend:
    """Another process hosts the hub; we talk to it over its socket."""

    is_host = False

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        protocol.send(self._sock, request)
        reply = protocol.receive(self._sock)
        if not reply.get("ok"):
            raise ObsdashError(str(reply.get("error")), reply.get("hint"), int(reply.get("status", 2)))
        return reply

    def query(
        self, sql: str, params: list[Any] | None, max_rows: int, timeout_s: float, sync: bool
    ) -> QueryResult:
        request = {"op": "query", "sql": sql, "params": params, "max_rows": max_rows, "timeout_s": timeout_s}
        request["sync"] = sync
        return QueryResult.from_wire(self._call(request)["result"])

    def sync(self) -> dict[str, Any]:
        return self._call({"op": "sync"})

    def stats(self) -> dict[str, Any]:
        return self._call({"op": "stats"})

    def set_retention(self, changes: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call({"op": "retention", "changes": changes})["retention"])

    def export_parquet(self, out_dir: str, run_id: str | None, since: str | None) -> dict[str, int]:
        request = {"op": "export_parquet", "out_dir": out_dir, "run_id": run_id, "since": since}
        return dict(self._call(request)["tables"])

    def close(self) -> None:
        self._sock.close()


class Store:
    """The store as readers see it: queries and sync, surviving the hub's host going away."""

    def __init__(self, data_dir: DataDir, memory_limit: str = MEMORY_LIMIT) -> None:
        self.data_dir = data_dir
        self._memory_limit = memory_limit
        self._backend: LocalBackend | RemoteBackend = _elect(data_dir, memory_limit)
        # The dashboard queries from several worker threads; a hub socket carries one request at a time.
        self._lock = threading.RLock()

    @property
    def is_host(self) -> bool:
        """True when this process hosts the hub."""
        return self._backend.is_host

    def _retrying(self, call: Any) -> Any:
        with self._lock:
            try:
                return call(self._backend)
            except (ConnectionError, OSError):
                self._backend.close()
                # the host went away: join the next or become it
                self._backend = _elect(self.data_dir, self._memory_limit)
                return call(self._backend)

    def query(
        self,
        sql: str,
        params: list[Any] | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
        timeout_s: float = DEFAULT_QUERY_TIMEOUT_S,
        sync: bool = True,
    ) -> QueryResult:
        """Run read-only SQL (after bringing the store up to date, unless sync=False)."""
        return self._retrying(lambda b: b.query(sql, params, max_rows, timeout_s, sync))  # type: ignore[no-any-return]

    def sync(self) -> dict[str, Any]:
        """Ingest whatever the spool holds now."""
        return self._retrying(lambda b: b.sync())  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        """The hub's own figures (pid, watermark)."""
        return self._retrying(lambda b: b.stats())  # type: ignore[no-any-return]

    def set_retention(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Save new retention limits in the store (keys `max_age_s`, `max_size`; None: no limit) and have the hub
        apply them now; its retention status."""
        return self._retrying(lambda b: b.set_retention(changes))  # type: ignore[no-any-return]

    def export_parquet(
        self, out_dir: str, run_id: str | None = None, since: str | None = None
    ) -> dict[str, int]:
        """Have the hub write the selected rows of every table as Parquet files into `out_dir` (an absolute path
        to an existing directory; `since` an ISO time, naive UTC); rows written per table."""
        return self._retrying(lambda b: b.export_parquet(out_dir, run_id, since))  # type: ignore[no-any-return]

    def close(self) -> None:
        """Leave the hub (or stop hosting it)."""
        with self._lock:
            self._backend.close()


def open_store(data_dir: DataDir, dashboard: bool = False) -> Store:
    """Join or host the hub of `data_dir`, creating the directory if needed; a retention policy given on the
    command line is saved by the hub this process starts, or sent to the one it joins. The `dashboard` hosts a
    hub with a smaller DuckDB cap (`DASHBOARD_MEMORY_LIMIT`: its process stays on screen for hours, P7)."""
    store = Store(prepare(data_dir), DASHBOARD_MEMORY_LIMIT if dashboard else MEMORY_LIMIT)
    changes = take_request()
    if changes:
        store.set_retention(changes)
    return store


def _elect(data_dir: DataDir, memory_limit: str) -> LocalBackend | RemoteBackend:
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        sock = _try_connect(data_dir)
        if sock is not None:
            return RemoteBackend(sock)
        lock_fd = _try_lock(data_dir)
        if lock_fd is not None:
            return _host(data_dir, lock_fd, memory_limit)
        if time.monotonic() > deadline:
            raise StoreError(
                f"another obsdash process holds {data_dir.root} but does not answer",
                hint=f"check `fuser {data_dir.lock}`",
            )
        time.sleep(0.05)


def _host(data_dir: DataDir, lock_fd: int, memory_limit: str) -> LocalBackend:
    try:
        hub = Hub(data_dir, lock_fd, memory_limit)
    except BaseException:
        os.close(lock_fd)
        raise
    hub.start()
    atexit.register(hub.close)
    return LocalBackend(hub)


def _try_connect(data_dir: DataDir) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(data_dir.socket))
        protocol.send(sock, {"op": "hello"})
        reply = protocol.receive(sock)
        if reply.get("ok"):
            return sock
    except (OSError, ConnectionError, ValueError):
        pass
    sock.close()
    return None


def _try_lock(data_dir: DataDir) -> int | None:
    fd = os.open(data_dir.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
