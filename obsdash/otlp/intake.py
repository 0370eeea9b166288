"""The OTLP/HTTP receiver: POST /v1/traces, /v1/metrics, /v1/logs on 127.0.0.1, writing spool segments.

The stdlib `ThreadingHTTPServer` on a daemon thread, not a web framework: four routes, one content negotiation
and no streaming answers do not justify a new dependency in every obsdash install, and the work per request
(decode, convert, write a file) is CPU-bound Python that a framework's event loop would not speed up.

Answers follow the OTLP/HTTP specification: 200 with an empty Export*ServiceResponse in the request's content
type (with `partial_success` when some records were rejected); 400 for a body that is not a valid request (a
`google.rpc.Status` says why); 413 over a size cap; 415 for another content type or encoding; 503 when the
spool cannot be written (senders retry it). One request is decoded in full or not at all, so a bad request never
costs the records of another.

Caps (S4), each checked before the memory is spent: the body (`Content-Length`, MAX_BODY) is refused before it
is read; a gzip body is inflated in steps of INFLATE_STEP and cut off as soon as it passes MAX_INFLATED (MAX_JSON
for JSON), so a gzip bomb costs at most that much memory, never its full size; one request is decoded at a time
(the others wait up to SLOT_WAIT_S for their turn, then get 503); at most MAX_CONNECTIONS connections are open at
once; a connection idle for SOCKET_TIMEOUT_S (between two reads) is dropped.

Why these sizes (peak RSS added by one request, measured in a fresh process): protobuf costs ~4.5x its inflated
size (15.9 MiB of spans +56 MB; 63.7 MiB +288 MB: upb's parsed message alone was +223 MB), OTLP/JSON ~9x as
Python objects (15.4 MiB +135 MB; 61.6 MiB +602 MB). The intake can run inside the TUI (P7: ≤ 300 MB), so the
inflated caps are 32 MiB for protobuf and 16 MiB for JSON (the OpenTelemetry Collector's own default is 20 MiB,
decompressed included) and requests are decoded one at a time: decoding is CPU-bound Python under the GIL, and
a second slot added 19 % throughput (4 clients, 2,000-span protobuf requests: 53k → 63k spans/s, median of 5)
for twice the peak memory. SDK exporters send far less (512 spans, a few hundred KB, per request).
"""

from __future__ import annotations

import errno
import http.server
import logging
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from obsdash.datadir import DataDir
from obsdash.errors import ObsdashError
from obsdash.otlp import decode
from obsdash.otlp.records import SPOOL_KINDS, Batch, Converter
from obsdash.otlp.segments import SegmentWriter
from obsdash.otlp.values import Rejected

HOST = "127.0.0.1"
DEFAULT_PORT = 4318  # the OTLP/HTTP default port
MAX_BODY = 16 * 1024 * 1024
MAX_INFLATED = 32 * 1024 * 1024
MAX_JSON = 16 * 1024 * 1024
INFLATE_STEP = 1024 * 1024
FEED = 64 * 1024
MAX_CONCURRENT = 1
SLOT_WAIT_S = 10.0
SOCKET_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 32
"""Open connections (one thread each); exporters keep one or two per signal. A sender trickling its body holds
what it has sent so far, so the bodies being read are bounded by what senders actually sent."""
READ_STEP = 1024 * 1024
WARN_EVERY_S = 10.0
SIGNALS = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}
_PARTIAL = {"traces": "rejected_spans", "metrics": "rejected_data_points", "logs": "rejected_log_records"}
_INVALID_ARGUMENT, _RESOURCE_EXHAUSTED, _UNAVAILABLE = 3, 8, 14  # google.rpc.Code

log = logging.getLogger(__name__)


@dataclass
class Limits:
    """The intake's caps (S4)."""

    max_body: int = MAX_BODY
    max_inflated: int = MAX_INFLATED
    max_json: int = MAX_JSON
    max_concurrent: int = MAX_CONCURRENT


@dataclass
class IntakeStats:
    """What the intake has done since it started (for `obsdash serve`'s last line and the tests)."""

    requests: dict[int, int] = field(default_factory=dict)
    """HTTP status → requests answered with it."""
    records: dict[str, int] = field(default_factory=dict)
    """spool kind → records written."""
    rejected: int = 0
    """records skipped inside otherwise good requests (partial success)."""
    gzipped: int = 0
    """requests stored whose body came gzip-compressed."""
    last_rejection: str | None = None
    """why the latest rejected record was rejected."""

    def summary(self) -> str:
        """One line: requests by status, records by kind, rejected records."""
        answered = sum(self.requests.values())
        statuses = ", ".join(f"{n}×{status}" for status, n in sorted(self.requests.items()))
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.records.items()) if kind != "runs")
        return (
            f"{answered} requests ({statuses or 'none'}; {self.gzipped} gzip); records stored: "
            f"{kinds or 'none'}; {self.rejected} rejected"
            + (f" (latest: {self.last_rejection})" if self.last_rejection else "")
        )


class _HttpError(Exception):
    def __init__(self, status: int, message: str, code: int = _INVALID_ARGUMENT) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class Intake:
    """The receiver: bind, serve on a daemon thread, stop."""

    def __init__(self, data_dir: DataDir, port: int = DEFAULT_PORT, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.writer = SegmentWriter(data_dir.spool)
        self.converter = Converter()
        self.stats = IntakeStats()
        self._stats_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.limits.max_concurrent)
        self._next_warning = 0.0
        try:
            self._server = _Server((HOST, port), _Handler, self)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ObsdashError(
                    f"cannot accept OTLP on {HOST}:{port}: the port is in use (another collector or obsdash?)",
                    hint="stop it, or choose another port with --otlp-port",
                ) from None
            raise ObsdashError(f"cannot accept OTLP on {HOST}:{port}: {exc.strerror or exc}") from None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) actually bound."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> Intake:
        """Serve requests on a daemon thread until stop()."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="obsdash-otlp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, and close the listening socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    # -- one request, on a server thread --------------------------------------------------------------------
    def handle(
        self, signal: str, content_type: str, body: bytes | bytearray, gzipped: bool
    ) -> tuple[int, bytes]:
        """Decode, convert and store one request; the HTTP status and the response body."""
        if not self._slots.acquire(timeout=SLOT_WAIT_S):
            raise _HttpError(503, "too many requests at once; retry", _UNAVAILABLE)
        try:
            limit = self.limits.max_json if content_type == decode.JSON else self.limits.max_inflated
            if gzipped:
                body = inflate(body, limit)
            elif len(body) > limit:
                raise _HttpError(413, f"the body is over {limit} bytes", _RESOURCE_EXHAUSTED)
            try:
                request = decode.parse(signal, body, content_type)
            except decode.BadRequest as exc:
                raise _HttpError(400, str(exc)) from None
            try:
                with self.writer.open(SPOOL_KINDS[signal]) as segment:  # removed unless committed
                    try:
                        batch = self.converter.convert(signal, request, segment)
                    except Rejected as exc:  # the request's own structure (OTLP/JSON): not one record
                        raise _HttpError(400, f"not a valid OTLP/JSON request: {exc}") from None
                    self.writer.write("runs", batch.runs)
                    self.converter.runs_written(batch)
                    segment.commit()
            except OSError as exc:
                raise _HttpError(
                    503, f"cannot write the spool: {exc.strerror or exc}", _UNAVAILABLE
                ) from None
            self._count_stored(batch, gzipped)
        finally:
            self._slots.release()
        return 200, decode.encode(self._response(signal, batch), content_type)

    def _count_stored(self, batch: Batch, gzipped: bool) -> None:
        with self._stats_lock:
            for kind, n in (("runs", len(batch.runs)), (batch.kind, len(batch.lines))):
                self.stats.records[kind] = self.stats.records.get(kind, 0) + n
            self.stats.rejected += batch.rejected
            self.stats.last_rejection = batch.error or self.stats.last_rejection
            self.stats.gzipped += gzipped
            if batch.rejected and time.monotonic() >= self._next_warning:
                # Senders rarely show partial_success (the Python exporter ignores it): say it here, at most
                # once per WARN_EVERY_S, with the running total.
                self._next_warning = time.monotonic() + WARN_EVERY_S
                log.warning(
                    "obsdash: OTLP intake: %d records rejected so far; latest: %s",
                    self.stats.rejected,
                    batch.error,
                )

    @staticmethod
    def _response(signal: str, batch: Batch) -> Any:
        response = decode.RESPONSES[signal]()
        if batch.rejected:
            setattr(response.partial_success, _PARTIAL[signal], batch.rejected)
            response.partial_success.error_message = f"{batch.rejected} rejected; first: {batch.error}"
        return response

    def count(self, status: int) -> None:
        """Count an answer by status."""
        with self._stats_lock:
            self.stats.requests[status] = self.stats.requests.get(status, 0) + 1


def inflate(body: bytes | bytearray, limit: int) -> bytearray:
    """A gzip body, inflated in steps and abandoned as soon as it passes `limit` (413): memory stays bounded by
    the limit, whatever the compression ratio. Input is fed in FEED-sized slices (zlib copies what it has not
    consumed at each step). Concatenated gzip members are read as one stream, as gunzip does."""
    out = bytearray()
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    view = memoryview(body)
    try:
        for start in range(0, len(view), FEED):
            data: bytes | memoryview = view[start : start + FEED]
            while data:
                if inflater.eof:  # another gzip member starts here
                    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                out += inflater.decompress(data, INFLATE_STEP)
                if len(out) > limit:
                    raise _HttpError(
                        413, f"the body inflates to more than {limit} bytes", _RESOURCE_EXHAUSTED
                    )
                data = inflater.unconsumed_tail or (inflater.unused_data if inflater.eof else b"")
    except zlib.error as exc:
        raise _HttpError(400, f"not a valid gzip body: {exc}") from None
    if not inflater.eof:
        raise _HttpError(400, "the gzip body is truncated")
    return out  # not bytes(out): that copy was 64 MiB more at the peak


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # restart right after a stop; SO_REUSEADDR never lets two listeners share a port
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: Any, intake: Intake) -> None:
        self.intake = intake
        self._connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """One thread per connection, at most MAX_CONNECTIONS: beyond that a new connection is closed at once."""
        if not self._connections.acquire(blocking=False):
            self.shutdown_request(request)
            self.intake.count(503)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: exporters reuse their connection
    timeout = SOCKET_TIMEOUT_S
    server: _Server

    def do_POST(self) -> None:
        intake = self.server.intake
        content_type = decode.JSON
        try:
            signal = SIGNALS.get(self.path.split("?", 1)[0])
            if signal is None:
                raise _HttpError(
                    404, f"no OTLP endpoint at {self.path} (use /v1/traces, /v1/metrics, /v1/logs)"
                )
            content_type = _content_type(self.headers.get("Content-Type", ""))
            gzipped = _gzipped(self.headers.get("Content-Encoding", ""))
            body = self._read_body(intake.limits.max_body)
            status, payload = intake.handle(signal, content_type, body, gzipped)
        except _HttpError as exc:
            status = exc.status
            payload = decode.status_body(exc.code, str(exc), content_type)
        except Exception as exc:  # a bug of ours: answer it, keep serving
            status = 500
            payload = decode.status_body(13, f"internal error: {type(exc).__name__}", content_type)
        self._answer(status, content_type, payload)
        intake.count(status)

    def do_GET(self) -> None:
        self._refuse_method()

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _refuse_method(self) -> None:
        self._answer(
            405, decode.JSON, decode.status_body(_INVALID_ARGUMENT, "OTLP/HTTP takes POST", decode.JSON)
        )
        self.server.intake.count(405)

    def handle_expect_100(self) -> bool:
        """`Expect: 100-continue` (curl sends it for bodies over 1 MB): refuse an oversized body before it is sent."""
        raw, limit = self.headers.get("Content-Length", ""), self.server.intake.limits.max_body
        if not (raw.isdigit() and int(raw) > limit):
            return super().handle_expect_100()
        try:
            content_type = _content_type(self.headers.get("Content-Type", ""))
        except _HttpError:
            content_type = decode.JSON
        message = f"the body is {raw} bytes; the limit is {limit}"
        self._answer(413, content_type, decode.status_body(_RESOURCE_EXHAUSTED, message, content_type))
        self.server.intake.count(413)
        return False

    def _read_body(self, limit: int) -> bytearray:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise _HttpError(411, "chunked bodies are not accepted; send Content-Length")
        raw = self.headers.get("Content-Length")
        if raw is None:
            raise _HttpError(411, "Content-Length is required")
        try:
            length = int(raw)
        except ValueError:
            raise _HttpError(400, f"bad Content-Length: {raw!r}") from None
        if length < 0:
            raise _HttpError(400, f"bad Content-Length: {raw!r}")
        if length > limit:
            raise _HttpError(413, f"the body is {length} bytes; the limit is {limit}", _RESOURCE_EXHAUSTED)
        # In steps: `read(length)` would allocate all `length` bytes at once for a sender that then trickles.
        body = bytearray()
        while len(body) < length:
            chunk = self.rfile.read(min(length - len(body), READ_STEP))
            if not chunk:
                raise _HttpError(400, f"the body ended after {len(body)} of {length} bytes")
            body += chunk
        self._body_read = True
        return body

    def _answer(self, status: int, content_type: str, payload: bytes) -> None:
        # A body left unread would be taken for the next request: close the connection instead.
        if status != 200 and not getattr(self, "_body_read", False):
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if status == 503:
            self.send_header("Retry-After", "1")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self._body_read = False

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the TUI owns the terminal, and a sender's every export would be a line."""


def _content_type(header: str) -> str:
    media = header.split(";", 1)[0].strip().lower()
    if media in (decode.PROTOBUF, decode.JSON):
        return media
    raise _HttpError(
        415, f"unsupported Content-Type {media or '(none)'!r}; use {decode.PROTOBUF} or {decode.JSON}"
    )


def _gzipped(header: str) -> bool:
    encoding = header.strip().lower()
    if encoding in ("", "identity"):
        return False
    if encoding == "gzip":
        return True
    raise _HttpError(415, f"unsupported Content-Encoding {encoding!r}; use gzip or none")
