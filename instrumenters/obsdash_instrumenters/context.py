"""What every record of this process carries: service, run, pid and the resource.

Imported at start-up, so it uses only `os` and `sys`; orjson loads with the first encoded record. The SDK's
resource attributes (OTEL_RESOURCE_ATTRIBUTES, detectors such as process.command_args) are scrubbed when adopted.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # `typing` costs ~10 ms at start-up; mypy still reads the block below
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from obsdash_instrumenters.spool import SpoolWriter


class RecordContext:
    """What every record of this process carries: service, run, pid and the resource."""

    def __init__(self, service_name: str, run_id: str, writer: SpoolWriter | None = None) -> None:
        self.service_name = service_name
        self.run_id = run_id
        self.writer = writer  # where a record dropped before it reached the queue is counted
        self.host = os.uname().nodename  # not socket.gethostname(): `socket` costs ~6 ms to import
        self.extra_resource: dict[str, Any] = {}
        self.refresh_pid()

    def refresh_pid(self) -> None:
        """Called at start and after fork: the pid (and so the resource) changes in a child."""
        self.pid = os.getpid()
        self._resource: Any = None

    def count_dropped(self, reason: str) -> None:
        """Count a record dropped on its way to the queue (e.g. `scrub_error`) with the writer's other drops."""
        if self.writer is not None:
            self.writer.count_dropped(reason)

    def set_resource(self, attributes: Mapping[str, Any]) -> None:
        """Adopt the SDK resource's attributes (OTEL_RESOURCE_ATTRIBUTES and detectors) once it exists, scrubbed."""
        try:
            # Not at start-up: scrub needs `re`. The SDK is being built now; the encoder (and `re`) come next.
            from obsdash_instrumenters import scrub

            self.extra_resource = scrub.resource(dict(attributes))
        except BaseException as exc:
            from obsdash_instrumenters.safety import internal_error

            internal_error("scrub", exc)
            self.extra_resource = {}  # fail closed: only our own fields, which hold no secrets
        self.refresh_pid()

    def resource(self) -> dict[str, Any]:
        """The resource attributes of this process as a plain dict."""
        resource = dict(self.extra_resource)
        resource.update(
            {
                "service.name": self.service_name,
                "obsdash.run_id": self.run_id,
                "process.pid": self.pid,
                "host.name": self.host,
                "process.runtime.name": "cpython",
                "process.runtime.version": sys.version.split()[0],
            }
        )
        return resource

    def stamp_plain(self, record: dict[str, Any]) -> dict[str, Any]:
        """Add the per-process fields, with the resource as a plain dict (no encoder needed)."""
        record.update(
            service_name=self.service_name, run_id=self.run_id, pid=self.pid, resource=self.resource()
        )
        return record

    def stamp(self, record: dict[str, Any]) -> dict[str, Any]:
        """Add the per-process fields to a record."""
        record["service_name"] = self.service_name
        record["run_id"] = self.run_id
        record["pid"] = self.pid
        if self._resource is None:
            import orjson  # not at start-up: 7 ms

            self._resource = orjson.Fragment(orjson.dumps(self.resource(), default=str))
        record["resource"] = self._resource
        return record
